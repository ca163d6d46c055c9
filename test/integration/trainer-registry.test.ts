// The trainer through its CLI commands against a real nats-server: runs recorded in tf_models,
// artifacts in tf_artifacts that onnxruntime loads, the gate, promote and rollback.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { modelsCommand, trainCommand } from "../../actors/trainer/commands.js";
import { Registry } from "../../actors/trainer/registry.js";
import { OnnxModel } from "../../actors/predictor/onnx-runner.js";
import { CANDLE_FILE } from "../harness/data.js";
import { predictableCandles, runCommand, testConfig, toCsv } from "../harness/ml.js";
import { cleanup, setup, type Env } from "../harness/nats.js";
import { tickflow, tickflowOk } from "../harness/procs.js";

let env: Env;
let dir: string;
let cfgFile: string;
before(async () => {
  env = await setup();
  dir = mkdtempSync(join(tmpdir(), "tf-train-"));
  cfgFile = join(dir, "config.json");
  writeFileSync(cfgFile, JSON.stringify({ ml: { minRows: 500 } }));
});
after(async () => {
  await cleanup(env);
  rmSync(dir, { recursive: true, force: true });
});

test("trainer - a run on real candles is recorded with its metrics; the gate holds; show --json prints champion and runs", async () => {
  const cfg = testConfig(env.server.url, { alpha: 0.05 });
  const out = JSON.parse(await runCommand(trainCommand, cfg, [], { pair: "BTC/USDT", candles: CANDLE_FILE, json: true }));
  assert.equal(out.status, "done");
  const shown = JSON.parse(await runCommand(modelsCommand, cfg, ["show", "BTC/USDT"], { json: true }));
  assert.equal(shown.runs.length, 1);
  assert.equal(shown.runs[0].run_id, out.run_id);
  for (const k of ["mae", "mae_persistence", "mae_ratio", "hit_rate", "dm_pvalue"]) {
    assert.ok(k in shown.champion, `champion has ${k}`);
    for (const c of shown.runs[0].candidates) assert.ok(k in c, `run candidate ${c.name} has ${k}`);
  }
  assert.deepEqual([shown.champion.horizon, typeof shown.champion.name, typeof shown.champion.version], ["5m", "string", "number"]);
  const best = shown.runs[0].candidates.find((c: { name: string }) => c.name === out.best);
  // The gate: a promoted model beat persistence with DM p < alpha; anything else leaves persistence serving.
  if (out.promoted) assert.ok(best.mae < best.mae_persistence && best.dm_pvalue < 0.05);
  else assert.equal(shown.champion.name, "persistence");
  // The registered version's artifact is in the object store, matches its digest and loads.
  const reg = await Registry.open(env.js);
  const v = shown.versions[0];
  const bytes = await reg.getArtifact(v.artifact, v.digest);
  const m = await OnnxModel.load(bytes, v.features.length);
  assert.equal((await m.run([new Array(v.features.length).fill(0)])).length, 1);
  await m.release();
  const full = (await reg.getRun("BTC/USDT", "5m", out.run_id)) as { results: { folds: unknown[] }[]; onnx_max_abs_diff: number };
  assert.equal(full.results[0].folds.length, 3);
  assert.ok(full.onnx_max_abs_diff <= 1e-5);
});

test("trainer - a model worse than persistence is never promoted, even with alpha = 1", async () => {
  // alpha = 1 removes the significance requirement; the MAE condition alone must still stop a loser.
  const cfg = testConfig(env.server.url, { alpha: 1 });
  for (const seed of [1, 2]) {
    const out = JSON.parse(await runCommand(trainCommand, { ...cfg, ml: { ...cfg.ml, seed } }, [], { pair: "ETH/USDT", candles: CANDLE_FILE, json: true }));
    const best = out.candidates.find((c: { name: string }) => c.name === out.best);
    assert.equal(out.promoted, best.mae < best.mae_persistence, `seed ${seed}: promoted exactly when MAE beats persistence`);
  }
  const shown = JSON.parse(await runCommand(modelsCommand, cfg, ["show", "ETH-USDT"], { json: true }));
  assert.equal(shown.runs.length, 2);
  if (shown.champion.version > 0) assert.ok(shown.champion.mae_ratio < 1);
});

test("trainer - a predictable series is promoted by the gate; promote and rollback move the champion alias", async () => {
  const cfg = testConfig(env.server.url);
  const file = join(dir, "sine.csv");
  writeFileSync(file, toCsv(predictableCandles(2500)));
  const out = JSON.parse(await runCommand(trainCommand, cfg, [], { pair: "SIN/USD", candles: file, json: true }));
  assert.equal(out.promoted, true, out.message);
  let shown = JSON.parse(await runCommand(modelsCommand, cfg, ["show", "SIN/USD"], { json: true }));
  assert.equal(shown.champion.version, out.version);
  assert.ok(shown.champion.mae_ratio < 0.9 && shown.champion.dm_pvalue < 0.05);
  // Same recipe again: a refresh, promoted on the persistence test alone.
  const again = JSON.parse(await runCommand(trainCommand, cfg, [], { pair: "SIN/USD", candles: file, json: true }));
  shown = JSON.parse(await runCommand(modelsCommand, cfg, ["show", "SIN/USD"], { json: true }));
  assert.equal(shown.champion.version, again.promoted ? again.version : out.version);
  await runCommand(modelsCommand, cfg, ["promote", "SIN/USD", "0"]);
  shown = JSON.parse(await runCommand(modelsCommand, cfg, ["show", "SIN/USD"], { json: true }));
  assert.equal(shown.champion.name, "persistence");
  await runCommand(modelsCommand, cfg, ["rollback", "SIN/USD"]);
  shown = JSON.parse(await runCommand(modelsCommand, cfg, ["show", "SIN/USD"], { json: true }));
  assert.ok(shown.champion.version > 0);
  const ls = await runCommand(modelsCommand, cfg, ["ls"]);
  assert.match(ls, /SIN\/USD\s+5m/);
  assert.match(ls, /BTC\/USDT\s+5m/);
  await assert.rejects(runCommand(modelsCommand, cfg, ["promote", "SIN/USD", "99"]), /no version 99/);
});

test("trainer - through the real CLI: tickflow train, then models show --json; a bad candle file is a usage error", async () => {
  const nats = ["--nats", env.server.url];
  const envVars = { TICKFLOW_ML_FOLDS: "3", LOG_LEVEL: "warn" };
  const run = JSON.parse(await tickflowOk(["train", "--pair", "ADA/USDT", "--candles", CANDLE_FILE, "--horizon", "5m", "--json", ...nats], { ...envVars, TICKFLOW_CONFIG: cfgFile }));
  assert.equal(run.status, "done");
  const shown = JSON.parse(await tickflowOk(["models", "show", "ADA/USDT", "--json", ...nats]));
  assert.equal(shown.runs.at(-1).run_id, run.run_id);
  assert.equal(shown.champion.horizon, "5m");
  const bad = await tickflow(["train", "--pair", "ADA/USDT", "--candles", "/nonexistent.csv.gz", ...nats]).exited;
  assert.equal(bad.code, 2);
});
