// The per-pair sentiment actor's logic, pure: scored items of the pair's base coin go into the
// decayed sum (signal.ts); each 1m candle close emits the value at the candle's window end. Only
// event times from the inputs are used, so the same input sequence gives the same outputs.
//
// A pair whose coin has no news in its decay window (weight exactly 0) publishes no signal: most
// of the ~1,000 pairs Kraken lists are coins nobody writes about, and a zero signal from each of
// them every minute, and its copy in the predictor's journal, was 13 % of the messages a 300-pair
// `up --once` wrote. Nothing downstream can tell the difference: the predictor's and the
// trainer's sentiment feature is 0 for "no signal" as for a zero one (actors/ml/features.ts), and
// the trainer adds the feature only when rows carry a non-zero one. The step back to zero (the
// weight underflowing, ages after the last item) is still published, once.
import { SCHEMA_VERSION, type Candle } from "../../protocol/messages.js";
import type { ScoredItem, SentimentSignal } from "../../protocol/news.js";
import { addItem, closeAt, createSignalState, itemValue, type SignalState } from "./signal.js";

export type PairSentimentState = {
  pair: string;
  coin: string;
  signal: SignalState;
  /** Window end of the last candle that produced a signal. */
  lastClose: number | null;
  /** Items of another coin on this actor's input (a wiring error, counted and ignored). */
  foreign: number;
  itemsSeen: number;
  /**
   * The last signal published was all zero, or none was: the next all-zero one is not published.
   * Absent in checkpoints from before the rule, where it reads as false (one zero is published).
   */
  quiet?: boolean;
};

export function createPairSentiment(pair: string, coin: string, halfLifeS: number): PairSentimentState {
  return { pair, coin, signal: createSignalState(halfLifeS * 1000), lastClose: null, foreign: 0, itemsSeen: 0, quiet: true };
}

export function applyScored(st: PairSentimentState, it: ScoredItem): void {
  if (it.coin !== st.coin) {
    st.foreign++;
    return;
  }
  st.itemsSeen++;
  addItem(st.signal, it.ts_ms, itemValue(it.signal, it.confidence));
}

/**
 * The signal for a closed 1m candle; null for a candle at or before the last one (a replayed
 * close), and for a zero value after a zero or no signal (see above).
 */
export function applyCandle(st: PairSentimentState, c: Candle): SentimentSignal | null {
  if (st.lastClose !== null && c.window_end_ms <= st.lastClose) return null;
  st.lastClose = c.window_end_ms;
  const v = closeAt(st.signal, c.window_end_ms);
  const zero = v.weight === 0 && v.score === 0 && v.items === 0;
  if (zero && st.quiet === true) return null;
  st.quiet = zero;
  return {
    v: SCHEMA_VERSION, pair: st.pair, coin: st.coin, ts_ms: c.window_end_ms,
    score: v.score, items: v.items, weight: v.weight, half_life_s: st.signal.halfLifeMs / 1000,
  };
}
