// The dashboard in headless Chromium against a running system: a worker turning recorded trades
// into candles and indicators, predictions and outcomes as the predictor publishes them, and the
// gateway on a real socket. The page must draw candles, predictions and indicators, fill the
// accuracy and actors panels, and take a candle published afterwards over SSE.
// Skips (saying why) only when Chromium is not installed: `apt-get install -y chromium`.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import type { FastifyInstance } from "fastify";
import { candlesActor } from "../../actors/candles/actor.js";
import { indicatorsActor } from "../../actors/indicators/actor.js";
import { buildApp } from "../../gateway/app.js";
import { encode, publishHeaders } from "../../protocol/codec.js";
import { startWorker, type Worker } from "../../supervisor/worker.js";
import { BTC_FILE, readTrades } from "../harness/data.js";
import { pipelineDone, predictionsFrom, publishMl, publishSentiment, sentimentSignal } from "../harness/ml-fixtures.js";
import { check, cleanup, readAll, setup, type Env } from "../harness/nats.js";
import { addPair, publishEos, publishTrades, quietLog, testConfig } from "../harness/pipeline.js";

const CHROMIUM = process.env.CHROMIUM_PATH ?? "/usr/bin/chromium";
const haveChromium = existsSync(CHROMIUM);
const PAIR = "BTC/USDT";
let env: Env;
let worker: Worker;
let app: FastifyInstance;
let url: string;
let candles: any[];

before(async () => {
  if (!haveChromium) return;
  env = await setup();
  const config = testConfig();
  const raw = readTrades(BTC_FILE);
  await addPair(env.js, PAIR);
  worker = await startWorker({ nc: env.nc, config, log: quietLog, id: "dash-worker", stages: [candlesActor, indicatorsActor()] });
  await publishTrades(env.js, raw);
  await pipelineDone(env.js, worker.sup, PAIR, await publishEos(env.js, PAIR, raw[raw.length - 1]));
  candles = (await readAll(env.js, "CANDLES", "md.candles.1m.BTC-USDT")).map((m) => m.data);
  const { preds, outcomes } = predictionsFrom(candles);
  await publishMl(env.js, preds, outcomes);
  await publishSentiment(env.js, [sentimentSignal(PAIR, candles.at(-1).window_end_ms, 0.42)]);
  await worker.sup.cell("indicators", PAIR)!.checkpointIfRunning();
  app = await buildApp({ nc: env.nc, config, log: quietLog, docsUi: false });
  url = await app.listen({ port: 0, host: "127.0.0.1" });
});

after(async () => {
  if (!haveChromium) return;
  await app?.close();
  await worker?.stop();
  await cleanup(env);
});

test("dashboard - headless Chromium draws candles, predictions, indicators, accuracy and actors, and follows the live stream", { skip: haveChromium ? false : `Chromium not found at ${CHROMIUM}: apt-get install -y chromium (or set CHROMIUM_PATH)` }, async () => {
  const { chromium } = await import("playwright-core");
  const browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update", "--disable-sync", "--no-first-run"],
  });
  try {
    const page = await browser.newPage({ viewport: { width: 1280, height: 860 } });
    const errors: string[] = [];
    page.on("pageerror", (e) => errors.push(e.message));
    page.on("console", (m) => m.type() === "error" && errors.push(m.text()));
    await page.goto(`${url}/?pair=BTC-USDT`);
    await page.waitForFunction(() => Number(document.getElementById("chart")!.dataset.candles) > 0, null, { timeout: 20_000 });
    const drawn = await page.evaluate(() => {
      const s = (window as any).tickflow;
      return { candles: s.candles.size, predictions: s.predictions.size, canvases: document.querySelectorAll("#chart canvas").length };
    });
    assert.equal(drawn.candles, candles.length, "every 1m candle of the stream is on the chart");
    assert.ok(drawn.predictions > 0, "predicted prices are drawn");
    assert.ok(drawn.canvases >= 3, "price pane and indicator panes rendered");
    // Pixels, not only state: the price pane has candle-coloured pixels.
    const painted = await page.evaluate(() => {
      for (const c of document.querySelectorAll<HTMLCanvasElement>("#chart canvas")) {
        const ctx = c.getContext("2d");
        if (!ctx || c.width < 100 || c.height < 100) continue;
        const d = ctx.getImageData(0, 0, c.width, c.height).data;
        let n = 0;
        for (let i = 0; i < d.length; i += 4) if ((d[i] === 0x26 && d[i + 1] === 0xa6 && d[i + 2] === 0x9a) || (d[i] === 0xef && d[i + 1] === 0x53 && d[i + 2] === 0x50)) n++;
        if (n > 0) return n;
      }
      return 0;
    });
    assert.ok(painted > 50, `candles painted on the canvas (${painted} pixels)`);
    await page.waitForFunction(() => document.getElementById("acc-n")!.textContent !== "–", null, { timeout: 10_000 });
    assert.match((await page.textContent("#acc-skill"))!, /%$/);
    assert.equal(await page.textContent("#sent"), "0.42");
    await page.waitForFunction(() => document.querySelectorAll("#actors tbody tr").length >= 2, null, { timeout: 15_000 });
    assert.match((await page.textContent("#actors tbody"))!, /indicators\s*BTC\/USDT\s*running/);
    // Every stage counted above the table (the table holds the selected pair's actors and those that need a look).
    assert.match((await page.textContent("#actor-summary"))!, /candles: \d+ running.*indicators: \d+ running/);
    await page.waitForFunction(() => document.getElementById("live")!.textContent === "live", null, { timeout: 10_000 });

    // Live: a candle published now appears without a reload.
    const last = candles.at(-1);
    const next = { ...last, window_start_ms: last.window_start_ms + 60_000, window_end_ms: last.window_end_ms + 60_000, close: last.close + 5, high: last.high + 5 };
    await env.js.publish("md.candles.1m.BTC-USDT", encode(next, "msgpack"), { msgID: "dash-live", headers: publishHeaders("msgpack") });
    await page.waitForFunction((n) => Number(document.getElementById("chart")!.dataset.candles) === n, candles.length + 1, { timeout: 10_000 });
    if (process.env.TICKFLOW_SCREENSHOT) {
      // The chart paints on animation frames: let two pass so the picture has the live candle.
      await page.evaluate(() => new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r))));
      await page.screenshot({ path: process.env.TICKFLOW_SCREENSHOT });
    }
    assert.deepEqual(errors, [], `no errors in the page: ${errors.join(" | ")}`);
  } finally {
    await browser.close();
  }
});
