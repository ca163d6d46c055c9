// tf_latest: the cells of marked stages write the newest value per key at checkpoint time, and a
// replay from scratch never moves a key back in event time.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { Kvm } from "@nats-io/kv";
import { candlesActor } from "../../actors/candles/actor.js";
import { indicatorsActor } from "../../actors/indicators/actor.js";
import { BUCKETS } from "../../protocol/streams.js";
import { decodeLatest, latestKeys, LatestWriter } from "../../supervisor/latest.js";
import { ETH_FILE, readTrades } from "../harness/data.js";
import { check, cleanup, readAll, setup, type Env } from "../harness/nats.js";
import { addPair, publishEos, publishTrades, quietLog, startSupervisor } from "../harness/pipeline.js";

let env: Env;
before(async () => {
  env = await setup();
});
after(async () => {
  await cleanup(env);
});

test("latest - candles and indicators stages keep the newest candle per timeframe in tf_latest; a replay from scratch does not move it back", async () => {
  const raw = readTrades(ETH_FILE);
  const pair = "ETH/USDT";
  await addPair(env.js, pair);
  const kv = await new Kvm(env.js).open(BUCKETS.latest);
  const sup = await startSupervisor(env, "w-latest", [candlesActor, indicatorsActor()]);
  try {
    await publishTrades(env.js, raw);
    await publishEos(env.js, pair, raw[raw.length - 1]);
    // Every trade applied and every output acked, so the last candle read is the newest there will be.
    await sup.settle();
    const candles = await readAll(env.js, "CANDLES", "md.candles.1m.ETH-USDT");
    assert.ok(candles.length > 0, "candles were made");
    const newest = candles[candles.length - 1].data;
    const got = await check(async () => {
      const e = await kv.get(latestKeys.candles("1m", pair));
      const v = e ? decodeLatest(e.value) : null;
      return v && v.ts === newest.window_start_ms ? v : null;
    }, 10_000, "tf_latest candles.1m.ETH-USDT to hold the newest candle");
    assert.deepEqual(got.data, newest);
    assert.equal(got.subject, "md.candles.1m.ETH-USDT");
    const ind = await check(async () => {
      const e = await kv.get(latestKeys.indicators("1m", pair));
      const v = e ? decodeLatest(e.value) : null;
      return v && v.ts === newest.window_start_ms ? v : null;
    }, 10_000, "tf_latest indicators.1m.ETH-USDT");
    assert.equal(typeof (ind.data as { values: Record<string, unknown> }).values.sma_7, "number");
  } finally {
    await sup.stop();
  }

  // A writer replaying old values (as an actor restarted from scratch would) loses against the bucket.
  const key = latestKeys.candles("1m", pair);
  const before = (await kv.get(key))!;
  const w = new LatestWriter(env.js, "msgpack", quietLog);
  w.offer({ key, ts: decodeLatest(before.value)!.ts - 60_000 }, "md.candles.1m.ETH-USDT", { old: true });
  await w.flush();
  assert.equal((await kv.get(key))!.revision, before.revision, "an older value is not written");
  w.offer({ key, ts: decodeLatest(before.value)!.ts + 60_000 }, "md.candles.1m.ETH-USDT", { newer: true });
  await w.flush();
  assert.deepEqual(decodeLatest((await kv.get(key))!.value)!.data, { newer: true });
});
