// The CPU part of a training run, with no I/O, so that it can run in a worker thread (the trainer
// actor) as well as in the CLI: dataset → walk-forward of every candidate (and of the champion's
// recipe, on the same folds) → best challenger → gate → final fit → ONNX export, verified with
// onnxruntime against the in-process model.
import { ErrorCode, TickflowError } from "../../protocol/errors.js";
import { timeframeMs } from "../../protocol/timeframes.js";
import type { Config } from "../../supervisor/config.js";
import {
  BASE_FEATURES, SENTIMENT_FEATURE, buildDataset, defaultCandidates, dmBetween, finalFit, gate, predict, walkForward,
  type Candidate, type Dataset, type FeatureInput, type ForecastMetrics, type FoldResult, type GateVerdict, type SentimentInput, type WalkForwardOptions,
} from "../ml/mod.js";
import { toOnnx } from "../ml/onnx.js";
import { OnnxModel } from "../predictor/onnx-runner.js";

export type TrainInput = {
  inputs: FeatureInput[];
  sentiment: SentimentInput[];
  source: string;
  /** The newest candle end the data source covered (the trainer actor resumes after it). */
  inputToMs?: number;
  /** That candle's sequence in INDICATORS (the trainer actor resumes its read after it). */
  inputToSeq?: number;
};

export type ComputeRequest = {
  horizon: string;
  data: TrainInput;
  settings: Config["ml"];
  /** The champion's recipe, evaluated on the same folds for the gate; null when persistence serves. */
  champion: { kind: string; params: unknown } | null;
  progress?: (msg: string) => void;
};

export type ComputedRun =
  | { status: "skipped"; message: string; features: string[]; stats: Dataset["stats"] }
  | {
    status: "done";
    features: string[];
    stats: Dataset["stats"];
    candidates: { name: string; overall: ForecastMetrics; folds: FoldResult[] }[];
    championRecipe: { name: string; overall: ForecastMetrics; folds: FoldResult[]; dmPvalueVsBest: number | null } | null;
    best: string;
    params: unknown;
    verdict: GateVerdict;
    onnx: Uint8Array;
    onnxMaxAbsDiff: number;
    walkForward: Omit<WalkForwardOptions, "progress" | "now"> & { candidates: Candidate[] };
  };

/** Sentiment is a feature only when the data carries it: signals on at least this share of rows. */
const SENTIMENT_MIN_COVERAGE = 0.1;
/** Rows checked ONNX against in-process after export. */
const ONNX_CHECK_ROWS = 5000;
export const ONNX_TOLERANCE = 1e-5;

export function computeRun(req: ComputeRequest): ComputedRun {
  const s = req.settings;
  const say = req.progress ?? (() => {});
  const tfMs = timeframeMs(s.timeframe);
  const horizonMs = timeframeMs(req.horizon);
  if (horizonMs % tfMs !== 0) throw new TickflowError(ErrorCode.BadArgs, `horizon ${req.horizon} is not a whole number of ${s.timeframe} candles`);
  const { inputs, sentiment } = req.data;
  let features: string[] = [...BASE_FEATURES];
  if (sentiment.length) {
    const probe = buildDataset(inputs, { tfMs, horizonMs, features: [SENTIMENT_FEATURE], sentiment });
    const covered = probe.X.filter((x) => x[0] !== 0).length;
    if (covered >= SENTIMENT_MIN_COVERAGE * probe.X.length) features = [...features, SENTIMENT_FEATURE];
  }
  const ds = buildDataset(inputs, { tfMs, horizonMs, features, sentiment });
  say(`${inputs.length} candles → ${ds.stats.rows} rows (${ds.stats.warmup} warming up, ${ds.stats.noTarget} without a target candle); features: ${features.join(", ")}`);
  if (ds.stats.rows < s.minRows) return { status: "skipped", message: `${ds.stats.rows} usable rows, fewer than ml.minRows (${s.minRows})`, features, stats: ds.stats };

  const hacLag = horizonMs / tfMs - 1;
  const wf: WalkForwardOptions = {
    folds: s.folds, initialTrainFraction: s.initialTrainFraction, embargoMs: Math.max(horizonMs, s.embargoMs), minTrainRows: Math.min(s.minRows, 500),
    validFraction: 0.2, searchBudgetMs: s.searchBudgetMs, hacLag, progress: say,
  };
  const cands = defaultCandidates(s.seed);
  const champ: Candidate | null = req.champion && ["ridge", "gbt"].includes(req.champion.kind) ? { kind: req.champion.kind as "ridge" | "gbt", grid: [req.champion.params] } : null;
  const results = walkForward(ds, champ ? [...cands, champ] : cands, wf);
  const byCand = results.slice(0, cands.length);
  const champResult = champ ? results[cands.length] : null;
  const challengers = byCand.filter((r) => r.kind !== "persistence");
  const best = challengers.reduce((a, b) => (b.overall.mae < a.overall.mae ? b : a));
  say(`walk-forward MAE ratio to persistence: ${challengers.map((r) => `${r.kind} ${r.overall.mae_ratio.toFixed(4)} (DM p ${r.overall.dm_pvalue?.toFixed(3)})`).join(", ")}; final fit of ${best.kind}`);

  const { model, params } = finalFit(ds, cands.find((c) => c.kind === best.kind)!, wf);
  const dmVsChampion = champResult ? dmBetween(ds, best, champResult, hacLag) : null;
  const verdict = gate({
    alpha: s.alpha,
    challenger: { kind: best.kind, params, mae: best.overall.mae, mae_persistence: best.overall.mae_persistence, dm_pvalue: best.overall.dm_pvalue },
    champion: champResult ? { kind: champResult.kind, params: champ!.grid[0], mae: champResult.overall.mae, dm_pvalue_vs: dmVsChampion } : null,
  });

  // Export and prove the artifact: onnxruntime must reproduce the in-process model.
  const onnx = toOnnx(model, features);
  const m = OnnxModel.loadSync(onnx, features.length);
  let worst = 0;
  try {
    const step = Math.max(1, Math.floor(ds.X.length / ONNX_CHECK_ROWS));
    const rows = ds.X.filter((_, i) => i % step === 0);
    const got = m.runSync(rows);
    rows.forEach((x, i) => (worst = Math.max(worst, Math.abs(got[i] - predict(model, x)))));
  } finally {
    void m.release();
  }
  if (!(worst <= ONNX_TOLERANCE)) throw new TickflowError(ErrorCode.OnnxMismatch, `the ONNX export of ${best.kind} differs from the in-process model by ${worst} (> ${ONNX_TOLERANCE})`);
  const { progress: _p, now: _n, ...wfRecorded } = wf;
  return {
    status: "done", features, stats: ds.stats,
    candidates: byCand.map((r) => ({ name: r.kind, overall: r.overall, folds: r.folds })),
    championRecipe: champResult ? { name: champResult.kind, overall: champResult.overall, folds: champResult.folds, dmPvalueVsBest: dmVsChampion } : null,
    best: best.kind, params, verdict, onnx, onnxMaxAbsDiff: worst, walkForward: { ...wfRecorded, candidates: champ ? [...cands, champ] : cands },
  };
}
