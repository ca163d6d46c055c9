// The predictor's logic for one pair, apart from its actor shell: three inputs, applied one at a
// time in the order the runtime recorded them (so a replay reproduces everything):
//  - indicators (md.indicators.<tf>.<pair>): resolve the outcomes whose target time this candle
//    reaches, update the features (the trainer's own code), predict every horizon;
//  - sentiment (md.sentiment.<pair>): remember the latest signal (a feature from the next candle on);
//  - models (KV tf_models, the pair's records): the champion of a horizon changes here and only
//    here — a hot swap between two inputs, so nothing is dropped or reordered around it.
// Event time comes only from the data: a prediction made at candle end T targets T + H, and its
// outcome is published by the first candle that ends at or after T + H.
import { BadInputError } from "../../protocol/errors.js";
import { IndicatorsCheck, SCHEMA_VERSION, type Indicators } from "../../protocol/messages.js";
import { pairToToken } from "../../protocol/pairs.js";
import { subjects } from "../../protocol/subjects.js";
import { timeframeMs } from "../../protocol/timeframes.js";
import type { Output } from "../../supervisor/actor.js";
import { createFeatureState, updateFeatures, vectorOf, type FeatureRow, type FeatureState, type SentimentInput } from "../ml/mod.js";
import type { RegistryRecord } from "../trainer/registry-record.js";
import { addOutcome, createLiveStats, type LiveStats, type LiveSummary } from "./live-stats.js";

/** The model serving a horizon. Persistence is version 0 with no artifact. */
export type ModelRef = { name: string; version: number; artifact: string | null; digest: string | null; features: string[] };

export const PERSISTENCE: ModelRef = { name: "persistence", version: 0, artifact: null, digest: null, features: [] };

export type Prediction = {
  v: number;
  pair: string;
  horizon: string;
  horizon_s: number;
  ts_ms: number;
  target_ts_ms: number;
  base_price: number;
  predicted_return: number;
  predicted_price: number;
  model: string;
  model_version: number;
};

export type Outcome = Prediction & {
  actual_price: number;
  actual_return: number;
  /** |actual_return − predicted_return| (log-return units, like the trainer's MAE). */
  abs_error: number;
  /** |actual_return|: the error of persistence, which predicts no change. */
  baseline_abs_error: number;
} & LiveSummary;

export type PredictorState = {
  v: 1;
  pair: string;
  tf: string;
  horizons: string[];
  features: FeatureState;
  /** The newest sentiment signal and the one before it (the feature uses the newest from before a candle's close). */
  sentiment: SentimentInput | null;
  sentimentPrev: SentimentInput | null;
  models: Record<string, ModelRef>;
  pending: Record<string, Prediction[]>;
  live: Record<string, LiveStats>;
  counts: { candles: number; predictions: number; outcomes: number; expired: number; swaps: number; ignored: number };
};

/** Runs a model on one feature vector: synchronous when it is loaded, a promise while it loads. */
export type ModelRunner = (ref: ModelRef, x: number[]) => number | Promise<number>;

export function createPredictorState(pair: string, tf: string, horizons: string[], liveWindow: number): PredictorState {
  const models: Record<string, ModelRef> = {};
  const pending: Record<string, Prediction[]> = {};
  const live: Record<string, LiveStats> = {};
  for (const h of horizons) {
    models[h] = PERSISTENCE;
    pending[h] = [];
    live[h] = createLiveStats(liveWindow);
  }
  return { v: 1, pair, tf, horizons: [...horizons], features: createFeatureState(timeframeMs(tf)), sentiment: null, sentimentPrev: null, models, pending, live, counts: { candles: 0, predictions: 0, outcomes: 0, expired: 0, swaps: 0, ignored: 0 } };
}

export function predictionMsgId(h: string, pair: string, ts: number): string {
  return `${h}:${pairToToken(pair)}:${ts}`;
}

export function outcomeMsgId(h: string, pair: string, ts: number): string {
  return `${h}:${pairToToken(pair)}:${ts}:outcome`;
}

/** A registry record arrived: the champion of its horizon is in force from the next candle on. */
export function applyRegistry(s: PredictorState, rec: unknown, where: string): boolean {
  const r = rec as RegistryRecord;
  if (!r || typeof r !== "object" || r.v !== 1 || typeof r.horizon !== "string" || !r.champion) throw new BadInputError(`${where}: not a tf_models registry record`);
  if (r.pair !== s.pair) throw new BadInputError(`${where}: record of ${String(r.pair)} on ${s.pair}'s input`);
  if (!s.horizons.includes(r.horizon)) {
    s.counts.ignored++;
    return false;
  }
  const c = r.champion;
  const next: ModelRef = c.version > 0 && c.artifact && c.digest
    ? { name: c.name, version: c.version, artifact: c.artifact, digest: c.digest, features: [...c.features] }
    : PERSISTENCE;
  const cur = s.models[r.horizon];
  if (cur.version === next.version && cur.digest === next.digest) return false;
  s.models[r.horizon] = next;
  s.counts.swaps++;
  return true;
}

export function applySentiment(s: PredictorState, data: unknown, where: string): void {
  const x = data as { ts_ms?: unknown; score?: unknown; pair?: unknown };
  if (!x || typeof x.ts_ms !== "number" || typeof x.score !== "number" || !Number.isFinite(x.score)) throw new BadInputError(`${where}: not a sentiment signal (needs ts_ms and score)`);
  if (x.pair !== undefined && x.pair !== s.pair) throw new BadInputError(`${where}: signal of ${String(x.pair)} on ${s.pair}'s input`);
  if (s.sentiment && x.ts_ms < s.sentiment.ts_ms) return; // an older signal than we have: nothing newer to learn
  if (!s.sentiment || x.ts_ms > s.sentiment.ts_ms) s.sentimentPrev = s.sentiment;
  s.sentiment = { ts_ms: x.ts_ms, score: x.score };
}

