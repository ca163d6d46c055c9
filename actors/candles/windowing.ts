// Event-time tumbling windows for OHLCV candles: pure, deterministic, with plain-data state that is
// the actor's checkpoint. Event time is the largest trade (or watermark) timestamp seen; a window
// [start, end) closes once event time reaches end + grace, and is emitted exactly once. A trade for
// a window that has already been emitted is late: it is reported (the actor dead-letters it) and
// changes nothing, so every timeframe sees the same set of trades and 1m candles add up to 5m ones.
import { SCHEMA_VERSION, type Candle, type Trade, type Watermark } from "../../protocol/messages.js";
import { timeframeMs } from "../../protocol/timeframes.js";

/** A trade timestamp this far beyond event time is taken as corrupt, not as a market that went quiet for a week. */
export const MAX_FORWARD_JUMP_MS = 7 * 86_400_000;

type Acc = { start: number; open: number; high: number; low: number; close: number; openTs: number; closeTs: number; volume: number; pv: number; trades: number };

type TfState = {
  tf: string;
  ms: number;
  /** Start of the next window to emit; null before the first trade (the series starts at its window). */
  next: number | null;
  /** Windows that have trades and are not emitted yet, ascending by start (rarely more than two). */
  open: Acc[];
  /** Close of the last emitted candle: the price of a flat candle. */
  lastClose: number | null;
};

export type CandleState = {
  v: 1;
  pair: string;
  graceMs: number;
  /** Largest event time seen (trade or watermark); -1 before any. */
  eventTime: number;
  eos: boolean;
  lateTrades: number;
  tfs: TfState[];
};

export type StepResult = { candles: Candle[]; late: string | null };

export function createCandleState(pair: string, timeframes: string[], graceMs: number): CandleState {
  return {
    v: 1,
    pair,
    graceMs,
    eventTime: -1,
    eos: false,
    lateTrades: 0,
    tfs: timeframes.map((tf) => ({ tf, ms: timeframeMs(tf), next: null, open: [], lastClose: null })),
  };
}

/** Applies one trade. Mutates `s`; returns the candles this closes, or why the trade is late. */
export function applyTrade(s: CandleState, t: Trade): StepResult {
  const ts = t.ts_ms;
  for (const f of s.tfs) {
    const start = ts - (ts % f.ms);
    if (f.next !== null && start < f.next) {
      s.lateTrades++;
      return {
        candles: [],
        late: `late trade ${t.trade_id}: ts ${iso(ts)} falls in the ${f.tf} window ${iso(start)} that closed already (event time ${iso(s.eventTime)}, grace ${s.graceMs} ms)`,
      };
    }
  }
  if (s.eventTime >= 0 && ts - s.eventTime > MAX_FORWARD_JUMP_MS) {
    s.lateTrades++;
    return { candles: [], late: `trade ${t.trade_id}: ts ${iso(ts)} jumps more than 7 days past event time ${iso(s.eventTime)}; taken as a bad timestamp` };
  }
  for (const f of s.tfs) {
    const start = ts - (ts % f.ms);
    if (f.next === null) f.next = start;
    let acc: Acc | undefined;
    for (let i = f.open.length - 1; i >= 0; i--) {
      if (f.open[i].start === start) {
        acc = f.open[i];
        break;
      }
    }
    if (!acc) {
      acc = { start, open: t.price, high: t.price, low: t.price, close: t.price, openTs: ts, closeTs: ts, volume: 0, pv: 0, trades: 0 };
      f.open.push(acc);
      if (f.open.length > 1 && f.open[f.open.length - 2].start > start) f.open.sort((a, b) => a.start - b.start);
    } else {
      if (t.price > acc.high) acc.high = t.price;
      if (t.price < acc.low) acc.low = t.price;
      // Open and close follow event time, so a trade that arrives out of order within the grace
      // period lands where it belongs; ties keep arrival order.
      if (ts < acc.openTs) {
        acc.open = t.price;
        acc.openTs = ts;
      }
      if (ts >= acc.closeTs) {
        acc.close = t.price;
        acc.closeTs = ts;
      }
    }
    acc.volume += t.qty;
    acc.pv += t.price * t.qty;
    acc.trades++;
  }
  if (ts > s.eventTime) s.eventTime = ts;
  return { candles: closeWindows(s), late: null };
}

/** Applies a watermark: event time advances; with `eos`, every window that has trades is emitted. */
export function applyWatermark(s: CandleState, w: Pick<Watermark, "ts_ms" | "eos">): Candle[] {
  if (w.ts_ms > s.eventTime) s.eventTime = w.ts_ms;
  const out = closeWindows(s);
  if (w.eos && !s.eos) {
    s.eos = true;
    for (const f of s.tfs) {
      if (f.open.length === 0) continue;
      const last = f.open[f.open.length - 1].start;
      while (f.next! <= last) out.push(emit(s, f));
    }
  }
  return out;
}

function closeWindows(s: CandleState): Candle[] {
  const out: Candle[] = [];
  for (const f of s.tfs) {
    if (f.next === null) continue;
    while (f.next + f.ms + s.graceMs <= s.eventTime) out.push(emit(s, f));
  }
  return out;
}

/** Emits the window at f.next: its trades, or a flat candle at the previous close. */
function emit(s: CandleState, f: TfState): Candle {
  const start = f.next!;
  f.next = start + f.ms;
  const acc = f.open.length > 0 && f.open[0].start === start ? f.open.shift()! : null;
  if (acc) {
    f.lastClose = acc.close;
    return {
      v: SCHEMA_VERSION, pair: s.pair, tf: f.tf, window_start_ms: start, window_end_ms: start + f.ms,
      open: acc.open, high: acc.high, low: acc.low, close: acc.close, volume: acc.volume,
      vwap: acc.volume > 0 ? acc.pv / acc.volume : acc.close, trades: acc.trades, flat: false,
    };
  }
  // A window with no trades always follows one with trades (the series starts at the first trade), so lastClose is set.
  const p = f.lastClose!;
  return {
    v: SCHEMA_VERSION, pair: s.pair, tf: f.tf, window_start_ms: start, window_end_ms: start + f.ms,
    open: p, high: p, low: p, close: p, volume: 0, vwap: p, trades: 0, flat: true,
  };
}

function iso(ms: number): string {
  return ms < 0 ? "(none)" : new Date(ms).toISOString();
}
