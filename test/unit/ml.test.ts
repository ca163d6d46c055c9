import { test } from "node:test";
import assert from "node:assert/strict";
import {
  BASE_FEATURES, binomialUpperTail, buildDataset, sentimentFeature, createFeatureState, defaultCandidates, dieboldMariano, fitGbt, fitRidge, forecastMetrics, gate,
  indicatorsOf, normalCdf, predict, readCandleFile, updateFeatures, walkForward, walkForwardFolds, type CandleBar, type WalkForwardOptions,
} from "../../actors/ml/mod.js";
import { mulberry32 } from "../../actors/ml/prng.js";
import { CANDLE_FILE } from "../harness/data.js";

const MIN = 60_000;
const CANDLES = readCandleFile(CANDLE_FILE);

function bar(i: number, close: number): CandleBar {
  return { window_start_ms: i * MIN, window_end_ms: (i + 1) * MIN, open: close, high: close, low: close, close, volume: 1 + (i % 7) };
}

test("features - lagged returns are found by timestamp across a gap", () => {
  const st = createFeatureState(MIN);
  const closes = [100, 101, 102, 103];
  // Candles end at minutes 1, 2, 3 and then 10 (a six-minute gap).
  const ends = [1, 2, 3, 10];
  let row = {} as Record<string, number | null>;
  for (let i = 0; i < 4; i++) row = updateFeatures(st, { window_start_ms: (ends[i] - 1) * MIN, window_end_ms: ends[i] * MIN, close: closes[i], volume: 1, values: {} }, null);
  // ret_1 at minute 10: latest close at or before minute 9 is minute 3's (102), not a row offset's.
  assert.equal(row.ret_1, Math.log(103 / 102));
  assert.equal(row.ret_5, Math.log(103 / 102));
  assert.equal(row.ret_15, null);
  assert.throws(() => updateFeatures(st, { window_start_ms: 0, window_end_ms: 10 * MIN, close: 1, volume: 1, values: {} }, null), /not after/);
});

test("dataset - the target is the close exactly one horizon later; a gap drops rows instead of shifting them", () => {
  const candles = CANDLES.slice(0, 400);
  const holed = candles.filter((_, i) => i !== 300);
  const full = buildDataset(indicatorsOf(candles), { tfMs: MIN, horizonMs: 5 * MIN, features: [...BASE_FEATURES] });
  const gap = buildDataset(indicatorsOf(holed), { tfMs: MIN, horizonMs: 5 * MIN, features: ["tod_sin"] });
  const closeAt = new Map(holed.map((c) => [c.window_end_ms, c.close]));
  for (let i = 0; i < gap.ts.length; i++) assert.equal(gap.y[i], Math.log(closeAt.get(gap.ts[i] + 5 * MIN)! / closeAt.get(gap.ts[i])!));
  const missingEnd = candles[300].window_end_ms;
  assert.ok(!gap.ts.includes(missingEnd - 5 * MIN), "the row whose target candle is missing has no target");
  assert.equal(gap.stats.noTarget, 5 + 1, "5 rows at the end and 1 before the hole have no target");
  assert.ok(full.stats.warmup >= 60, "rows wait for the 60-candle features");
});

test("folds - expanding window, embargo of at least the horizon between training rows and the test block", () => {
  const ts = Array.from({ length: 1000 }, (_, i) => i * MIN);
  const folds = walkForwardFolds(ts, { folds: 4, initialTrainFraction: 0.5, embargoMs: 5 * MIN, minTrainRows: 10 });
  assert.equal(folds.length, 4);
  let prev = 0;
  for (const f of folds) {
    assert.ok(ts[f.train[f.train.length - 1]] <= f.testStart - 5 * MIN);
    assert.ok(f.train.length > prev, "each fold trains on more history");
    prev = f.train.length;
  }
  assert.deepEqual(folds.flatMap((f) => f.test), Array.from({ length: 500 }, (_, i) => 500 + i));
});

test("ridge - recovers known coefficients; standardization is part of the model", () => {
  const rng = mulberry32(7);
  const X: number[][] = [];
  const y: number[] = [];
  for (let i = 0; i < 2000; i++) {
    const a = rng() * 10, b = rng() * 0.01 - 0.005;
    X.push([a, b]);
    y.push(0.3 + 2 * a - 400 * b + (rng() - 0.5) * 1e-3);
  }
  const m = fitRidge(X, y, { alpha: 1e-9 });
  assert.ok(Math.abs(predict(m, [1, 0.001]) - (0.3 + 2 - 0.4)) < 1e-3);
});

