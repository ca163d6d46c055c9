// The per-pair sentiment actor's logic, pure: scored items of the pair's base coin go into the
// decayed sum (signal.ts); each 1m candle close emits the value at the candle's window end. Only
// event times from the inputs are used, so the same input sequence gives the same outputs.
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
};

export function createPairSentiment(pair: string, coin: string, halfLifeS: number): PairSentimentState {
  return { pair, coin, signal: createSignalState(halfLifeS * 1000), lastClose: null, foreign: 0, itemsSeen: 0 };
}

export function applyScored(st: PairSentimentState, it: ScoredItem): void {
  if (it.coin !== st.coin) {
    st.foreign++;
    return;
  }
  st.itemsSeen++;
  addItem(st.signal, it.ts_ms, itemValue(it.signal, it.confidence));
}

/** The signal for a closed 1m candle, or null for a candle at or before the last one (a replayed close). */
export function applyCandle(st: PairSentimentState, c: Candle): SentimentSignal | null {
  if (st.lastClose !== null && c.window_end_ms <= st.lastClose) return null;
  st.lastClose = c.window_end_ms;
  const v = closeAt(st.signal, c.window_end_ms);
  return {
    v: SCHEMA_VERSION, pair: st.pair, coin: st.coin, ts_ms: c.window_end_ms,
    score: v.score, items: v.items, weight: v.weight, half_life_s: st.signal.halfLifeMs / 1000,
  };
}
