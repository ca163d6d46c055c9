// The trades stage under the real runtime: the production Kraken WS v2 client against the local
// Kraken-protocol replay server, into JetStream. Forced disconnects and a malformed frame mid-stream
// must leave TRADES with every recorded trade exactly once, in order, and the bad frame in the DLQ.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { tradesActor } from "../../actors/trades/actor.js";
import { startKrakenReplayServer } from "../../actors/trades/kraken-replay-server.js";
import { BTC_FILE, ETH_FILE, readTrades, toTrade } from "../harness/data.js";
import { check, cleanup, readAll, setup, type Env } from "../harness/nats.js";
import { addPair, startSupervisor, testConfig } from "../harness/pipeline.js";

let env: Env;
before(async () => {
  env = await setup();
});
after(async () => {
  await cleanup(env);
});

test("trades actor - two pairs replayed with forced disconnects and a bad frame: every trade once, in order; the bad frame dead-lettered", async () => {
  const files = { "BTC/USDT": readTrades(BTC_FILE), "ETH/USDT": readTrades(ETH_FILE) };
  const replay = await startKrakenReplayServer({ files: [BTC_FILE, ETH_FILE], speed: 60 });
  const cfg = testConfig();
  cfg.kraken.wsUrl = replay.wsUrl;
  cfg.kraken.restUrl = replay.restUrl;
  await addPair(env.js, "BTC/USDT");
  await addPair(env.js, "ETH/USDT");
  const sup = await startSupervisor(env, "w-trades", [tradesActor({ endOfInput: replay.lastTradeIds })], cfg);
  try {
    const processed = () => sup.cell("trades", "BTC/USDT")?.status().processed ?? 0;
    await check(() => processed() > 3000, 60_000, "3000 BTC trades");
    replay.injectRaw("{this is not json");
    await check(() => (sup.cell("trades", "BTC/USDT")?.status().deadLetters ?? 0) > 0, 10_000, "the bad frame dead-lettered");
    replay.dropConnections();
    await check(() => processed() > 9000, 60_000, "9000 BTC trades");
    replay.dropConnections();
    await replay.done;
    for (const [pair, raw] of Object.entries(files)) {
      const token = pair.replace("/", "-");
      const got = await check(async () => {
        const all = await readAll(env.js, "TRADES", `md.trades.${token}`);
        return all.at(-1)?.data.eos ? all : null;
      }, 60_000, `${pair} end of stream`);
      const trades = got.filter((m) => m.data.kind !== "watermark");
      assert.equal(trades.length, raw.length, `${pair}: trade count`);
      assert.deepEqual(trades.map((m) => m.data), raw.map(toTrade), `${pair}: every trade once, in order, fields as recorded`);
      assert.deepEqual(trades.map((m) => m.msgId), raw.map((r) => `${token}:${r.trade_id}`));
    }
    const feed = sup.cell("trades", "BTC/USDT")!.status();
    assert.equal(feed.state, "running");
    const dlq = await readAll(env.js, "DLQ", "dlq.trades.BTC-USDT");
    assert.ok(dlq.some((d) => new TextDecoder().decode(d.data.payload) === "{this is not json"), "the malformed frame is in the DLQ with its bytes");
    assert.match(dlq[0].data.reason, /json/i);
  } finally {
    await sup.stop();
    await replay.close();
  }
});
