// Indicators actor shell: md.candles.*.<pair> (one consumer, all timeframes, in stream order) →
// per-timeframe streaming indicators → md.indicators.<tf>.<pair>.
import { BadInputError } from "../../protocol/errors.js";
import { CandleCheck, type Candle, type Indicators } from "../../protocol/messages.js";
import { pairToToken } from "../../protocol/pairs.js";
import { subjects } from "../../protocol/subjects.js";
import type { StreamActorDef } from "../../supervisor/actor.js";
import { latestKeys } from "../../supervisor/latest.js";
import { createIndicatorState, DEFAULT_INDICATORS, updateIndicators, type IndicatorConfig, type IndicatorState } from "./engine.js";

export const INDICATORS_STAGE = "indicators";

export type IndicatorsActorState = {
  v: 1;
  pair: string;
  /** One engine per timeframe, created on its first candle. */
  byTf: Record<string, { state: IndicatorState; lastStart: number }>;
  skipped: number;
};

export function indicatorsActor(cfg: IndicatorConfig = DEFAULT_INDICATORS): StreamActorDef<IndicatorsActorState> {
  return {
    kind: "stream",
    stage: INDICATORS_STAGE,
    input: (pair) => ({ stream: "CANDLES", filter: subjects.candlesAllTf(pair) }),
    init: (pair) => ({ v: 1, pair, byTf: {}, skipped: 0 }),
    receive(state, msg, emit) {
      const why = CandleCheck.explain(msg.data);
      if (why) throw new BadInputError(`candle at ${msg.subject}#${msg.seq}: ${why}`);
      const c = msg.data as Candle;
      if (c.pair !== state.pair) throw new BadInputError(`candle at ${msg.subject}#${msg.seq}: pair ${c.pair} does not belong on this subject (${state.pair})`);
      let tf = state.byTf[c.tf];
      if (!tf) tf = state.byTf[c.tf] = { state: createIndicatorState(cfg), lastStart: -1 };
      // Candles are emitted once per window; a repeat (a republish outside the dedup window) must not advance the indicators twice.
      if (c.window_start_ms <= tf.lastStart) {
        state.skipped++;
        throw new BadInputError(`candle at ${msg.subject}#${msg.seq}: window ${new Date(c.window_start_ms).toISOString()} is not after the last one applied (${new Date(tf.lastStart).toISOString()})`);
      }
      tf.lastStart = c.window_start_ms;
      const values = updateIndicators(tf.state, c);
      // The candle's fields written out rather than spread (a property added after a spread takes a
      // slow path in this V8), in the order the candles stage writes them.
      const out: Indicators = {
        v: c.v, pair: c.pair, tf: c.tf, window_start_ms: c.window_start_ms, window_end_ms: c.window_end_ms,
        open: c.open, high: c.high, low: c.low, close: c.close, volume: c.volume, vwap: c.vwap, trades: c.trades, flat: c.flat, values,
      };
      emit({ subject: subjects.indicators(c.tf, c.pair), msgId: `${c.tf}:${pairToToken(c.pair)}:${c.window_start_ms}`, data: out });
    },
    describe: (s) => ({ timeframes: Object.keys(s.byTf), skipped: s.skipped }),
    latest: (o) => {
      const x = o.data as Indicators;
      return o.subject.startsWith("md.indicators.") ? { key: latestKeys.indicators(x.tf, x.pair), ts: x.window_start_ms } : null;
    },
  };
}
