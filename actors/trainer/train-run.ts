// One training run for a (pair, horizon): dataset → walk-forward of every candidate (and of the
// champion's recipe, on the same folds) → the best challenger → the gate → ONNX export, checked
// with onnxruntime against the in-process model → artifact, version and run recorded in the
// registry, the challenger promoted only if the gate says so. Every run is recorded, also one
// skipped for want of data.
import { nanoid } from "nanoid";
import type { Config } from "../../supervisor/config.js";
import { ErrorCode, TickflowError } from "../../protocol/errors.js";
import { timeframeMs } from "../../protocol/timeframes.js";
import {
  BASE_FEATURES, SENTIMENT_FEATURE, buildDataset, defaultCandidates, dmBetween, finalFit, gate, predict, walkForward,
  type Candidate, type CandidateResult, type Dataset, type FeatureInput, type SentimentInput, type WalkForwardOptions,
} from "../ml/mod.js";
import { toOnnx } from "../ml/onnx.js";
import { OnnxModel } from "../predictor/onnx-runner.js";
import { codeVersion } from "./code-version.js";
import { addRun, persistenceChampion, promote, wfMetrics, type DataRange, type ModelVersion, type RunSummary } from "./registry-record.js";
import { artifactName, type Registry } from "./registry.js";

export type TrainInput = { inputs: FeatureInput[]; sentiment: SentimentInput[]; source: string };

export type TrainRequest = {
  pair: string;
  horizon: string;
  data: TrainInput;
  settings: Config["ml"];
  trigger: string;
  progress?: (msg: string) => void;
  /** Clock for timestamps and the search budget (the trainer actor passes event time for `started_at`). */
  now?: () => number;
};

/** A feature is used only when the data carries it: sentiment needs signals on at least this share of rows. */
const SENTIMENT_MIN_COVERAGE = 0.1;
/** Rows checked ONNX against in-process after export. */
const ONNX_CHECK_ROWS = 5000;
const ONNX_TOLERANCE = 1e-5;

export function featureListFor(ds0: Dataset | null, sentiment: SentimentInput[]): string[] {
  const base: string[] = [...BASE_FEATURES];
  if (!sentiment.length || !ds0) return base;
  const col = ds0.features.indexOf(SENTIMENT_FEATURE);
  const covered = ds0.X.filter((x) => x[col] !== 0).length;
  return covered >= SENTIMENT_MIN_COVERAGE * ds0.X.length ? [...base, SENTIMENT_FEATURE] : base;
}

