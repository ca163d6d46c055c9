// Reads of many last messages at once (supervisor/state-prefetch.ts): the checkpoints of the
// actors a reconcile pass starts and the resume points of trades actors starting together. What
// they return must be what the one-by-one reads return; a pass that starts many actors with
// checkpoints must resume each from its own, without a checkpoint request per actor.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { candlesActor } from "../../actors/candles/actor.js";
import { indicatorsActor } from "../../actors/indicators/actor.js";
import { BUCKETS, openBuckets } from "../../protocol/streams.js";
import { addPairs } from "../../supervisor/desired-pairs.js";
import { LastMsgLoader, lastPerSubject, PREFETCH_MIN_SUBJECTS, prefetchStates } from "../../supervisor/state-prefetch.js";
import { BTC_FILE, readTrades } from "../harness/data.js";
import { assertOracleCandles, byPair, dealOverPairs } from "../harness/many-pairs.js";
import { cleanup, setup, type Env } from "../harness/nats.js";
import { publishEos, publishTrades, quietLog, startSupervisor, testConfig } from "../harness/pipeline.js";

let env: Env;
before(async () => {
  env = await setup();
});
after(async () => {
  await cleanup(env);
});

const bytes = (s: string) => new TextEncoder().encode(s);

test("state prefetch - checkpoints of many keys read at once equal what kv.get reads one by one (updated, deleted, absent)", async () => {
  const kv = (await openBuckets(env.js)).state;
  const keys = Array.from({ length: 50 }, (_, i) => `prefetch.k${String(i).padStart(2, "0")}`);
  // 40 keys written (every fifth twice, so revisions are not one per key), one of them deleted; 10 never written.
  for (const [i, k] of keys.slice(0, 40).entries()) {
    await kv.put(k, bytes(`v1 ${k}`));
    if (i % 5 === 0) await kv.put(k, bytes(`v2 ${k}`));
  }
  await kv.delete(keys[7]);
  const got = await prefetchStates(env.js, BUCKETS.state, keys, quietLog);
  assert.equal(got.size, keys.length, "every key answered");
  for (const k of keys) {
    const want = await kv.get(k);
    const have = got.get(k);
    if (!want) {
      assert.equal(have, null, `${k}: no entry`);
      continue;
    }
    assert.ok(have, `${k}: an entry`);
    assert.deepEqual(
      { value: Buffer.from(have.value).toString(), revision: have.revision, operation: have.operation, length: have.length },
      { value: Buffer.from(want.value).toString(), revision: want.revision, operation: want.operation, length: want.length },
      k,
    );
  }
  assert.equal(got.get(keys[7])?.operation, "DEL");
  // Fewer keys than a bulk read pays for: nothing said, each actor reads its own.
  assert.equal((await prefetchStates(env.js, BUCKETS.state, keys.slice(0, PREFETCH_MIN_SUBJECTS - 1), quietLog)).size, 0);
});

test("state prefetch - a bucket with far more keys than wanted: absent ones answered, present ones left to their own reads", async () => {
  const kv = (await openBuckets(env.js)).state;
  const many = Array.from({ length: 200 }, (_, i) => `crowd.k${i}`);
  for (const k of many) await kv.put(k, bytes(k));
  const wanted = [...many.slice(0, 10), ...Array.from({ length: 30 }, (_, i) => `crowd.absent${i}`)];
  const got = await prefetchStates(env.js, BUCKETS.state, wanted, quietLog);
  for (const k of wanted.slice(0, 10)) assert.equal(got.has(k), false, `${k}: unknown (read by the actor)`);
  for (const k of wanted.slice(10)) assert.equal(got.get(k), null, `${k}: no entry`);
});

test("state prefetch - a burst of last-message reads answered together equals getMessage; a lone read too", async () => {
  const subjects = Array.from({ length: 60 }, (_, i) => `md.trades.L${String(i).padStart(2, "0")}-USD`);
  // 50 subjects with 1–3 messages each; 10 with none.
  for (const [i, s] of subjects.slice(0, 50).entries()) for (let n = 0; n <= i % 3; n++) await env.js.publish(s, bytes(`${s} #${n}`));
  const loader = new LastMsgLoader(env.js, "TRADES", "md.trades.>", quietLog);
  const burst = await Promise.all(subjects.map((s) => loader.get(s)));
  const lone = await loader.get(subjects[3]);
  for (const [i, s] of subjects.entries()) {
    const want = await env.jsm.streams.getMessage("TRADES", { last_by_subj: s }).catch(() => null);
    const have = burst[i];
    if (!want) {
      assert.equal(have, null, `${s}: none`);
      continue;
    }
    assert.ok(have, `${s}: a message`);
    assert.deepEqual([have.seq, Buffer.from(have.data).toString()], [want.seq, Buffer.from(want.data).toString()], s);
  }
  assert.equal(lone?.seq, burst[3]?.seq, "a lone read (a request of its own) agrees");
  // The same subjects through the function the loader uses: every one known.
  assert.equal((await lastPerSubject(env.js, "TRADES", "md.trades.>", subjects, quietLog)).size, subjects.length);
});

test("state prefetch - 120 actors restarted from their checkpoints in one pass: no checkpoint request each, each resumes where it stopped, candles exact", async () => {
  // A bucket holding only these actors' checkpoints (the tests above left keys of their own).
  await env.jsm.streams.purge(`KV_${BUCKETS.state}`);
  const PAIRS = 60;
  const records = dealOverPairs(readTrades(BTC_FILE), PAIRS, PAIRS * 20);
  const pairs = byPair(records);
  for (const [pair, list] of pairs) await publishTrades(env.js, list.slice(0, 10), pair);
  await addPairs(env.js, [...pairs.keys()]);
  const stages = () => [candlesActor, indicatorsActor()];
  const first = await startSupervisor(env, "before", stages(), testConfig());
  await first.settle();
  await first.stop(); // graceful: every actor checkpoints, then releases its lease
  for (const [pair, list] of pairs) {
    await publishTrades(env.js, list.slice(10), pair);
    await publishEos(env.js, pair, list[list.length - 1]);
  }
  // Watch the checkpoint reads the actors would make one by one (direct or API gets of tf_state).
  let stateGets = 0;
  const spies = [env.nc.subscribe(`$JS.API.STREAM.MSG.GET.KV_${BUCKETS.state}`), env.nc.subscribe(`$JS.API.DIRECT.GET.KV_${BUCKETS.state}.>`)];
  for (const s of spies) void (async () => { for await (const _ of s) stateGets++; })();
  const second = await startSupervisor(env, "after", stages(), testConfig());
  await second.settle();
  const status = second.status();
  await second.stop();
  for (const s of spies) s.unsubscribe();
  assert.equal(status.length, PAIRS * 2, "every actor ran");
  assert.deepEqual(status.filter((s) => s.restarts > 0).map((s) => `${s.stage}.${s.pair}: ${s.lastError}`), [], "no actor restarted");
  assert.ok(stateGets < PAIRS, `checkpoints read together, not one request per actor (${stateGets} gets for ${PAIRS * 2} actors)`);
  // Each candles actor applied only what came after its checkpoint: the second half and the end-of-stream watermark.
  for (const s of status.filter((x) => x.stage === "candles")) assert.equal(s.processed, pairs.get(s.pair!)!.length - 10 + 1, `${s.pair}: resumed from its checkpoint`);
  assert.equal((await env.jsm.streams.info("DLQ")).state.messages, 0, "nothing dead-lettered");
  await assertOracleCandles(env.js, pairs);
});
