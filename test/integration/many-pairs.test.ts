// The runtime at the scale users run: hundreds of pairs on one worker, a saturating backlog and a
// busy event loop. Guards the bug where overlapping lease-renewal rounds made a lone worker read
// its own renewal as "another member holds the lease", stop actors without a checkpoint and
// restart them, over and over.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { candlesActor } from "../../actors/candles/actor.js";
import { indicatorsActor } from "../../actors/indicators/actor.js";
import { addPairs } from "../../supervisor/desired-pairs.js";
import { BTC_FILE, readTrades } from "../harness/data.js";
import { assertOracleCandles, byPair, dealOverPairs } from "../harness/many-pairs.js";
import { cleanup, setup, type Env } from "../harness/nats.js";
import { publishEos, publishTrades, startSupervisor, testConfig } from "../harness/pipeline.js";

const PAIRS = 300;
let env: Env;
before(async () => {
  env = await setup();
});
after(async () => {
  await cleanup(env);
});

test("many pairs - a lone worker with 600 actors under a saturating backlog and a blocked event loop keeps every lease; candles exact, nothing dead-lettered", async () => {
  // 30 trades a pair (about 3 minutes of event time each): enough to fill every actor's mailbox.
  const records = dealOverPairs(readTrades(BTC_FILE), PAIRS, PAIRS * 30);
  const pairs = byPair(records);
  // The whole backlog is in TRADES before the worker starts: every actor has work at once.
  for (const [pair, list] of pairs) {
    await publishTrades(env.js, list, pair);
    await publishEos(env.js, pair, list[list.length - 1]);
  }
  await addPairs(env.js, [...pairs.keys()]);
  // Leases at test speed (keep-alive 300 ms, TTL 1.5 s), and an event loop blocked for 400 ms at
  // a time, half of the time: keep-alive rounds run later than the renewal interval.
  const blocker = setInterval(() => {
    const t = Date.now();
    while (Date.now() - t < 400);
  }, 800);
  const sup = await startSupervisor(env, "lone", [candlesActor, indicatorsActor()], testConfig());
  try {
    await sup.settle();
  } finally {
    clearInterval(blocker);
  }
  const status = sup.status();
  // Timers of the whole test process (its worker, clients, the test's own) while 600 actors run.
  const timers = process.getActiveResourcesInfo().filter((r) => r === "Timeout").length;
  assert.ok(timers < (PAIRS * 2) / 10, `timers do not grow with the actors: ${timers} with ${PAIRS * 2} actors running (a timer each made it 616)`);
  await sup.stop();
  assert.equal(sup.leasesLost, 0, "no lease lost");
  assert.equal(status.length, PAIRS * 2, "every actor ran");
  assert.deepEqual(status.filter((s) => s.restarts > 0).map((s) => `${s.stage}.${s.pair}: ${s.lastError}`), [], "no actor restarted");
  assert.equal((await env.jsm.streams.info("DLQ")).state.messages, 0, "nothing dead-lettered");
  // Every pair's 1m candles equal an independent group-by of its trades.
  await assertOracleCandles(env.js, pairs);
});