export async function runTraining(reg: Registry, req: TrainRequest): Promise<RunSummary & { champion: string }> {
  const { pair, horizon, settings: s } = req;
  const clock = req.now ?? Date.now;
  const t0 = Date.now();
  const runId = `${new Date(t0).toISOString().replace(/[-:.]/g, "").slice(0, 15)}-${nanoid(6).replace(/[^A-Za-z0-9]/g, "x")}`;
  const tfMs = timeframeMs(s.timeframe);
  const horizonMs = timeframeMs(horizon);
  if (horizonMs % tfMs !== 0) throw new TickflowError(ErrorCode.BadArgs, `horizon ${horizon} is not a whole number of ${s.timeframe} candles`);
  const say = req.progress ?? (() => {});
  const { inputs, sentiment, source } = req.data;

  const withSentiment = sentiment.length
    ? buildDataset(inputs, { tfMs, horizonMs, features: [...BASE_FEATURES, SENTIMENT_FEATURE], sentiment })
    : null;
  const features = featureListFor(withSentiment, sentiment);
  const ds = buildDataset(inputs, { tfMs, horizonMs, features, sentiment });
  const data: DataRange = { source, from_ms: ds.stats.first, to_ms: ds.stats.last, candles: inputs.length, rows: ds.stats.rows };
  say(`${pair} ${horizon}: ${inputs.length} candles → ${ds.stats.rows} rows (${ds.stats.warmup} warming up, ${ds.stats.noTarget} without a target candle); features: ${features.join(", ")}`);

  const summary = (status: RunSummary["status"], message: string, extra: Partial<RunSummary> = {}): RunSummary => ({
    run_id: runId, started_at: new Date(t0).toISOString(), duration_ms: Date.now() - t0, trigger: req.trigger, status, message, data,
    best: null, version: null, promoted: false, candidates: [], code_version: codeVersion(), ...extra,
  });

  if (ds.stats.rows < s.minRows) {
    const run = summary("skipped", `${ds.stats.rows} usable rows, fewer than ml.minRows (${s.minRows})`);
    await reg.putRun(pair, horizon, runId, run);
    const rec = await reg.update(pair, horizon, (r) => addRun(r, run, null));
    return { ...run, champion: `${rec.champion.name} v${rec.champion.version}` };
  }

  const hacLag = horizonMs / tfMs - 1;
  const wf: WalkForwardOptions = {
    folds: s.folds, initialTrainFraction: s.initialTrainFraction, embargoMs: Math.max(horizonMs, s.embargoMs), minTrainRows: Math.min(s.minRows, 500),
    validFraction: 0.2, searchBudgetMs: s.searchBudgetMs, hacLag, progress: say, now: req.now,
  };
  const cands = defaultCandidates(s.seed);
  const { record: before } = await reg.get(pair, horizon);
  const champ = before.champion;
  const champRecipe: Candidate | null = champ.version > 0 ? { kind: before.versions.find((v) => v.version === champ.version)?.name as never, grid: [before.versions.find((v) => v.version === champ.version)?.params] } : null;
  const all = champRecipe && champRecipe.kind ? [...cands, champRecipe] : cands;
  const results = walkForward(ds, all, wf);
  const byCand = results.slice(0, cands.length);
  const champResult: CandidateResult | null = champRecipe && champRecipe.kind ? results[cands.length] : null;
  const candRows = byCand.map((r, i) => ({ name: r.kind, params: r.folds.map((f) => f.params), ...wfMetrics(r.overall), _i: i }));
  const pers = byCand.find((r) => r.kind === "persistence")!;
  const challengers = byCand.filter((r) => r.kind !== "persistence");
  const best = challengers.reduce((a, b) => (b.overall.mae < a.overall.mae ? b : a));
  const bestCand = cands.find((c) => c.kind === best.kind)!;
  say(`${pair} ${horizon}: walk-forward MAE ratio to persistence: ${challengers.map((r) => `${r.kind} ${r.overall.mae_ratio.toFixed(4)} (DM p ${r.overall.dm_pvalue?.toFixed(3)})`).join(", ")}; final fit of ${best.kind}`);

  const { model, params } = finalFit(ds, bestCand, wf);
  const verdict = gate({
    alpha: s.alpha,
    challenger: { kind: best.kind, params, mae: best.overall.mae, mae_persistence: best.overall.mae_persistence, dm_pvalue: best.overall.dm_pvalue },
    champion: champResult ? { kind: champResult.kind, params: champRecipe!.grid[0], mae: champResult.overall.mae, dm_pvalue_vs: dmBetween(ds, best, champResult, hacLag) } : null,
  });

  // Export and prove the artifact: onnxruntime must reproduce the in-process model.
  const bytes = toOnnx(model, features);
  const onnx = await OnnxModel.load(bytes, features.length);
  let worst = 0;
  try {
    const step = Math.max(1, Math.floor(ds.X.length / ONNX_CHECK_ROWS));
    const rows = ds.X.filter((_, i) => i % step === 0);
    const got = await onnx.run(rows);
    rows.forEach((x, i) => (worst = Math.max(worst, Math.abs(got[i] - predict(model, x)))));
  } finally {
    await onnx.release();
  }
  if (!(worst <= ONNX_TOLERANCE)) throw new TickflowError(ErrorCode.OnnxMismatch, `${pair} ${horizon}: the ONNX export of ${best.kind} differs from the in-process model by ${worst} (> ${ONNX_TOLERANCE})`);

  const version = Math.max(0, ...before.versions.map((v) => v.version), ...before.runs.map((r) => r.version ?? 0)) + 1;
  const artifact = artifactName(pair, horizon, version);
  const digest = await reg.putArtifact(artifact, bytes);
  const mv: ModelVersion = {
    version, name: best.kind, params, features, artifact, digest, metrics: wfMetrics(best.overall), data, run_id: runId, code_version: codeVersion(), gate: verdict,
  };
  const run = summary("done", verdict.promote ? `${best.kind} v${version} promoted` : `${best.kind} v${version} registered, not promoted: ${verdict.reasons.join("; ")}`, {
    best: best.kind, version, promoted: verdict.promote, candidates: candRows.map(({ _i, ...c }) => c),
  });
  await reg.putRun(pair, horizon, runId, {
    ...run, onnx_max_abs_diff: worst, final_params: params, features, walk_forward: { ...wf, progress: undefined, now: undefined, candidates: all },
    results: results.map((r, i) => ({ name: i === cands.length ? `champion recipe (${r.kind})` : r.kind, overall: r.overall, folds: r.folds })),
    champion_before: { name: champ.name, version: champ.version }, started_event_ms: clock(),
  });
  const rec = await reg.update(pair, horizon, (r) => {
    const withRun = addRun(r, run, mv);
    // Promote only over the champion the gate was computed against; a champion changed meanwhile wins.
    if (verdict.promote && r.champion.version === champ.version) return promote(withRun, version, "gate");
    // Persistence serving: its figures are those of the newest run's data.
    if (withRun.champion.version === 0) return { ...withRun, champion: persistenceChampion(horizon, wfMetrics(pers.overall), "no model has passed the gate") };
    return withRun;
  });
  say(`${pair} ${horizon}: ${run.message}; champion: ${rec.champion.name} v${rec.champion.version}`);
  return { ...run, champion: `${rec.champion.name} v${rec.champion.version}` };
}
