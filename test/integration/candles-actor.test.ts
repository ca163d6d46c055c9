// The candles actor under the real runtime on a real nats-server: recorded trades in, candles out,
// equal to an independent computation; bad input dead-lettered; a crash replays to the same stream.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { connect } from "@nats-io/transport-node";
import { jetstream } from "@nats-io/jetstream";
import { candlesActor } from "../../actors/candles/actor.js";
import { encode, publishHeaders } from "../../protocol/codec.js";
import { Supervisor } from "../../supervisor/runtime.js";
import { BTC_FILE, ETH_FILE, close, oracleCandles, readTrades, toTrade } from "../harness/data.js";
import { check, cleanup, readAll, setup, type Env } from "../harness/nats.js";
import { addPair, publishEos, publishTrades, quietLog, startSupervisor, testConfig } from "../harness/pipeline.js";

let env: Env;
before(async () => {
  env = await setup();
});
after(async () => {
  await cleanup(env);
});

function assertCandlesEqualOracle(got: { data: any; msgId?: string }[], raw: ReturnType<typeof readTrades>, tfMs: number) {
  const want = oracleCandles(raw, tfMs);
  assert.equal(got.length, want.length, "candle count");
  assert.equal(new Set(got.map((g) => g.msgId)).size, got.length, "no candle twice");
  got.forEach(({ data: c }, i) => {
    const w = want[i];
    assert.equal(c.window_start_ms, w.window_start_ms, `window ${i}`);
    assert.deepEqual([c.open, c.high, c.low, c.close, c.trades, c.flat], [w.open, w.high, w.low, w.close, w.trades, w.flat], `candle ${i}`);
    assert.ok(close(c.volume, w.volume) && close(c.vwap, w.vwap), `candle ${i} volume/vwap`);
  });
}

test("candles actor - recorded ETH/USDT trades give candles equal to a group-by; malformed input goes to the DLQ and the pipeline goes on", async () => {
  const raw = readTrades(ETH_FILE);
  const pair = "ETH/USDT";
  await addPair(env.js, pair);
  const sup = await startSupervisor(env, "w-eth", [candlesActor]);
  try {
    const half = Math.floor(raw.length / 2);
    await publishTrades(env.js, raw.slice(0, half));
    // Three kinds of bad input in the middle of the stream.
    const h = publishHeaders("json");
    await env.js.publish("md.trades.ETH-USDT", new TextEncoder().encode("{not json"), { headers: h });
    await env.js.publish("md.trades.ETH-USDT", encode({ ...toTrade(raw[0]), price: "abc" }, "json"), { headers: h });
    const late = { v: 1, pair, trade_id: 1, price: 1, qty: 1, side: "buy", ord_type: "market", ts_ms: Date.parse(raw[0].timestamp) };
    await env.js.publish("md.trades.ETH-USDT", encode(late, "json"), { headers: h });
    await publishTrades(env.js, raw.slice(half));
    const eosSeq = await publishEos(env.js, pair, raw[raw.length - 1]);
    await check(() => (sup.cell("candles", pair)?.status().lastSeq ?? 0) >= eosSeq, 30_000, "candles actor to apply every trade");
    const st = sup.cell("candles", pair)!.status();
    assert.equal(st.state, "running");
    assert.equal(st.deadLetters, 3);
    await sup.cell("candles", pair)!.checkpointIfRunning();
    assertCandlesEqualOracle(await readAll(env.js, "CANDLES", "md.candles.1m.ETH-USDT"), raw, 60_000);
    assertCandlesEqualOracle(await readAll(env.js, "CANDLES", "md.candles.5m.ETH-USDT"), raw, 300_000);
    const dlq = await readAll(env.js, "DLQ", "dlq.candles.ETH-USDT");
    assert.equal(dlq.length, 3);
    assert.match(dlq[0].data.reason, /not valid json/);
    assert.match(dlq[1].data.reason, /^trade at md.trades.ETH-USDT#\d+: price: /);
    assert.match(dlq[2].data.reason, /^late trade 1: /);
    assert.equal(new TextDecoder().decode(dlq[0].data.payload), "{not json", "the original bytes are kept");
  } finally {
    await sup.stop();
  }
});

test("candles actor - killed mid-stream without a final checkpoint, a new owner replays from the checkpoint to exactly the same candle stream", async () => {
  const raw = readTrades(BTC_FILE);
  const pair = "BTC/USDT";
  await addPair(env.js, pair);
  // A checkpoint only every 3000 trades, so the crash loses progress that must be replayed.
  const cfg = testConfig({ TICKFLOW_CHECKPOINT_EVERY: "3000", TICKFLOW_CHECKPOINT_MS: "600000" });
  const nc1 = await connect({ servers: env.server.url });
  const sup1 = new Supervisor({ id: "w-crash-1", stages: [candlesActor], config: cfg, nc: nc1, js: jetstream(nc1), log: quietLog });
  await sup1.start();
  const firstSeq = await publishTrades(env.js, raw.slice(0, 10_000));
  await check(() => (sup1.cell("candles", pair)?.status().lastSeq ?? 0) >= firstSeq, 30_000, "first half applied");
  const before = (await readAll(env.js, "CANDLES", "md.candles.1m.BTC-USDT")).length;
  assert.ok(before > 0);
  // The crash: nothing more is written (no checkpoint, lease left behind) and the connection dies.
  await sup1.halt();
  await nc1.close();
  await publishTrades(env.js, raw.slice(10_000));
  const eosSeq = await publishEos(env.js, pair, raw[raw.length - 1]);
  const sup2 = await startSupervisor(env, "w-crash-2", [candlesActor], cfg);
  try {
    await check(() => (sup2.cell("candles", pair)?.status().lastSeq ?? 0) >= eosSeq, 30_000, "new owner (after lease expiry) to apply every trade");
    const st = sup2.cell("candles", pair)!.status();
    assert.ok(st.duplicates > 0, `the replay republished candles that the server dropped as duplicates (${st.duplicates})`);
    await sup2.cell("candles", pair)!.checkpointIfRunning();
    assertCandlesEqualOracle(await readAll(env.js, "CANDLES", "md.candles.1m.BTC-USDT"), raw, 60_000);
    assertCandlesEqualOracle(await readAll(env.js, "CANDLES", "md.candles.1h.BTC-USDT"), raw, 3_600_000);
  } finally {
    await sup2.stop();
  }
});
