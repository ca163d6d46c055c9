// The predictor under the real runtime (joined inputs: indicators, sentiment, tf_models): models
// promoted while candles stream in are swapped between two candles with nothing lost or
// reordered; a worker halted mid-stream and replaced resumes from its checkpoint, and the
// prediction and outcome streams are byte for byte what one uninterrupted pass over the recorded
// input order gives.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { encode } from "../../protocol/codec.js";
import { openBuckets } from "../../protocol/streams.js";
import { decodeLatest, latestKeys } from "../../supervisor/latest.js";
import { fitRidge, buildDataset, indicatorsOf, readCandleFile, BASE_FEATURES } from "../../actors/ml/mod.js";
import { linearToOnnx } from "../../actors/ml/onnx.js";
import { predictorActor } from "../../actors/predictor/actor.js";
import { ModelCache } from "../../actors/predictor/model-cache.js";
import { Registry, artifactName } from "../../actors/trainer/registry.js";
import { addRun, promote, type ModelVersion } from "../../actors/trainer/registry-record.js";
import type { Output } from "../../supervisor/actor.js";
import { subjects } from "../../protocol/subjects.js";
import { joinedOrder, journalEntries } from "../harness/joined-order.js";
import { CANDLE_FILE } from "../harness/data.js";
import { indicatorRecords, publishIndicators } from "../harness/ml.js";
import { check, cleanup, readAll, setup, type Env } from "../harness/nats.js";
import { addPair, startSupervisor, testConfig } from "../harness/pipeline.js";

let env: Env;
before(async () => {
  env = await setup();
});
after(async () => {
  await cleanup(env);
});

const PAIR = "BTC/USDT";
const candles = readCandleFile(CANDLE_FILE).slice(0, 1500);
const records = indicatorRecords(PAIR, candles);

/** Registers a ridge model fitted on the first `rows` rows as `version` and makes it the champion. */
async function promoteRidge(reg: Registry, version: number, rows: number, alpha: number): Promise<void> {
  const ds = buildDataset(indicatorsOf(candles.slice(0, rows)), { tfMs: 60_000, horizonMs: 300_000, features: [...BASE_FEATURES] });
  const bytes = linearToOnnx(fitRidge(ds.X, ds.y, { alpha }), ds.features);
  const artifact = artifactName(PAIR, "5m", version);
  const digest = await reg.putArtifact(artifact, bytes);
  const m = { mae: 1, mae_persistence: 1, mae_ratio: 1, hit_rate: null, hit_pvalue: null, dm_pvalue: null, rmse: 1, rmse_persistence: 1, n: 0 };
  const v: ModelVersion = {
    version, name: "ridge", params: { alpha }, features: ds.features, artifact, digest, metrics: m, run_id: `test-${version}`, code_version: "test",
    data: { source: "test", from_ms: null, to_ms: null, candles: rows, rows: ds.stats.rows }, gate: { promote: true, reasons: [] },
  };
  await reg.update(PAIR, "5m", (r) => promote(addRun(r, { run_id: v.run_id, started_at: "", duration_ms: 0, trigger: "test", status: "done", message: "", data: v.data, best: "ridge", version, promoted: true, candidates: [], code_version: "test" }, v), version, "test"));
}

