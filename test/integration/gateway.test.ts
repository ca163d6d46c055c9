// The gateway against a real nats-server with real pipeline output (recorded ETH/USDT trades →
// candles → indicators), and predictions/outcomes/sentiment published as their stages will:
// every route via inject, errors with the right status, and SSE over a real socket with resume.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import type { FastifyInstance } from "fastify";
import { Kvm } from "@nats-io/kv";
import { candlesActor } from "../../actors/candles/actor.js";
import { indicatorsActor } from "../../actors/indicators/actor.js";
import { encode, publishHeaders } from "../../protocol/codec.js";
import { BUCKETS } from "../../protocol/streams.js";
import { buildApp } from "../../gateway/app.js";
import { summarizeOutcomes } from "../../gateway/accuracy.js";
import type { Supervisor } from "../../supervisor/runtime.js";
import { startWorker, type Worker } from "../../supervisor/worker.js";
import { ETH_FILE, readTrades } from "../harness/data.js";
import { publishMl, predictionsFrom, publishSentiment, sentimentSignal } from "../harness/ml-fixtures.js";
import { check, cleanup, readAll, setup, type Env } from "../harness/nats.js";
import { addPair, publishEos, publishTrades, quietLog, testConfig } from "../harness/pipeline.js";
import { SseClient } from "../harness/sse.js";

const PAIR = "ETH/USDT";
let env: Env;
let worker: Worker;
let sup: Supervisor;
let app: FastifyInstance;
let candles: any[];
let outcomes: any[];
let preds: any[];
const config = testConfig({ TICKFLOW_ADMIN_TOKEN: "s3cret" });

before(async () => {
  env = await setup();
  const raw = readTrades(ETH_FILE);
  await addPair(env.js, PAIR);
  worker = await startWorker({ nc: env.nc, config, log: quietLog, id: "gw-worker", stages: [candlesActor, indicatorsActor()] });
  sup = worker.sup;
  await publishTrades(env.js, raw);
  await publishEos(env.js, PAIR, raw[raw.length - 1]);
  // Every trade applied and every output acked (a partial read raced the stages on a busy box).
  await sup.settle();
  candles = (await readAll(env.js, "CANDLES", "md.candles.1m.ETH-USDT")).map((m) => m.data);
  assert.ok(candles.length > 6, "the replay makes more than six 1m candles");
  ({ preds, outcomes } = predictionsFrom(candles));
  await publishMl(env.js, preds, outcomes);
  await publishSentiment(env.js, [sentimentSignal(PAIR, candles[3].window_end_ms, -0.2), sentimentSignal(PAIR, candles[6].window_end_ms, 0.35)]);
  const kvm = new Kvm(env.js);
  await (await kvm.open(BUCKETS.models)).put("ETH-USDT.5m.champion", JSON.stringify({ model: "ridge", version: "3", mae: 1.2 }));
  await sup.cell("indicators", PAIR)!.checkpointIfRunning();
  app = await buildApp({ nc: env.nc, config, log: quietLog });
  await check(() => app.inject("/v1/candles/ETH-USDT").then((r) => r.statusCode === 200), 10_000, "tf_latest to know ETH/USDT");
});

after(async () => {
  await app?.close();
  await worker?.stop();
  await cleanup(env);
});

const get = async (url: string, headers: Record<string, string> = {}) => {
  const r = await app.inject({ url, headers });
  return { status: r.statusCode, body: r.headers["content-type"]?.toString().includes("json") ? r.json() : r.body, headers: r.headers };
};

