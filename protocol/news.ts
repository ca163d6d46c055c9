// Message shapes of the news path (DESIGN.md §2): raw news items on `news.raw.<source>`, per-coin
// scored items on `news.scored.<COIN>`, and the per-pair sentiment signal on `md.sentiment.<pair>`.
// Fields may be added; the named ones are never renamed.
import { Type, type Static } from "@sinclair/typebox";
import { PairId, SCHEMA_VERSION, validator } from "./messages.js";

const Millis = () => Type.Integer({ minimum: 0 });
/** A coin symbol as a subject token: upper-case letters and digits (`BTC`, `ETH`, `MARKET`). */
export const CoinId = Type.String({ pattern: "^[A-Z0-9]{1,16}$" });

/** One news item as a source publishes it. `id` is `<source>:<native id>`, also its Nats-Msg-Id. */
export const NewsItemSchema = Type.Object({
  v: Type.Literal(SCHEMA_VERSION),
  id: Type.String({ minLength: 3, maxLength: 512 }),
  source: Type.String({ pattern: "^[a-z0-9][a-z0-9_-]{0,63}$" }),
  /** Event time: when the item was published, per the source. */
  ts_ms: Millis(),
  title: Type.String({ minLength: 1 }),
  /** Body or summary when the source gives one, else "". */
  body: Type.String(),
  url: Type.String(),
  /** Coins the source itself tagged (CryptoPanic `currencies`, CryptoCompare `categories`), upper case. */
  coins_hint: Type.Array(Type.String()),
});
export type NewsItem = Static<typeof NewsItemSchema>;

export const SignalLabel = Type.Union([Type.Literal("bullish"), Type.Literal("bearish"), Type.Literal("neutral")]);
export type SignalLabel = Static<typeof SignalLabel>;

/** One item scored for one coin, on `news.scored.<COIN>`; Nats-Msg-Id `<item id>:<COIN>`. */
export const ScoredItemSchema = Type.Object({
  v: Type.Literal(SCHEMA_VERSION),
  id: Type.String(),
  source: Type.String(),
  ts_ms: Millis(),
  title: Type.String(),
  /** The coin, or `MARKET` for an item that names none. */
  coin: CoinId,
  signal: SignalLabel,
  confidence: Type.Number({ minimum: 0, maximum: 1 }),
  reason: Type.String(),
  /** Which scorer answered: `ollama:<model>`, `classifier:<version>` or `lexicon`. */
  scorer: Type.String(),
  /** Why the fallback scorer answered instead of Ollama, when it did. */
  fallback: Type.Optional(Type.String()),
});
export type ScoredItem = Static<typeof ScoredItemSchema>;

/** The time-decayed sentiment of a pair's base coin at a 1m candle close, on `md.sentiment.<pair>`. */
export const SentimentSignalSchema = Type.Object({
  v: Type.Literal(SCHEMA_VERSION),
  pair: PairId,
  coin: CoinId,
  /** The candle close (window end) this value belongs to. */
  ts_ms: Millis(),
  /** Decayed mean of signed item scores, shrunk toward 0 by a prior of one neutral item: −1 … 1. */
  score: Type.Number({ minimum: -1, maximum: 1 }),
  /** Items of this coin applied since the previous signal. */
  items: Type.Integer({ minimum: 0 }),
  /** Decayed item count (Σ 2^(−age/half-life)): how much news the score rests on. */
  weight: Type.Number({ minimum: 0 }),
  half_life_s: Type.Number({ exclusiveMinimum: 0 }),
});
export type SentimentSignal = Static<typeof SentimentSignalSchema>;

export const NewsItemCheck = validator(NewsItemSchema);
export const ScoredItemCheck = validator(ScoredItemSchema);
export const SentimentSignalCheck = validator(SentimentSignalSchema);
