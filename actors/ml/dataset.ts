// Training rows: features (features.ts, the predictor's own code) and the target, the log return
// of the close over the horizon, found by TIMESTAMP: the row at candle end t is paired with the
// candle that ends exactly at t + H. A gap in the data leaves rows without a target (dropped); it
// can never pair a close with a later or earlier one than the horizon says.
import { readFileSync } from "node:fs";
import { gunzipSync } from "node:zlib";
import { createIndicatorState, DEFAULT_INDICATORS, updateIndicators, type IndicatorConfig } from "../indicators/engine.js";
import { createFeatureState, updateFeatures, vectorOf, type FeatureInput, type FeatureRow, type SentimentInput } from "./features.js";

/** One candle as the candle files and the CANDLES stream describe it. */
export type CandleBar = { window_start_ms: number; window_end_ms: number; open: number; high: number; low: number; close: number; volume: number };

export type Dataset = {
  features: string[];
  /** Candle end time of each row (ms); strictly increasing. */
  ts: number[];
  X: number[][];
  /** Log return of the close from ts to ts + horizon. */
  y: number[];
  /** Close at ts (the prediction's base price). */
  base: number[];
  horizonMs: number;
  /** Candles read, rows kept, rows dropped while warming up or for want of a target candle. */
  stats: { candles: number; rows: number; warmup: number; noTarget: number; first: number | null; last: number | null };
};

/**
 * Reads a candle file in the shared format (gzip or plain CSV, header
 * `open_time_ms,open,high,low,close,volume`). Throws with the file and line of the first bad row.
 */
export function readCandleFile(file: string, tfMs = 60_000): CandleBar[] {
  const raw = readFileSync(file);
  const text = (raw[0] === 0x1f && raw[1] === 0x8b ? gunzipSync(raw) : raw).toString("utf8");
  const lines = text.split("\n");
  const out: CandleBar[] = [];
  const header = lines[0].trim();
  if (header !== "open_time_ms,open,high,low,close,volume") throw new Error(`${file}:1: expected the header open_time_ms,open,high,low,close,volume (got "${header.slice(0, 60)}")`);
  for (let i = 1; i < lines.length; i++) {
    const l = lines[i].trim();
    if (!l) continue;
    const f = l.split(",").map(Number);
    if (f.length !== 6 || f.some((v) => !Number.isFinite(v)) || !(f[4] > 0) || f[5] < 0) throw new Error(`${file}:${i + 1}: not a candle row (${l.slice(0, 80)})`);
    const start = f[0];
    if (out.length > 0 && start <= out[out.length - 1].window_start_ms) throw new Error(`${file}:${i + 1}: open_time_ms ${start} is not after the previous row's`);
    out.push({ window_start_ms: start, window_end_ms: start + tfMs, open: f[1], high: f[2], low: f[3], close: f[4], volume: f[5] });
  }
  return out;
}

/** Candles → indicators (the project's streaming engine, as the indicators stage runs it) → feature inputs. */
export function indicatorsOf(candles: CandleBar[], cfg: IndicatorConfig = DEFAULT_INDICATORS): FeatureInput[] {
  const st = createIndicatorState(cfg);
  return candles.map((c) => ({ window_start_ms: c.window_start_ms, window_end_ms: c.window_end_ms, close: c.close, volume: c.volume, values: updateIndicators(st, c) }));
}

/** Feature rows of a series, each with its candle's close and end time (what the predictor computes live). */
export function featureRows(inputs: FeatureInput[], tfMs: number, sentiment: SentimentInput[] = []): { ts: number; close: number; row: FeatureRow }[] {
  const st = createFeatureState(tfMs);
  const sorted = [...sentiment].sort((a, b) => a.ts_ms - b.ts_ms);
  let si = -1;
  return inputs.map((x) => {
    // Signals from before this close only (see sentimentFeature).
    while (si + 1 < sorted.length && sorted[si + 1].ts_ms < x.window_end_ms) si++;
    return { ts: x.window_end_ms, close: x.close, row: updateFeatures(st, x, si >= 0 ? sorted[si] : null) };
  });
}

/** Rows with every feature present and a target candle exactly `horizonMs` later. */
export function buildDataset(inputs: FeatureInput[], opts: { tfMs: number; horizonMs: number; features: string[]; sentiment?: SentimentInput[] }): Dataset {
  const rows = featureRows(inputs, opts.tfMs, opts.sentiment);
  const closeAt = new Map<number, number>();
  for (const r of rows) closeAt.set(r.ts, r.close);
  const ds: Dataset = {
    features: [...opts.features], ts: [], X: [], y: [], base: [], horizonMs: opts.horizonMs,
    stats: { candles: inputs.length, rows: 0, warmup: 0, noTarget: 0, first: null, last: null },
  };
  for (const r of rows) {
    const x = vectorOf(r.row, opts.features);
    if (!x) {
      ds.stats.warmup++;
      continue;
    }
    const future = closeAt.get(r.ts + opts.horizonMs);
    if (future === undefined) {
      ds.stats.noTarget++;
      continue;
    }
    ds.ts.push(r.ts);
    ds.X.push(x);
    ds.y.push(Math.log(future / r.close));
    ds.base.push(r.close);
  }
  ds.stats.rows = ds.ts.length;
  ds.stats.first = ds.ts.length ? ds.ts[0] : null;
  ds.stats.last = ds.ts.length ? ds.ts[ds.ts.length - 1] : null;
  return ds;
}

/** The rows at the given indices, as a new dataset (same features and horizon). */
export function subset(ds: Dataset, idx: number[]): Dataset {
  return {
    features: ds.features, horizonMs: ds.horizonMs, stats: ds.stats,
    ts: idx.map((i) => ds.ts[i]), X: idx.map((i) => ds.X[i]), y: idx.map((i) => ds.y[i]), base: idx.map((i) => ds.base[i]),
  };
}