test("gateway - candles and indicators equal the stream; by event time, bounded, either pair spelling", async () => {
  const all = await get("/v1/candles/ETH-USDT?limit=1000");
  assert.equal(all.status, 200);
  assert.deepEqual(all.body.candles, candles);
  const enc = await get("/v1/candles/ETH%2FUSDT?limit=1000");
  assert.deepEqual(enc.body.candles, candles);
  const last3 = await get("/v1/candles/ETH-USDT?limit=3");
  assert.deepEqual(last3.body.candles, candles.slice(-3));
  const from = candles[2].window_start_ms, to = candles[5].window_start_ms;
  const mid = await get(`/v1/candles/ETH-USDT?from=${from}&to=${new Date(to).toISOString()}`);
  assert.deepEqual(mid.body.candles, candles.slice(2, 6));
  const lim = await get(`/v1/candles/ETH-USDT?from=${from}&limit=2`);
  assert.deepEqual(lim.body.candles, candles.slice(2, 4));
  const five = await get("/v1/candles/ETH-USDT?tf=5m");
  assert.deepEqual(five.body.candles, (await readAll(env.js, "CANDLES", "md.candles.5m.ETH-USDT")).map((m) => m.data));
  const ind = await get("/v1/indicators/ETH-USDT?limit=1000");
  assert.deepEqual(ind.body.indicators, (await readAll(env.js, "INDICATORS", "md.indicators.1m.ETH-USDT")).map((m) => m.data));
  assert.equal(typeof ind.body.indicators.at(-1).values.sma_7, "number");
});

test("gateway - predictions, history, older API shape, sentiment, models, accuracy against persistence", async () => {
  const p = await get("/v1/predictions/ETH-USDT");
  assert.equal(p.status, 200);
  assert.deepEqual(p.body.prediction, preds.at(-1));
  const legacy = await get("/predictions?pair=ETH/USDT");
  assert.deepEqual(legacy.body, { pair: PAIR, predicted_price: preds.at(-1).predicted_price, ts_ms: preds.at(-1).ts_ms });
  const h = await get("/v1/predictions/ETH-USDT/history?limit=1000");
  assert.deepEqual(h.body.predictions, preds);
  assert.deepEqual(h.body.outcomes, outcomes);
  const s = await get("/v1/sentiment/ETH-USDT");
  assert.equal(s.body.sentiment.score, 0.35);
  const m = await get("/v1/models/ETH-USDT");
  assert.deepEqual(m.body.models, [{ key: "ETH-USDT.5m.champion", record: { model: "ridge", version: "3", mae: 1.2 } }]);
  const a = await get("/v1/accuracy/ETH-USDT");
  assert.equal(a.status, 200);
  // An independent computation over what was published.
  const mae = outcomes.reduce((x, o) => x + o.abs_error, 0) / outcomes.length;
  const base = outcomes.reduce((x, o) => x + o.baseline_abs_error, 0) / outcomes.length;
  assert.equal(a.body.n, outcomes.length);
  assert.ok(Math.abs(a.body.mae - mae) < 1e-9 && Math.abs(a.body.mae_persistence - base) < 1e-9);
  assert.ok(Math.abs(a.body.skill - (1 - mae / base)) < 1e-9);
  assert.deepEqual(a.body, { pair: PAIR, horizon: "5m", ...summarizeOutcomes(outcomes) });
  assert.equal((await get("/v1/predictions/ETH-USDT?horizon=1h")).status, 404);
});

test("gateway - bad requests get 4xx with {error, message} naming the parameter; unknown pair 404", async () => {
  const cases: [string, number, RegExp][] = [
    ["/v1/candles/ETH-USDT?limit=0", 400, /querystring\.limit/],
    ["/v1/candles/ETH-USDT?limit=abc", 400, /querystring\.limit/],
    ["/v1/candles/ETH-USDT?tf=7q", 400, /querystring\.tf/],
    ["/v1/candles/ETH-USDT?tf=15m", 400, /querystring\.tf: "15m" is not a timeframe Tickflow computes/],
    ["/v1/candles/ETH-USDT?from=yesterday", 400, /querystring\.from/],
    ["/v1/candles/ETH-USDT?bogus=1", 400, /querystring/],
    ["/v1/candles/not_a_pair", 400, /params\.pair/],
    ["/v1/candles/DOGE-EUR", 404, /unknown pair DOGE\/EUR/],
    ["/v1/stream?pairs=DOGE-EUR", 404, /unknown pair/],
    ["/v1/stream", 400, /querystring\.pairs|pairs/],
    ["/predictions?pair=ETH%2F", 400, /querystring\.pair/],
    ["/nope", 404, /no route GET \/nope/],
  ];
  for (const [url, status, re] of cases) {
    const r = await get(url);
    assert.equal(r.status, status, url);
    assert.equal(typeof r.body.error, "string", url);
    assert.match(r.body.message, re, url);
  }
});

