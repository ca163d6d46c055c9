// The predictor's model cache releases a model nobody has used for a while (a replaced champion),
// keeps the ones in use, and loads an evicted one again when it is needed.
import { test } from "node:test";
import assert from "node:assert/strict";
import { BASE_FEATURES, buildDataset, fitRidge, indicatorsOf, readCandleFile } from "../../actors/ml/mod.js";
import { linearToOnnx } from "../../actors/ml/onnx.js";
import { ModelCache } from "../../actors/predictor/model-cache.js";
import type { ModelRef } from "../../actors/predictor/core.js";
import { sha256 } from "../../actors/trainer/registry.js";
import { CANDLE_FILE } from "../harness/data.js";

test("model cache - a model idle for longer than idleMs is released and loaded again when used; a model in use stays", async () => {
  const candles = readCandleFile(CANDLE_FILE).slice(0, 400);
  const ds = buildDataset(indicatorsOf(candles), { tfMs: 60_000, horizonMs: 300_000, features: [...BASE_FEATURES] });
  const bytes = [1e-3, 1e-2].map((alpha) => linearToOnnx(fitRidge(ds.X, ds.y, { alpha }), ds.features));
  const refs: ModelRef[] = bytes.map((b, i) => ({ name: "ridge", version: i + 1, artifact: `v${i + 1}.onnx`, digest: sha256(b), features: ds.features }));
  const byDigest = new Map(bytes.map((b) => [sha256(b), b]));
  let fetches = 0;
  let now = 0;
  const cache = new ModelCache(async (_name, digest) => {
    fetches++;
    return byDigest.get(digest)!;
  }, { idleMs: 10 * 60_000, now: () => now });
  const x = ds.X[0];
  const first = await cache.run(refs[0], x);
  await cache.run(refs[1], x);
  assert.equal(cache.size, 2);
  // Model 1 replaced by model 2: only model 2 is used from here on, every minute.
  for (let minute = 1; minute <= 15; minute++) {
    now = minute * 60_000;
    assert.equal(typeof cache.run(refs[1], x), "number", "a loaded model answers synchronously");
  }
  assert.equal(cache.size, 1, "the model idle for 15 minutes is released");
  assert.equal(cache.evicted, 1);
  assert.equal(fetches, 2);
  // Needed again (a swap back): fetched and loaded again, with the same answer as before.
  assert.equal(await cache.run(refs[0], x), first);
  assert.equal(fetches, 3);
  assert.equal(cache.size, 2);
  await cache.close();
});