test("gbt - learns a step, deterministic for a seed, different for another", () => {
  const rng = mulberry32(3);
  const X: number[][] = [];
  const y: number[] = [];
  for (let i = 0; i < 3000; i++) {
    const a = rng(), b = rng();
    X.push([a, b]);
    y.push((a > 0.6 ? 1 : -1) + (rng() - 0.5) * 0.1);
  }
  const p = { trees: 50, depth: 2, learningRate: 0.2, minLeaf: 20, subsample: 0.8, bins: 32, seed: 11 };
  const m1 = fitGbt(X, y, p);
  assert.deepEqual(fitGbt(X, y, p), m1);
  assert.notDeepEqual(fitGbt(X, y, { ...p, seed: 12 }), m1);
  assert.ok(Math.abs(predict(m1, [0.9, 0.5]) - 1) < 0.05 && Math.abs(predict(m1, [0.1, 0.5]) + 1) < 0.05);
});

test("stats - binomial tail, normal CDF and Diebold–Mariano against known values", () => {
  assert.ok(Math.abs(binomialUpperTail(60, 100) - 0.028443966820490395) < 1e-9);
  assert.equal(binomialUpperTail(0, 10), 1);
  assert.ok(Math.abs(normalCdf(1.96) - 0.9750021) < 1e-6);
  // d = −1 and +1 alternating with mean −0.1: DM = mean / sqrt(var / n).
  const d = Array.from({ length: 1000 }, (_, i) => (i % 2 ? 0.9 : -1.1));
  const r = dieboldMariano(d, 0)!;
  assert.ok(Math.abs(r.stat - -0.1 / Math.sqrt(1 / 1000)) < 1e-9);
  assert.ok(r.pvalue < 0.01);
  const m = forecastMetrics([0.01, -0.02, 0.03, 0], [0.005, 0.01, 0.01, 0.01], 0);
  assert.equal(m.hit_n, 3);
  assert.equal(m.hit_rate, 2 / 3);
  assert.ok(Math.abs(m.mae - (0.005 + 0.03 + 0.02 + 0.01) / 4) < 1e-15);
  assert.equal(m.mae_persistence, 0.06 / 4);
});

test("gate - a model worse than persistence is never promoted; the champion must be beaten too", () => {
  const worse = { kind: "gbt", params: {}, mae: 1.01, mae_persistence: 1, dm_pvalue: 0.9 };
  assert.equal(gate({ alpha: 0.05, challenger: worse, champion: null }).promote, false);
  const lucky = { kind: "gbt", params: {}, mae: 1.01, mae_persistence: 1, dm_pvalue: 0.001 };
  assert.equal(gate({ alpha: 0.05, challenger: lucky, champion: null }).promote, false, "a small p-value does not promote a higher MAE");
  const better = { kind: "ridge", params: { alpha: 1 }, mae: 0.9, mae_persistence: 1, dm_pvalue: 0.01 };
  assert.equal(gate({ alpha: 0.05, challenger: better, champion: null }).promote, true);
  assert.equal(gate({ alpha: 0.001, challenger: better, champion: null }).promote, false, "alpha is configurable");
  assert.equal(gate({ alpha: 0.05, challenger: better, champion: { kind: "gbt", params: {}, mae: 0.89, dm_pvalue_vs: 0.9 } }).promote, false);
  assert.equal(gate({ alpha: 0.05, challenger: better, champion: { kind: "ridge", params: { alpha: 1 }, mae: 0.89, dm_pvalue_vs: null } }).promote, true, "a refresh of the champion's recipe");
});

test("walk-forward - out-of-sample metrics on real candles, deterministic for a fixed seed", () => {
  const ds = buildDataset(indicatorsOf(CANDLES), { tfMs: MIN, horizonMs: 5 * MIN, features: [...BASE_FEATURES] });
  const o: WalkForwardOptions = { folds: 3, initialTrainFraction: 0.5, embargoMs: 5 * MIN, minTrainRows: 500, validFraction: 0.2, searchBudgetMs: 1e9, hacLag: 4, now: () => 0 };
  const cands = defaultCandidates(5).map((c) => (c.kind === "gbt" ? { ...c, grid: c.grid.slice(0, 2) } : c));
  const a = walkForward(ds, cands, o);
  const b = walkForward(ds, cands, o);
  assert.deepEqual(a, b);
  const pers = a.find((r) => r.kind === "persistence")!;
  assert.equal(pers.overall.mae_ratio, 1);
  for (const r of a) {
    assert.equal(r.folds.length, 3);
    assert.equal(r.overall.n, ds.ts.length - Math.floor(ds.ts.length * 0.5));
    assert.ok(r.overall.mae > 0 && Number.isFinite(r.overall.mae_ratio));
  }
});

test("features - sentiment counts from before a candle's close only, and not when stale", () => {
  const T = 10 * 3_600_000;
  assert.equal(sentimentFeature({ ts_ms: T, score: 0.5 }, T), 0, "the signal of the same close may arrive after the candle live: never used");
  assert.equal(sentimentFeature({ ts_ms: T - 60_000, score: 0.5 }, T), 0.5);
  assert.equal(sentimentFeature({ ts_ms: T - 7 * 3_600_000, score: 0.5 }, T), 0, "older than 6 h");
  assert.equal(sentimentFeature(null, T), 0);
});
