// Features, defined once: the trainer builds its rows and the predictor its live vectors with this
// same code, from the same input (an indicators record of the pair's 1m series, in order), so
// training and serving cannot drift apart. Every feature is scale-free (returns, ratios, z-scores)
// so a model trained on one price level still applies at another.
//
// The state is plain data (numbers, arrays, null) so that it is checkpointed with the predictor
// and a restored copy continues exactly where the original left off.

/** What a feature row is built from: a closed candle with its indicator values (md.indicators.1m.<pair>). */
export type FeatureInput = {
  window_start_ms: number;
  window_end_ms: number;
  close: number;
  volume: number;
  values: Record<string, number | null | undefined>;
};

/** The latest sentiment signal of the pair (md.sentiment.<pair>), if any. */
export type SentimentInput = { ts_ms: number; score: number };

/** Lags (in candles of the series' timeframe) of the log-return features. */
export const RETURN_LAGS = [1, 3, 5, 15, 60] as const;
/** Window of the volume z-score, in candles. */
export const VOLUME_WINDOW = 60;
/** A sentiment signal older than this (event time) no longer counts: the feature is 0, "no news". */
export const SENTIMENT_MAX_AGE_MS = 6 * 3_600_000;

/** Every feature the builder knows, in a fixed order. `sentiment` is used only when the data had it. */
export const BASE_FEATURES = [
  ...RETURN_LAGS.map((k) => `ret_${k}`),
  "sma21_dev", "sma60_dev", "rsi14", "macd_hist_rel", "bb_pctb", "bb_width", "atr14_rel", "volume_z", "tod_sin", "tod_cos",
] as const;
export const SENTIMENT_FEATURE = "sentiment";

export type FeatureState = {
  v: 1;
  tfMs: number;
  /** Ring of the last closes and their candle end times (the newest RETURN_LAGS.max + 1 candles). */
  ts: number[];
  closes: number[];
  /** Ring of the last VOLUME_WINDOW volumes. */
  volumes: number[];
  /** Candles applied so far (also the write position of the rings). */
  n: number;
  lastEnd: number;
};

const RING = Math.max(...RETURN_LAGS) + 1;
const DAY_MS = 86_400_000;

export function createFeatureState(tfMs: number): FeatureState {
  return { v: 1, tfMs, ts: new Array(RING).fill(0), closes: new Array(RING).fill(0), volumes: new Array(VOLUME_WINDOW).fill(0), n: 0, lastEnd: -1 };
}

/** A row of named features for one candle; null values while warming up. */
export type FeatureRow = Record<string, number | null>;

/**
 * Applies one candle (in event-time order) and returns its features. Returns are measured against
 * the latest close at or before `end − k·tf`, by timestamp, so a gap in the series never pairs a
 * close with the wrong past one; before enough history exists they are null.
 */
export function updateFeatures(s: FeatureState, x: FeatureInput, sentiment: SentimentInput | null): FeatureRow {
  if (x.window_end_ms <= s.lastEnd) throw new RangeError(`candle ending ${x.window_end_ms} is not after the last one (${s.lastEnd})`);
  if (!(x.close > 0) || !Number.isFinite(x.volume)) throw new RangeError(`candle ending ${x.window_end_ms} has close ${x.close}, volume ${x.volume}`);
  const slot = s.n % RING;
  s.ts[slot] = x.window_end_ms;
  s.closes[slot] = x.close;
  s.volumes[s.n % VOLUME_WINDOW] = x.volume;
  s.n++;
  s.lastEnd = x.window_end_ms;

  const row: FeatureRow = {};
  for (const k of RETURN_LAGS) row[`ret_${k}`] = pastReturn(s, x.window_end_ms - k * s.tfMs, x.close);
  const v = x.values;
  const c = x.close;
  row.sma21_dev = ratio(c, v.sma_21, -1);
  row.sma60_dev = ratio(c, v.sma_60, -1);
  row.rsi14 = num(v.rsi_14) === null ? null : (v.rsi_14 as number) / 100 - 0.5;
  row.macd_hist_rel = num(v.macd_hist) === null ? null : (v.macd_hist as number) / c;
  const up = num(v.bb_upper), lo = num(v.bb_lower), mid = num(v.bb_middle);
  row.bb_pctb = up === null || lo === null ? null : up > lo ? (c - lo) / (up - lo) - 0.5 : 0;
  row.bb_width = up === null || lo === null || mid === null || mid <= 0 ? null : (up - lo) / mid;
  row.atr14_rel = num(v.atr_14) === null ? null : (v.atr_14 as number) / c;
  row.volume_z = s.n >= VOLUME_WINDOW ? zScore(s.volumes, x.volume) : null;
  const phase = (2 * Math.PI * (((x.window_end_ms % DAY_MS) + DAY_MS) % DAY_MS)) / DAY_MS;
  row.tod_sin = Math.sin(phase);
  row.tod_cos = Math.cos(phase);
  row[SENTIMENT_FEATURE] = sentimentFeature(sentiment, x.window_end_ms);
  return row;
}

/**
 * The sentiment feature at a candle's end: the score of a signal from before that end (the signal
 * of this very close is computed from the same candle and may arrive after it live, so it is never
 * used: training and serving then agree), if recent, else 0.
 */
export function sentimentFeature(s: SentimentInput | null, atMs: number): number {
  if (!s || s.ts_ms >= atMs || atMs - s.ts_ms > SENTIMENT_MAX_AGE_MS || !Number.isFinite(s.score)) return 0;
  return Math.max(-1, Math.min(1, s.score));
}

/** The vector for a model: the named features in the model's order, or null if any is still warming up. */
export function vectorOf(row: FeatureRow, names: readonly string[]): number[] | null {
  const out = new Array<number>(names.length);
  for (let i = 0; i < names.length; i++) {
    const v = row[names[i]];
    if (v === null || v === undefined || !Number.isFinite(v)) return null;
    out[i] = v;
  }
  return out;
}

function pastReturn(s: FeatureState, atOrBefore: number, close: number): number | null {
  // Newest first: the first entry at or before the time is the latest close then.
  const len = Math.min(s.n, RING);
  for (let i = 1; i < len; i++) {
    const j = (s.n - 1 - i) % RING;
    if (s.ts[j] <= atOrBefore) return Math.log(close / s.closes[j]);
  }
  return null;
}

function zScore(ring: number[], x: number): number {
  let sum = 0;
  for (const v of ring) sum += v;
  const mean = sum / ring.length;
  let sq = 0;
  for (const v of ring) sq += (v - mean) * (v - mean);
  const sd = Math.sqrt(sq / ring.length);
  return sd > 0 ? (x - mean) / sd : 0;
}

function num(v: number | null | undefined): number | null {
  return typeof v === "number" && Number.isFinite(v) ? v : null;
}

function ratio(c: number, d: number | null | undefined, minus: number): number | null {
  const x = num(d);
  return x === null || x <= 0 ? null : c / x + minus;
}
