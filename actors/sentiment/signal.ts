// The per-pair sentiment signal, pure. Each scored item i contributes a signed value
// s_i = polarity × confidence (bullish +1, bearish −1, neutral 0) that decays with its age:
//
//   S(t) = Σ s_i · 2^(−(t − t_i)/H)      W(t) = Σ 2^(−(t − t_i)/H)      score(t) = S(t) / (W(t) + 1)
//
// over the items with t_i ≤ t (H = half-life). The "+1" is a prior of one neutral item: a lone
// weak item cannot swing the score to ±1, and with no news the score relaxes to 0. Because decay is
// a multiplication, S and W are kept at a reference time and rescaled on each step; an item older
// than the reference (it arrived after a later candle) is added at the weight it has then, which
// gives the same sum as if it had arrived in order. Items from the future (t_i > the candle being
// closed) wait in `pending`, so a value at t never includes news published after t.
import type { SignalLabel } from "../../protocol/news.js";

export type SignalState = {
  halfLifeMs: number;
  /** Reference time of S and W (the last candle close applied), or null before the first. */
  refTs: number | null;
  s: number;
  w: number;
  /** Items published after refTs, in arrival order: applied when a candle close passes them. */
  pending: { ts: number; value: number }[];
  /** Items applied since the last signal. */
  newItems: number;
};

export function createSignalState(halfLifeMs: number): SignalState {
  if (!(halfLifeMs > 0)) throw new Error(`half-life must be > 0 ms (got ${halfLifeMs})`);
  return { halfLifeMs, refTs: null, s: 0, w: 0, pending: [], newItems: 0 };
}

const POLARITY: Record<SignalLabel, number> = { bullish: 1, bearish: -1, neutral: 0 };

/** The signed value of one scored item. */
export function itemValue(signal: SignalLabel, confidence: number): number {
  return POLARITY[signal] * confidence;
}

function decay(ageMs: number, halfLifeMs: number): number {
  return Math.pow(2, -ageMs / halfLifeMs);
}

/** Adds one item published at `ts`. */
export function addItem(st: SignalState, ts: number, value: number): void {
  if (st.refTs === null || ts > st.refTs) {
    st.pending.push({ ts, value });
    return;
  }
  const f = decay(st.refTs - ts, st.halfLifeMs);
  st.s += value * f;
  st.w += f;
  st.newItems++;
}

export type SignalValue = { score: number; weight: number; items: number };

/**
 * Closes at time `t` (a candle's window end): applies the pending items with ts ≤ t, moves the
 * reference to t and returns the value. A `t` at or before the reference returns the value at the
 * reference without moving it (a repeated or out-of-order candle does not rewind the state).
 */
export function closeAt(st: SignalState, t: number): SignalValue {
  if (st.refTs === null || t > st.refTs) {
    if (st.refTs !== null) {
      const f = decay(t - st.refTs, st.halfLifeMs);
      st.s *= f;
      st.w *= f;
    }
    st.refTs = t;
    const keep: { ts: number; value: number }[] = [];
    for (const p of st.pending) {
      if (p.ts > t) { keep.push(p); continue; }
      const f = decay(t - p.ts, st.halfLifeMs);
      st.s += p.value * f;
      st.w += f;
      st.newItems++;
    }
    st.pending = keep;
  }
  const v = { score: clamp(st.s / (st.w + 1)), weight: st.w, items: st.newItems };
  st.newItems = 0;
  return v;
}

function clamp(x: number): number {
  return x > 1 ? 1 : x < -1 ? -1 : x;
}
