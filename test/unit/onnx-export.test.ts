import { test } from "node:test";
import assert from "node:assert/strict";
import { BASE_FEATURES, buildDataset, fitGbt, fitRidge, indicatorsOf, predict, readCandleFile } from "../../actors/ml/mod.js";
import { linearToOnnx, treesToOnnx } from "../../actors/ml/onnx.js";
import { OnnxModel } from "../../actors/predictor/onnx-runner.js";
import { CANDLE_FILE } from "../harness/data.js";

const ds = buildDataset(indicatorsOf(readCandleFile(CANDLE_FILE)), { tfMs: 60_000, horizonMs: 300_000, features: [...BASE_FEATURES] });

/** Worst |ONNX − in-process| over every row, through the public async API and the synchronous native path. */
async function maxDiff(bytes: Uint8Array, model: Parameters<typeof predict>[0]): Promise<number> {
  assert.equal(OnnxModel.syncUnavailable, null);
  const a = await OnnxModel.load(bytes, ds.features.length);
  const b = OnnxModel.loadSync(bytes, ds.features.length);
  try {
    const got = await a.run(ds.X);
    const gotSync = ds.X.map((x) => b.runSync([x])[0]);
    assert.equal(got.length, ds.X.length);
    assert.deepEqual(gotSync, got, "one row at a time, synchronously, gives the same floats as the batch");
    let worst = 0;
    ds.X.forEach((x, i) => (worst = Math.max(worst, Math.abs(got[i] - predict(model, x)))));
    return worst;
  } finally {
    await a.release();
    await b.release();
  }
}

test("onnx - the ridge graph (Sub, Div, MatMul, Add) equals the in-process model within 1e-5", async () => {
  const m = fitRidge(ds.X, ds.y, { alpha: 1e-2 });
  assert.ok(m.weights.some((w) => Math.abs(w) > 1e-6), "a model with real weights");
  assert.ok((await maxDiff(linearToOnnx(m, ds.features), m)) <= 1e-5);
});

test("onnx - ai.onnx.ml TreeEnsembleRegressor equals the in-process trees within 1e-5, on every training row", async () => {
  const m = fitGbt(ds.X, ds.y, { trees: 40, depth: 3, learningRate: 0.1, minLeaf: 50, subsample: 0.8, bins: 32, seed: 1 });
  assert.ok(new Set(ds.X.map((x) => predict(m, x))).size > 10, "the trees split");
  assert.ok((await maxDiff(treesToOnnx(m, ds.features), m)) <= 1e-5);
});
