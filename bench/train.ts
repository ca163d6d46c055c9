// Training time per pair-month of 1m candles: one full training computation (features from the
// indicators engine, walk-forward of persistence, ridge and gradient-boosted trees with their
// hyper-parameter search, final fit, ONNX export and its onnxruntime check) on 30 days of real
// BTC/USDT candles, with the default ml settings. Reference in the same run: building the dataset
// alone (indicators + features + targets) for the same candles.
import { existsSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { buildDataset, BASE_FEATURES, indicatorsOf, readCandleFile } from "../actors/ml/mod.js";
import { computeRun } from "../actors/trainer/compute-run.js";
import { loadConfig } from "../supervisor/config.js";

const SHARED = "/work/shared/data/candles/binance-BTC-USDT-1m-2023.csv.gz";
const SLICE = fileURLToPath(new URL("../data/candles/binance-BTC-USDT-1m-2023-03-16-slice.csv.gz", import.meta.url));
const MONTH = 30 * 24 * 60;

export type TrainBench = {
  file: string;
  candles: number;
  rows: number;
  seconds: number;
  datasetSeconds: number;
  ratio: number;
  best: string;
  maeRatio: Record<string, number>;
  /** Hyper-parameter settings tried per fold, per candidate (fewer than the grid: the time budget cut the search). */
  searched: Record<string, number[]>;
  searchBudgetMs: number;
};

export async function trainBench(log: (s: string) => void): Promise<TrainBench> {
  const file = existsSync(SHARED) ? SHARED : SLICE;
  const candles = readCandleFile(file).slice(0, MONTH);
  const ml = loadConfig({ env: {} }).ml;
  const t0 = performance.now();
  const inputs = indicatorsOf(candles);
  const ds = buildDataset(inputs, { tfMs: 60_000, horizonMs: 300_000, features: [...BASE_FEATURES] });
  const datasetSeconds = (performance.now() - t0) / 1000;
  log(`train: ${candles.length} candles from ${file}; dataset ${ds.stats.rows} rows in ${datasetSeconds.toFixed(2)} s`);
  const t1 = performance.now();
  const r = computeRun({ horizon: "5m", data: { inputs, sentiment: [], source: file }, settings: ml, champion: null, progress: (m) => log(`train: ${m}`) });
  const seconds = (performance.now() - t1) / 1000 + datasetSeconds;
  if (r.status !== "done") throw new Error(`training skipped: ${r.message}`);
  return {
    file, candles: candles.length, rows: ds.stats.rows, seconds, datasetSeconds, ratio: seconds / datasetSeconds, best: r.best,
    maeRatio: Object.fromEntries(r.candidates.map((c) => [c.name, c.overall.mae_ratio])),
    searched: Object.fromEntries(r.candidates.map((c) => [c.name, c.folds.map((f) => f.searched)])),
    searchBudgetMs: ml.searchBudgetMs,
  };
}

export function formatTrain(t: TrainBench): string[] {
  return [
    `Training: one pair-month of 1m candles (${t.candles.toLocaleString("en-US")} candles → ${t.rows.toLocaleString("en-US")} rows, ${t.file.split("/").pop()}), default ml settings, one thread`,
    `   time      ${t.seconds.toFixed(1)} s per pair-month (dataset alone ${t.datasetSeconds.toFixed(2)} s; training / dataset = ${t.ratio.toFixed(0)}×)`,
    `   search    settings tried per fold (budget ${t.searchBudgetMs / 1000} s per candidate and fold): ${Object.entries(t.searched).map(([k, v]) => `${k} ${v.join("/")}`).join(" · ")}`,
    `   result    best ${t.best} · MAE ratio to persistence ${Object.entries(t.maeRatio).map(([k, v]) => `${k} ${v.toFixed(4)}`).join(" · ")}`,
  ];
}
