// Sentiment stage shell: one actor per pair with two joined inputs, its pair's closed 1m candles
// (the main input) and the scored items of its base coin (news.scored.<COIN>). The runtime records
// in the actor's journal where each scored item falls between the candles, so a restart replays
// the same order and the outputs are byte-identical; the logic (pair-sentiment.ts) uses event
// times from the inputs only.
import { latestKeys } from "../../supervisor/latest.js";
import { BadInputError } from "../../protocol/errors.js";
import { CandleCheck, type Candle } from "../../protocol/messages.js";
import { ScoredItemCheck, type ScoredItem } from "../../protocol/news.js";
import { pairToToken } from "../../protocol/pairs.js";
import { subjects } from "../../protocol/subjects.js";
import type { StreamActorDef } from "../../supervisor/actor.js";
import type { Config } from "../../supervisor/config.js";
import { baseCoin, coinMatcher } from "../scorer/coins.js";
import { applyCandle, applyScored, createPairSentiment, type PairSentimentState } from "./pair-sentiment.js";

export const SENTIMENT_STAGE = "sentiment";
/** The candle timeframe the signal follows. */
export const SIGNAL_TF = "1m";

export function sentimentActor(config: Config): StreamActorDef<PairSentimentState> {
  const coins = coinMatcher(config.news.coins);
  return {
    kind: "stream",
    stage: SENTIMENT_STAGE,
    input: (pair) => [
      { name: "candles", stream: "CANDLES", filter: subjects.candles(SIGNAL_TF, pair) },
      { name: "scored", stream: "SENTIMENT", filter: subjects.newsScored(baseCoin(pair, coins)) },
    ],
    init: (pair, cfg) => createPairSentiment(pair, baseCoin(pair, coins), cfg.news.halfLifeS),
    receive(state, msg, emit) {
      if (msg.input === "scored") {
        const why = ScoredItemCheck.explain(msg.data);
        if (why) throw new BadInputError(`scored item at ${msg.subject}#${msg.seq}: ${why}`);
        applyScored(state, msg.data as ScoredItem);
        return;
      }
      const why = CandleCheck.explain(msg.data);
      if (why) throw new BadInputError(`candle at ${msg.subject}#${msg.seq}: ${why}`);
      const c = msg.data as Candle;
      if (c.pair !== state.pair || c.tf !== SIGNAL_TF) throw new BadInputError(`candle at ${msg.subject}#${msg.seq}: ${c.tf} ${c.pair} does not belong to ${SIGNAL_TF} ${state.pair}`);
      const s = applyCandle(state, c);
      if (s) emit({ subject: subjects.sentiment(state.pair), msgId: `${pairToToken(state.pair)}:${s.ts_ms}`, data: s });
    },
    // tf_latest: the newest signal of the pair, for the gateway and the dashboard.
    latest: (o) => (o.subject.startsWith("md.sentiment.") ? { key: latestKeys.sentiment((o.data as { pair: string }).pair), ts: (o.data as { ts_ms: number }).ts_ms } : null),
    describe: (s) => ({ coin: s.coin, items: s.itemsSeen, lastClose: s.lastClose, pending: s.signal.pending.length, foreign: s.foreign }),
  };
}
