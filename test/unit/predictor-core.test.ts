import { test } from "node:test";
import assert from "node:assert/strict";
import { decode, encode } from "@msgpack/msgpack";
import { indicatorsActor } from "../../actors/indicators/actor.js";
import { BASE_FEATURES, buildDataset, featureRows, fitRidge, indicatorsOf, readCandleFile, type FeatureRow } from "../../actors/ml/mod.js";
import { linearToOnnx } from "../../actors/ml/onnx.js";
import { predictorActor } from "../../actors/predictor/actor.js";
import { ModelCache } from "../../actors/predictor/model-cache.js";
import type { PredictorState } from "../../actors/predictor/core.js";
import { sha256 } from "../../actors/trainer/registry.js";
import { emptyRecord, type RegistryRecord } from "../../actors/trainer/registry-record.js";
import type { InputMsg, Output } from "../../supervisor/actor.js";
import { loadConfig } from "../../supervisor/config.js";
import { CANDLE_FILE } from "../harness/data.js";

const PAIR = "BTC/USDT";
const config = loadConfig({ env: {} });
const candles = readCandleFile(CANDLE_FILE).slice(0, 600);

/** The indicator records the indicators stage publishes for these candles, as bytes on the wire and back. */
function indicatorMessages(): unknown[] {
  const act = indicatorsActor();
  const st = act.init(PAIR, config);
  const out: unknown[] = [];
  candles.forEach((c, i) => {
    const candle = { v: 1, pair: PAIR, tf: "1m", ...c, vwap: c.close, trades: 1, flat: false };
    act.receive(st, msg("md.candles.1m.BTC-USDT", i + 1, candle), (o) => out.push(decode(encode(o.data))));
  });
  return out;
}

function msg(subject: string, seq: number, data: unknown, input?: string): InputMsg & { input?: string } {
  return { subject, seq, data, input: input ?? "main", header: () => undefined, raw: new Uint8Array() };
}

function recordWith(version: number, bytes: Uint8Array | null, features: string[]): RegistryRecord {
  const r = emptyRecord(PAIR, "5m", 300);
  if (version > 0 && bytes) {
    r.champion = { ...r.champion, name: "ridge", version, artifact: `BTC-USDT/5m/v${version}.onnx`, digest: sha256(bytes), features, reason: "gate" };
  }
  return r;
}

test("predictor - live feature rows equal the trainer's rows for the same candles (indicators stage → predictor)", () => {
  const live: { ts: number; row: FeatureRow }[] = [];
  const def = predictorActor({ config, run: () => 0, onRow: (_p, ts, row) => live.push({ ts, row }) });
  const st = def.init(PAIR, config);
  indicatorMessages().forEach((m, i) => def.receive(st, msg("md.indicators.1m.BTC-USDT", i + 1, m, "indicators"), () => {}));
  const training = featureRows(indicatorsOf(candles), 60_000);
  assert.equal(live.length, candles.length);
  assert.deepEqual(live, training.map(({ ts, row }) => ({ ts, row })));
  // And the dataset's X rows are exactly these rows' vectors.
  const ds = buildDataset(indicatorsOf(candles), { tfMs: 60_000, horizonMs: 300_000, features: [...BASE_FEATURES] });
  const byTs = new Map(live.map((r) => [r.ts, r.row]));
  ds.ts.forEach((ts, i) => assert.deepEqual(ds.X[i], BASE_FEATURES.map((f) => byTs.get(ts)![f])));
});

/** Runs the predictor over the inputs from a state; returns the encoded outputs. */
async function drive(def: ReturnType<typeof predictorActor>, st: PredictorState, inputs: (InputMsg & { input?: string })[]): Promise<Uint8Array[]> {
  const out: Uint8Array[] = [];
  for (const m of inputs) {
    const outs: Output[] = [];
    const r = def.receive(st, m, (o) => outs.push(o));
    if (r) await r;
    for (const o of outs) out.push(encode([o.subject, o.msgId, o.data]));
  }
  return out;
}

