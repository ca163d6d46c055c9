// Subject names of DESIGN.md §2, built and parsed in one place.
import { ErrorCode, TickflowError } from "./errors.js";
import { isPair, pairToToken, tokenToPair } from "./pairs.js";
import { isTimeframe } from "./timeframes.js";

export const subjects = {
  trades: (pair: string) => `md.trades.${pairToToken(pair)}`,
  /** Every pair's trades (a filter). */
  tradesAll: "md.trades.>",
  candles: (tf: string, pair: string) => `md.candles.${tf}.${pairToToken(pair)}`,
  /** All timeframes of one pair: a single-wildcard filter, which nats-server 2.9 supports on one consumer. */
  candlesAllTf: (pair: string) => `md.candles.*.${pairToToken(pair)}`,
  indicators: (tf: string, pair: string) => `md.indicators.${tf}.${pairToToken(pair)}`,
  indicatorsAllTf: (pair: string) => `md.indicators.*.${pairToToken(pair)}`,
  /** `<key>` is the actor's pair (`BTC/USD` → `BTC-USD`) or its plain key (a news source such as `cryptopanic`). */
  dlq: (stage: string, key: string) => `dlq.${stage}.${isPair(key) ? pairToToken(key) : sourceToken(key)}`,
  /** Raw news of one source (`cryptopanic`, `cryptocompare`, `rss-<name>`, `replay`). */
  newsRaw: (source: string) => `news.raw.${sourceToken(source)}`,
  /** Scored items for one coin (`news.scored.BTC`; `MARKET` for items naming no coin), so a per-pair actor filters its coin. */
  newsScored: (coin: string) => `news.scored.${coinToken(coin)}`,
  sentiment: (pair: string) => `md.sentiment.${pairToToken(pair)}`,
  /** `<h>` is a horizon label such as `5m`. */
  predictions: (h: string, pair: string) => `ml.predictions.${h}.${pairToToken(pair)}`,
  outcomes: (h: string, pair: string) => `ml.outcomes.${h}.${pairToToken(pair)}`,
} as const;

const COIN_RE = /^[A-Z0-9]{1,16}$/;

/** A coin symbol as a subject token: upper-case letters and digits. */
export function coinToken(coin: string): string {
  if (!COIN_RE.test(coin)) throw new TickflowError(ErrorCode.BadSubject, `coin "${coin}" must be upper-case letters and digits (at most 16)`);
  return coin;
}

const SOURCE_RE = /^[a-z0-9][a-z0-9_-]{0,63}$/;

/** A news source name as a subject token: lower case letters, digits, `-` and `_`. */
export function sourceToken(source: string): string {
  if (!SOURCE_RE.test(source)) {
    throw new TickflowError(ErrorCode.BadSubject, `news source "${source}" must be lower-case letters, digits, "-" or "_" (at most 64)`);
  }
  return source;
}

export type ParsedSubject =
  | { kind: "trades"; pair: string }
  | { kind: "candles"; tf: string; pair: string }
  | { kind: "indicators"; tf: string; pair: string }
  | { kind: "dlq"; stage: string; pair: string };

export function parseSubject(subject: string): ParsedSubject {
  const t = subject.split(".");
  const bad = (why: string) => new TickflowError(ErrorCode.BadSubject, `subject "${subject}": ${why}`);
  try {
    if (t[0] === "md" && t[1] === "trades" && t.length === 3) return { kind: "trades", pair: tokenToPair(t[2]) };
    if (t[0] === "md" && (t[1] === "candles" || t[1] === "indicators") && t.length === 4) {
      if (!isTimeframe(t[2])) throw bad(`"${t[2]}" is not a timeframe`);
      return { kind: t[1], tf: t[2], pair: tokenToPair(t[3]) };
    }
    if (t[0] === "dlq" && t.length === 3) return { kind: "dlq", stage: t[1], pair: tokenToPair(t[2]) };
  } catch (err) {
    if (err instanceof TickflowError && err.code === ErrorCode.BadSubject) throw err;
    throw bad((err as Error).message);
  }
  throw bad("not a Tickflow subject (md.trades.<pair>, md.candles.<tf>.<pair>, md.indicators.<tf>.<pair>, dlq.<stage>.<pair>)");
}