/**
 * A candle with its indicators: outcomes first (they need only prices), then features and one
 * prediction per horizon. Returns a promise only when a model must be loaded first.
 */
export function applyCandle(s: PredictorState, data: unknown, where: string, run: ModelRunner, emit: (o: Output) => void, onRow?: (ts: number, row: FeatureRow) => void): void | Promise<void> {
  const why = IndicatorsCheck.explain(data);
  if (why) throw new BadInputError(`${where}: ${why}`);
  const c = data as Indicators;
  if (c.pair !== s.pair) throw new BadInputError(`${where}: candle of ${c.pair} on ${s.pair}'s input`);
  if (c.tf !== s.tf) {
    s.counts.ignored++;
    return;
  }
  const end = c.window_end_ms;
  if (end <= s.features.lastEnd) throw new BadInputError(`${where}: candle ending ${new Date(end).toISOString()} is not after the last one applied (${new Date(s.features.lastEnd).toISOString()})`);
  for (const h of s.horizons) resolveOutcomes(s, h, end, c.close, emit);
  const sent = s.sentiment && s.sentiment.ts_ms < end ? s.sentiment : s.sentimentPrev && s.sentimentPrev.ts_ms < end ? s.sentimentPrev : null;
  const row = updateFeatures(s.features, c, sent);
  s.counts.candles++;
  onRow?.(end, row);
  const horizons = s.horizons;
  for (let i = 0; i < horizons.length; i++) {
    const h = horizons[i];
    const ref = s.models[h];
    const x = ref.version > 0 ? vectorOf(row, ref.features) : null;
    if (!x) {
      predictOne(s, h, c, PERSISTENCE, 0, emit);
      continue;
    }
    const r = run(ref, x);
    if (typeof r === "number") {
      predictOne(s, h, c, ref, r, emit);
      continue;
    }
    // A model to load first: finish this horizon and the rest after it, in the same order.
    return (async () => {
      predictOne(s, h, c, ref, await r, emit);
      for (let j = i + 1; j < horizons.length; j++) {
        const h2 = horizons[j];
        const ref2 = s.models[h2];
        const x2 = ref2.version > 0 ? vectorOf(row, ref2.features) : null;
        if (!x2) predictOne(s, h2, c, PERSISTENCE, 0, emit);
        else predictOne(s, h2, c, ref2, await run(ref2, x2), emit);
      }
    })();
  }
}

function predictOne(s: PredictorState, h: string, c: Indicators, ref: ModelRef, ret: number, emit: (o: Output) => void): void {
  if (!Number.isFinite(ret)) throw new Error(`model ${ref.name} v${ref.version} returned ${ret} for ${s.pair} at ${c.window_end_ms}`);
  const hMs = timeframeMs(h);
  const p: Prediction = {
    v: SCHEMA_VERSION, pair: s.pair, horizon: h, horizon_s: hMs / 1000, ts_ms: c.window_end_ms, target_ts_ms: c.window_end_ms + hMs,
    base_price: c.close, predicted_return: ret, predicted_price: c.close * Math.exp(ret), model: ref.name, model_version: ref.version,
  };
  s.pending[h].push(p);
  s.counts.predictions++;
  emit({ subject: subjects.predictions(h, s.pair), msgId: predictionMsgId(h, s.pair, p.ts_ms), data: p });
}

function resolveOutcomes(s: PredictorState, h: string, end: number, close: number, emit: (o: Output) => void): void {
  const q = s.pending[h];
  let k = 0;
  while (k < q.length && q[k].target_ts_ms <= end) {
    const p = q[k++];
    // Only the candle that ends exactly at the target says what the price was then; past a gap
    // in the data there is no such candle, and the prediction expires without an outcome.
    if (p.target_ts_ms !== end) {
      s.counts.expired++;
      continue;
    }
    const actual = Math.log(close / p.base_price);
    const absError = Math.abs(actual - p.predicted_return);
    const baseline = Math.abs(actual);
    const live = addOutcome(s.live[h], absError, baseline, actual, p.predicted_return);
    // Written out, not spread: in this V8 every property added after a spread took a slow path,
    // and this object cost 10 µs (a literal: under 0.1 µs). The keys in the order the spread gave.
    const o: Outcome = {
      v: p.v, pair: p.pair, horizon: p.horizon, horizon_s: p.horizon_s, ts_ms: p.ts_ms, target_ts_ms: p.target_ts_ms,
      base_price: p.base_price, predicted_return: p.predicted_return, predicted_price: p.predicted_price, model: p.model, model_version: p.model_version,
      actual_price: close, actual_return: actual, abs_error: absError, baseline_abs_error: baseline,
      live_n: live.live_n, live_mae: live.live_mae, live_mae_persistence: live.live_mae_persistence, live_mae_ratio: live.live_mae_ratio, live_hit_rate: live.live_hit_rate,
    };
    s.counts.outcomes++;
    emit({ subject: subjects.outcomes(h, s.pair), msgId: outcomeMsgId(h, s.pair, p.ts_ms), data: o });
  }
  if (k) q.splice(0, k);
}
