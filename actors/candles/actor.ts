// Candles actor shell: md.trades.<pair> (trades and watermarks) → windowing → md.candles.<tf>.<pair>.
import { BadInputError } from "../../protocol/errors.js";
import { CandleCheck, TradeCheck, WatermarkCheck, type Candle } from "../../protocol/messages.js";
import { pairToToken } from "../../protocol/pairs.js";
import { subjects } from "../../protocol/subjects.js";
import type { Emit, StreamActorDef } from "../../supervisor/actor.js";
import { latestKeys } from "../../supervisor/latest.js";
import { applyTrade, applyWatermark, createCandleState, type CandleState } from "./windowing.js";

export const CANDLES_STAGE = "candles";

export function candleMsgId(c: Candle): string {
  return `${c.tf}:${pairToToken(c.pair)}:${c.window_start_ms}`;
}

function emitCandles(candles: Candle[], emit: Emit): void {
  for (const c of candles) emit({ subject: subjects.candles(c.tf, c.pair), msgId: candleMsgId(c), data: c });
}

export const candlesActor: StreamActorDef<CandleState> = {
  kind: "stream",
  stage: CANDLES_STAGE,
  input: (pair) => ({ stream: "TRADES", filter: subjects.trades(pair) }),
  init: (pair, config) => createCandleState(pair, config.timeframes, config.candles.graceMs),
  receive(state, msg, emit) {
    const d = msg.data as { kind?: unknown; pair?: unknown };
    if (d && typeof d === "object" && d.kind === "watermark") {
      const why = WatermarkCheck.explain(d);
      if (why) throw new BadInputError(`watermark at ${msg.subject}#${msg.seq}: ${why}`);
      emitCandles(applyWatermark(state, d as { ts_ms: number; eos: boolean }), emit);
      return;
    }
    const why = TradeCheck.explain(d);
    if (why) throw new BadInputError(`trade at ${msg.subject}#${msg.seq}: ${why}`);
    if (d.pair !== state.pair) throw new BadInputError(`trade at ${msg.subject}#${msg.seq}: pair ${String(d.pair)} does not belong on this subject (${state.pair})`);
    const r = applyTrade(state, d as never);
    if (r.late) throw new BadInputError(r.late);
    emitCandles(r.candles, emit);
  },
  describe: (s) => ({ eventTime: s.eventTime, lateTrades: s.lateTrades, eos: s.eos }),
  latest: (o) => {
    const c = o.data as Candle;
    return o.subject.startsWith("md.candles.") ? { key: latestKeys.candles(c.tf, c.pair), ts: c.window_start_ms } : null;
  },
};

// Runtime guard for readers of candles (the indicators stage and tests).
export { CandleCheck };