test("predictor - swaps under a running stream lose nothing; halted mid-stream, output equals one pass over the recorded order", async () => {
  const config = testConfig();
  config.ml = { ...config.ml, horizons: ["5m"], liveWindow: 200 };
  const reg = await Registry.open(env.js);
  const fetch = (name: string, digest: string) => reg.getArtifact(name, digest);
  const def = () => predictorActor({ config, run: new ModelCache(fetch).run });
  await addPair(env.js, PAIR);
  let sup = await startSupervisor(env, "p1", [def()], config);
  const predictions = async () => (await readAll(env.js, "PREDICTIONS", "ml.predictions.5m.BTC-USDT")).length;

  // Candles stream in while the registry changes: persistence → v1 under a running stream; the
  // worker is halted (no final checkpoint, as a crash); v2 is promoted while it is down; another
  // worker takes over and the rest streams in.
  const versionsSeen = async () => new Set((await readAll(env.js, "PREDICTIONS", "ml.predictions.5m.BTC-USDT")).map((p) => p.data.model_version));
  await publishIndicators(env.js, records.slice(0, 400));
  await check(async () => (await predictions()) === 400, 120_000, "400 predictions");
  await promoteRidge(reg, 1, 400, 1e-3);
  await publishIndicators(env.js, records.slice(400, 700));
  await check(async () => (await predictions()) >= 600 && (await versionsSeen()).has(1), 120_000, "600 predictions, some by v1, before the halt");
  await sup.halt();
  await promoteRidge(reg, 2, 800, 1e-2);
  await publishIndicators(env.js, records.slice(700, 1000));
  sup = await startSupervisor(env, "p2", [def()], config);
  // The swap takes effect where the runtime journals it; the rest streams in after that.
  const journaledModels = async () => (await journalEntries(env.js, "predictor", PAIR)).filter((e) => (e.msg.data as { champion?: unknown } | undefined)?.champion).length;
  await check(async () => (await journaledModels()) >= 2, 120_000, "v2 journaled by the new owner");
  await publishIndicators(env.js, records.slice(1000));
  try {
    await check(async () => (await predictions()) === records.length, 180_000, `${records.length} predictions`);
    const preds = await readAll(env.js, "PREDICTIONS", "ml.predictions.5m.BTC-USDT");
    const outs = await readAll(env.js, "PREDICTIONS", "ml.outcomes.5m.BTC-USDT");
    assert.deepEqual(preds.map((p) => p.data.ts_ms), records.map((r) => r.window_end_ms), "one prediction per candle, in candle order");
    const versions = preds.map((p) => p.data.model_version as number);
    assert.ok(versions.every((v, i) => i === 0 || v >= versions[i - 1]), "swaps only go forward: 0 → 1 → 2");
    assert.deepEqual([...new Set(versions)], [0, 1, 2]);
    assert.ok(versions.filter((v) => v === 0).length >= 400, "persistence served until v1 arrived");
    await check(async () => (await readAll(env.js, "PREDICTIONS", "ml.outcomes.5m.BTC-USDT")).length === records.length - 5, 60_000, "outcomes");

    // Oracle: the inputs in the order the runtime recorded (the indicators, and the journal's
    // entries where they fall between them), replayed through the same logic in one pass.
    const raw = await joinedOrder(env.js, { stage: "predictor", key: PAIR, main: { name: "indicators", stream: "INDICATORS", subject: subjects.indicators("1m", PAIR) } });
    assert.equal(raw.filter((m) => m.input === "indicators").length, records.length, "every candle's indicators in the order");
    const oracle = predictorActor({ config, run: new ModelCache(fetch).run });
    const st = oracle.init(PAIR, config);
    const want: Output[] = [];
    for (const m of raw) {
      const r = oracle.receive(st, m, (o) => want.push(o));
      if (r) await r;
    }
    const got = [...preds, ...outs].sort((a, b) => a.seq - b.seq);
    assert.equal(got.length, want.length);
    assert.deepEqual(got.map((g) => g.msgId), want.map((w) => w.msgId), "same messages, same order");
    // tf_latest: the newest outcome, with the rolling live accuracy next to persistence's.
    const latest = await check(async () => {
      const e = await (await openBuckets(env.js)).latest.get(latestKeys.outcomes("5m", PAIR));
      const v = e ? decodeLatest(e.value) : null;
      return v && v.ts === records[records.length - 6].window_end_ms ? v : null;
    }, 30_000, "the newest outcome in tf_latest");
    const lastOutcome = outs[outs.length - 1].data;
    assert.deepEqual(latest.data, lastOutcome);
    assert.equal(lastOutcome.live_n, 200);
    assert.ok(lastOutcome.live_mae > 0 && lastOutcome.live_mae_ratio > 0);
    const gotBytes = await rawMessagesOf(env, "PREDICTIONS", "ml.>");
    assert.deepEqual(gotBytes.map((b) => Buffer.from(b).toString("hex")), want.map((w) => Buffer.from(encode(w.data, "msgpack")).toString("hex")), "byte-identical");
  } finally {
    await sup.stop();
  }
});

async function rawMessagesOf(e: Env, stream: string, subject: string): Promise<Uint8Array[]> {
  const c = await e.js.consumers.get(stream, { filter_subjects: subject });
  const out: Uint8Array[] = [];
  if ((await c.info()).num_pending === 0) return out;
  const iter = await c.consume({ max_messages: 1000 });
  for await (const m of iter) {
    out.push(m.data);
    if (m.info.pending === 0) break;
  }
  iter.stop();
  return out;
}