test("gateway - admin routes: 401 without a token, 403 with a wrong one, add and remove with the right one", async () => {
  const put = (headers: Record<string, string> = {}) => app.inject({ method: "PUT", url: "/v1/pairs/SOL-USDT", headers });
  assert.equal((await put()).statusCode, 401);
  assert.equal((await put({ authorization: "Bearer nope" })).statusCode, 403);
  assert.equal((await put({ authorization: "Bearer nope" })).json().error, "TF_FORBIDDEN");
  const ok = await put({ authorization: "Bearer s3cret" });
  assert.equal(ok.statusCode, 200);
  await check(async () => (await get("/v1/pairs")).body.pairs.some((p: any) => p.pair === "SOL/USDT"), 5000, "SOL/USDT listed");
  const del = await app.inject({ method: "DELETE", url: "/v1/pairs/SOL%2FUSDT", headers: { authorization: "Bearer s3cret" } });
  assert.equal(del.statusCode, 200);
  await check(async () => !(await get("/v1/pairs")).body.pairs.some((p: any) => p.pair === "SOL/USDT"), 5000, "SOL/USDT gone");
});

test("gateway - health, ready, actors, metrics, OpenAPI, dashboard assets", async () => {
  assert.deepEqual((await get("/health")).body, { status: "ok" });
  assert.equal((await get("/ready")).status, 200);
  const actors = await check(async () => {
    const r = await get("/v1/actors");
    return r.body.actors?.some((a: any) => a.stage === "indicators" && a.state === "running") ? r.body : null;
  }, 10_000, "actors");
  assert.ok(actors.members.some((m: any) => m.id === "gw-worker"));
  // Filtered (the dashboard asks for one pair's actors and for those that need a look), with every stage counted.
  const one = (await get(`/v1/actors?pair=${encodeURIComponent(PAIR)}&stage=indicators`)).body;
  assert.deepEqual(one.actors.map((a: any) => [a.stage, a.pair]), [["indicators", PAIR]]);
  assert.equal(one.total, 1);
  assert.equal(one.summary.candles.actors, actors.actors.filter((a: any) => a.stage === "candles").length);
  assert.equal(one.summary.indicators.states.running, actors.actors.filter((a: any) => a.stage === "indicators" && a.state === "running").length);
  const limited = (await get("/v1/actors?limit=1")).body;
  assert.equal(limited.actors.length, 1);
  assert.equal(limited.total, actors.actors.length);
  assert.deepEqual((await get("/v1/actors?problems=true")).body.actors.filter((a: any) => a.state === "running" && !a.restarts && !a.deadLetters), []);
  const bad = await get("/v1/actors?stage=candels");
  assert.equal(bad.status, 400);
  assert.match(JSON.stringify(bad.body), /querystring.stage.*unknown stage \\"candels\\"/);
  await get("/v1/accuracy/ETH-USDT"); // the live-accuracy gauges cover what has been scored
  const metrics = await check(async () => {
    const r = await get("/metrics");
    return /tickflow_actor_lag\{stage="candles",pair="ETH\/USDT"/.test(r.body) ? r.body : null;
  }, 10_000, "actor metrics");
  assert.match(metrics, /tickflow_actor_dead_letters\{/);
  assert.match(metrics, /tickflow_actor_messages_processed\{stage="indicators"/);
  // Per stage, over the cluster: as many series as stages, whatever the number of pairs.
  assert.match(metrics, /tickflow_stage_messages_processed\{stage="indicators"\} [0-9]+/);
  assert.match(metrics, /tickflow_stage_actors\{stage="indicators",state="running"\} [1-9]/);
  assert.match(metrics, /tickflow_stage_lag\{stage="indicators"\} [0-9]+/);
  assert.match(metrics, /tickflow_live_skill\{pair="ETH\/USDT",horizon="5m"\} -?[0-9.]+/);
  const doc = (await get("/docs/json")).body;
  for (const path of ["/v1/pairs", "/v1/pairs/{pair}", "/v1/candles/{pair}", "/v1/indicators/{pair}", "/v1/sentiment/{pair}",
    "/v1/predictions/{pair}", "/v1/predictions/{pair}/history", "/v1/models/{pair}", "/v1/accuracy/{pair}", "/v1/actors",
    "/v1/stream", "/predictions", "/health", "/ready", "/metrics"]) assert.ok(doc.paths[path], `OpenAPI lists ${path}`);
  assert.match((await get("/")).body, /<title>Tickflow<\/title>/);
  assert.match((await get("/vendor/lightweight-charts.mjs")).body, /createChart/);
  // With TICKFLOW_METRICS_PER_ACTOR=false: the per-stage series only.
  const staged = await buildApp({ nc: env.nc, config: testConfig({ TICKFLOW_METRICS_PER_ACTOR: "false" }), log: quietLog, docsUi: false });
  try {
    const text = await check(async () => {
      const r = await staged.inject({ method: "GET", url: "/metrics" });
      return /tickflow_stage_actors\{stage="indicators",state="running"\} [1-9]/.test(r.body) ? r.body : null;
    }, 10_000, "per-stage metrics");
    assert.doesNotMatch(text, /^tickflow_actor_/m);
    assert.match(text, /tickflow_stage_messages_processed\{stage="candles"\} [0-9]+/);
  } finally {
    await staged.close();
  }
});

test("gateway - SSE over a real socket: a candle published after connecting arrives; a client reconnecting with Last-Event-ID misses nothing", async () => {
  const srv = await buildApp({ nc: env.nc, config, log: quietLog, docsUi: false });
  const url = await srv.listen({ port: 0, host: "127.0.0.1" });
  const base = candles.at(-1);
  const candle = (i: number) => ({ ...base, window_start_ms: base.window_start_ms + i * 60_000, window_end_ms: base.window_end_ms + i * 60_000, close: base.close + i });
  const pub = (i: number) => env.js.publish("md.candles.1m.ETH-USDT", encode(candle(i), "msgpack"), { msgID: `sse-test:${i}`, headers: publishHeaders("msgpack") });
  const clients: SseClient[] = [];
  try {
    const a = new SseClient(`${url}/v1/stream?pairs=ETH-USDT`);
    clients.push(a);
    // The snapshot from tf_latest comes first.
    await check(() => a.of("candle").length >= 1, 10_000, "snapshot candle");
    await pub(1000);
    await check(() => a.of("candle").some((c) => c.close === base.close + 1000), 10_000, "live candle");
    const id = a.lastId()!;
    a.close();
    await a.done;
    for (const i of [1001, 1002, 1003]) await pub(i);
    const b = new SseClient(`${url}/v1/stream?pairs=ETH/USDT`, { "last-event-id": id });
    clients.push(b);
    await pub(1004);
    await check(() => b.of("candle").some((c) => c.close === base.close + 1004), 10_000, "resumed stream to reach the live candle");
    assert.deepEqual(b.of("candle").map((c) => c.close - base.close), [1001, 1002, 1003, 1004], "exactly the missed candles, in order, then live");
    b.close();
    await b.done;
  } finally {
    // Open SSE connections keep the server from closing: a failed check must fail, not hang.
    for (const c of clients) c.close();
    await srv.close();
  }
});