test("predictor - hot swap between two candles loses nothing; a restart from a checkpoint republishes byte-identical outputs", async () => {
  const ind = indicatorMessages();
  const ds = buildDataset(indicatorsOf(candles), { tfMs: 60_000, horizonMs: 300_000, features: [...BASE_FEATURES] });
  const m1 = linearToOnnx(fitRidge(ds.X, ds.y, { alpha: 1e-3 }), ds.features);
  const m2 = linearToOnnx(fitRidge(ds.X.slice(0, 300), ds.y.slice(0, 300), { alpha: 1e-2 }), ds.features);
  const artifacts = new Map([[sha256(m1), m1], [sha256(m2), m2]]);
  let fetches = 0;
  const fetch = async (_name: string, digest: string) => {
    fetches++;
    return artifacts.get(digest)!;
  };
  // Inputs: candles, with the registry switching persistence → v1 at 200, v1 → v2 at 400, and sentiment at 300.
  const inputs: (InputMsg & { input?: string })[] = [];
  ind.forEach((m, i) => {
    if (i === 200) inputs.push(msg("$KV.tf_models.BTC-USDT.5m", 1, JSON.parse(JSON.stringify(recordWith(1, m1, ds.features))), "models"));
    if (i === 300) inputs.push(msg("md.sentiment.BTC-USDT", 1, { v: 1, pair: PAIR, coin: "BTC", ts_ms: (m as { window_end_ms: number }).window_end_ms, score: 0.4, items: 3, half_life_s: 3600 }, "sentiment"));
    if (i === 400) inputs.push(msg("$KV.tf_models.BTC-USDT.5m", 2, JSON.parse(JSON.stringify(recordWith(2, m2, ds.features))), "models"));
    inputs.push(msg("md.indicators.1m.BTC-USDT", i + 1, m, "indicators"));
  });

  const cacheA = new ModelCache(fetch);
  const def = predictorActor({ config, run: cacheA.run });
  const st = def.init(PAIR, config);
  const all = await drive(def, st, inputs);
  const preds = all.map((b) => decode(b) as [string, string, Record<string, unknown>]).filter(([s]) => s.startsWith("ml.predictions."));
  const outcomes = all.map((b) => decode(b) as [string, string, Record<string, unknown>]).filter(([s]) => s.startsWith("ml.outcomes."));
  assert.equal(preds.length, candles.length, "one prediction per candle, none dropped around the swaps");
  assert.deepEqual(preds.map(([, , p]) => p.ts_ms), ind.map((m) => (m as { window_end_ms: number }).window_end_ms), "in candle order");
  const versions = preds.map(([, , p]) => p.model_version);
  assert.ok(versions.slice(0, 200).every((v) => v === 0));
  assert.equal(versions[199], 0);
  assert.equal(versions[200], 1, "the new champion serves from the first candle after its record");
  assert.ok(versions.slice(200, 400).every((v) => v === 1) && versions.slice(400).every((v) => v === 2));
  assert.equal(outcomes.length, candles.length - 5, "every prediction whose target candle came has its outcome");
  const o = outcomes[300][2] as Record<string, number>;
  assert.ok(Math.abs(o.abs_error - Math.abs(o.actual_return - o.predicted_return)) < 1e-18 && o.baseline_abs_error === Math.abs(o.actual_return));
  assert.equal(preds.find(([, , p]) => p.model_version === 0)![2].model, "persistence");
  assert.equal(fetches, 2);

  // Kill after several inputs (before, between and right after swaps): checkpoint (msgpack, as the runtime stores it), new process (empty model cache), resume.
  for (const cut of [150, 201, 399, 401, 555]) {
    const cacheB = new ModelCache(fetch);
    const defB = predictorActor({ config, run: cacheB.run });
    const s1 = defB.init(PAIR, config);
    const head = await drive(defB, s1, inputs.slice(0, cut));
    const restored = decode(encode(s1)) as PredictorState;
    const tail = await drive(predictorActor({ config, run: new ModelCache(fetch).run }), restored, inputs.slice(cut));
    assert.deepEqual([...head, ...tail].map((b) => Buffer.from(b).toString("hex")), all.map((b) => Buffer.from(b).toString("hex")), `restart after input ${cut}`);
  }
  await cacheA.close();
});
