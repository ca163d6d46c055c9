// One training run for a (pair, horizon), recorded in the registry whatever its outcome: the CPU
// part (compute-run.ts) in this thread or in a worker, then the artifact, the version and the run
// in JetStream, and the challenger promoted only if the gate said so.
import { nanoid } from "nanoid";
import type { Config } from "../../supervisor/config.js";
import { codeVersion } from "./code-version.js";
import { computeRun, type ComputedRun, type ComputeRequest, type TrainInput } from "./compute-run.js";
import { addRun, persistenceChampion, promote, wfMetrics, type DataRange, type ModelVersion, type RunSummary } from "./registry-record.js";
import { artifactName, type Registry } from "./registry.js";

export type { TrainInput };

export type TrainRequest = {
  pair: string;
  horizon: string;
  data: TrainInput;
  settings: Config["ml"];
  trigger: string;
  progress?: (msg: string) => void;
  /** Runs the CPU part; default: in this thread (the trainer actor passes a worker). */
  compute?: (req: ComputeRequest) => Promise<ComputedRun>;
};

export type RunResult = RunSummary & { champion: string };

export async function runTraining(reg: Registry, req: TrainRequest): Promise<RunResult> {
  const { pair, horizon } = req;
  const t0 = Date.now();
  const runId = `${new Date(t0).toISOString().replace(/[-:.]/g, "").slice(0, 15)}-${nanoid(6).replace(/[^A-Za-z0-9]/g, "x")}`;
  const say = req.progress ?? (() => {});
  const { record: before } = await reg.get(pair, horizon);
  const champ = before.champion;
  const champVersion = champ.version > 0 ? before.versions.find((v) => v.version === champ.version) : undefined;
  const creq: ComputeRequest = {
    horizon, data: req.data, settings: req.settings, progress: (m) => say(`${pair} ${horizon}: ${m}`),
    champion: champVersion ? { kind: champVersion.name, params: champVersion.params } : null,
  };
  const c = req.compute ? await req.compute(creq) : computeRun(creq);
  const data: DataRange = { source: req.data.source, from_ms: c.stats.first, to_ms: c.stats.last, candles: c.stats.candles, rows: c.stats.rows, input_to_ms: req.data.inputToMs ?? null, input_to_seq: req.data.inputToSeq ?? null };
  const summary = (status: RunSummary["status"], message: string, extra: Partial<RunSummary> = {}): RunSummary => ({
    run_id: runId, started_at: new Date(t0).toISOString(), duration_ms: Date.now() - t0, trigger: req.trigger, status, message, data,
    best: null, version: null, promoted: false, candidates: [], code_version: codeVersion(), ...extra,
  });

  if (c.status === "skipped") {
    const run = summary("skipped", c.message);
    await reg.putRun(pair, horizon, runId, { ...run, features: c.features });
    const rec = await reg.update(pair, horizon, (r) => addRun(r, run, null));
    say(`${pair} ${horizon}: run skipped: ${c.message}`);
    return { ...run, champion: `${rec.champion.name} v${rec.champion.version}` };
  }

  const version = Math.max(0, ...before.versions.map((v) => v.version), ...before.runs.map((r) => r.version ?? 0)) + 1;
  const artifact = artifactName(pair, horizon, version);
  const digest = await reg.putArtifact(artifact, c.onnx);
  const bestRow = c.candidates.find((x) => x.name === c.best)!;
  const mv: ModelVersion = {
    version, name: c.best, params: c.params, features: c.features, artifact, digest, metrics: wfMetrics(bestRow.overall), data, run_id: runId,
    code_version: codeVersion(), gate: c.verdict,
  };
  const run = summary("done", c.verdict.promote ? `${c.best} v${version} promoted` : `${c.best} v${version} registered, not promoted: ${c.verdict.reasons.join("; ")}`, {
    best: c.best, best_params: c.params, version, promoted: c.verdict.promote,
    candidates: c.candidates.map((x) => ({ name: x.name, params: x.folds.map((f) => f.params), ...wfMetrics(x.overall) })),
  });
  await reg.putRun(pair, horizon, runId, {
    ...run, features: c.features, final_params: c.params, onnx_max_abs_diff: c.onnxMaxAbsDiff, walk_forward: c.walkForward,
    results: c.candidates, champion_recipe: c.championRecipe, champion_before: { name: champ.name, version: champ.version },
  });
  const pers = c.candidates.find((x) => x.name === "persistence")!;
  const rec = await reg.update(pair, horizon, (r) => {
    const withRun = addRun(r, run, mv);
    // Promote only over the champion the gate was computed against; a champion changed meanwhile wins.
    if (c.verdict.promote && r.champion.version === champ.version) return promote(withRun, version, "gate");
    // Persistence serving: its figures are those of the newest run's data.
    if (withRun.champion.version === 0) return { ...withRun, champion: persistenceChampion(horizon, wfMetrics(pers.overall), "no model has passed the gate") };
    return withRun;
  });
  say(`${pair} ${horizon}: ${run.message}; champion: ${rec.champion.name} v${rec.champion.version}`);
  return { ...run, champion: `${rec.champion.name} v${rec.champion.version}` };
}
