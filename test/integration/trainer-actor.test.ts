// The trainer actor under the real runtime: retrains every N candles of event time (counted from
// the INDICATORS stream), in a worker thread, never overlapping itself, and resumes after a
// restart from what its recorded runs read (no run repeated).
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { trainerActor } from "../../actors/trainer/actor.js";
import type { ComputedRun } from "../../actors/trainer/compute-run.js";
import { TrainingTurns } from "../../actors/trainer/training-turns.js";
import { Registry } from "../../actors/trainer/registry.js";
import { addPairs } from "../../supervisor/desired-pairs.js";
import { subjects } from "../../protocol/subjects.js";
import { addPair, startSupervisor, testConfig as runtimeConfig } from "../harness/pipeline.js";
import { indicatorRecords, predictableCandles, publishIndicators } from "../harness/ml.js";
import { check, cleanup, setup, type Env } from "../harness/nats.js";

let env: Env;
before(async () => {
  env = await setup();
});
after(async () => {
  await cleanup(env);
});

test("trainer actor - runs every N new candles once caught up, in a worker, never overlapping; a restart repeats no run", async () => {
  const pair = "SIN/USD";
  const config = runtimeConfig();
  config.ml = { ...config.ml, folds: 3, minRows: 500, retrainEveryCandles: 1000, maxTrainCandles: 2000, searchBudgetMs: 600_000 };
  const records = indicatorRecords(pair, predictableCandles(3600, 4));
  // 2,500 candles of backlog: one run when 2,000 (a full window) are new, then 500 more wait.
  await publishIndicators(env.js, records.slice(0, 2500));
  await addPair(env.js, pair);
  const reg = await Registry.open(env.js);
  let sup = await startSupervisor(env, "t1", [trainerActor()], config);
  try {
    const first = await check(async () => {
      const { record } = await reg.get(pair, "5m");
      return record.runs.length >= 1 ? record : null;
    }, 240_000, "the first scheduled run");
    assert.equal(first.runs[0].data.input_to_ms, records[1999].window_end_ms, "the run read through the 2,000th new candle");
    assert.equal(first.runs[0].trigger.startsWith("schedule:"), true);
    assert.equal(first.runs[0].status, "done");
    assert.equal(first.runs[0].promoted, true, first.runs[0].message);
    await sup.stop();
    // Restart: resumes after candle 2,000; 1,100 more new candles make one more run (through 3,000, then caught up).
    await publishIndicators(env.js, records.slice(2500, 3100));
    sup = await startSupervisor(env, "t2", [trainerActor()], config);
    const second = await check(async () => {
      const { record } = await reg.get(pair, "5m");
      return record.runs.length >= 2 ? record : null;
    }, 240_000, "the second scheduled run");
    assert.equal(second.runs[1].data.input_to_ms, records[3099].window_end_ms);
    const r0 = second.runs[0], r1 = second.runs[1];
    assert.ok(Date.parse(r0.started_at) + r0.duration_ms <= Date.parse(r1.started_at), "runs never overlap");
    // Caught up with everything published, one run in this incarnation: nothing was trained twice.
    const st = await check(() => sup.status().find((a) => a.stage === "trainer" && a.lastInputTs === records[3099].window_end_ms && a.detail.training === false), 60_000, "the trainer caught up");
    assert.equal(st.detail.runs, 1);
    assert.equal(st.detail.candlesSinceRun, 0);
    // Its status names the stream sequence of the newest candle it read (it said 0), and how many it read here.
    const newestSeq = (await env.jsm.streams.getMessage("INDICATORS", { last_by_subj: subjects.indicators(config.ml.timeframe, pair) }))!.seq;
    assert.equal(st.lastSeq, newestSeq);
    assert.equal(st.processed, 1100);
    assert.equal((await reg.get(pair, "5m")).record.runs.length, 2, "no run repeated after the restart");
  } finally {
    await sup.stop();
  }
});

test("trainer actor - twelve pairs due in the same minute train one at a time, each reading its window only in its turn; after a restart they read on through the process's reader, no consumer each", async () => {
  const pairs = Array.from({ length: 12 }, (_, i) => `TT${i}/USD`);
  const config = runtimeConfig();
  // A whole window of new candles makes a run due even while the stream is still being read.
  config.ml = { ...config.ml, minRows: 50, retrainEveryCandles: 150, maxTrainCandles: 150 };
  // Every pair's 150th candle is published before any trainer starts: all come due together.
  const candles = predictableCandles(150, 7);
  for (const pair of pairs) await publishIndicators(env.js, indicatorRecords(pair, candles));
  await addPairs(env.js, pairs);
  const turns = new TrainingTurns(1);
  // The training itself (here a quick "skipped"; normally the worker thread) is called inside the
  // turn, after the window was read: at most one at a time means at most one window in memory.
  let inside = 0;
  let most = 0;
  const compute = async (): Promise<ComputedRun> => {
    inside++;
    most = Math.max(most, inside);
    await new Promise((r) => setTimeout(r, 20));
    inside--;
    return { status: "skipped", message: "test", features: [], stats: { candles: 0, rows: 0, warmup: 0, noTarget: 0, first: null, last: null } };
  };
  const reg = await Registry.open(env.js);
  const sup = await startSupervisor(env, "tt", [trainerActor({ compute, turns })], config);
  try {
    await check(async () => {
      for (const p of pairs) if ((await reg.get(p, "5m")).record.runs.length < 1) return false;
      return true;
    }, 60_000, "a run for every pair");
    assert.equal(most, 1, "one training at a time");
    assert.equal(turns.peakHolding, 1);
    assert.ok(turns.peakWaiting >= 2, `the trainers came due together (${turns.peakWaiting} waited at once)`);
    for (const p of pairs) assert.equal((await reg.get(p, "5m")).record.runs.length, 1, `${p}: one run`);
    // A run records where in INDICATORS its window ended; a restart reads on from there through the
    // process's reader of the stream: no consumer per trainer (twelve here, a thousand at scale).
    const seqs = await Promise.all(pairs.map(async (p) => (await env.jsm.streams.getMessage("INDICATORS", { last_by_subj: `md.indicators.1m.${p.replace("/", "-")}` }))!.seq));
    for (const [i, p] of pairs.entries()) assert.equal((await reg.get(p, "5m")).record.runs[0].data.input_to_seq, seqs[i], `${p}: the run's last candle's sequence`);
  } finally {
    await sup.stop();
  }
  const before = new Set((await env.jsm.consumers.list("INDICATORS").next()).map((c) => c.name));
  const again = await startSupervisor(env, "tt2", [trainerActor({ compute, turns })], config);
  try {
    await check(() => again.runsAllItOwns() && again.status().filter((a) => a.stage === "trainer" && a.state === "running" && pairs.includes(a.pair!)).length === pairs.length, 30_000, "every trainer running again");
    // Consumers of INDICATORS with a subject filter made since the restart: none (the process's
    // reader has no filter, and nothing is left to catch up). Each trainer made one before.
    const own = (await env.jsm.consumers.list("INDICATORS").next()).filter((c) => !before.has(c.name) && c.config.filter_subject);
    assert.deepEqual(own.map((c) => c.config.filter_subject), []);
    for (const p of pairs) assert.equal((await reg.get(p, "5m")).record.runs.length, 1, `${p}: no run repeated after the restart`);
  } finally {
    await again.stop();
  }
});
