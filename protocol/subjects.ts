// Subject names of DESIGN.md §2, built and parsed in one place.
import { ErrorCode, TickflowError } from "./errors.js";
import { pairToToken, tokenToPair } from "./pairs.js";
import { isTimeframe } from "./timeframes.js";

export const subjects = {
  trades: (pair: string) => `md.trades.${pairToToken(pair)}`,
  candles: (tf: string, pair: string) => `md.candles.${tf}.${pairToToken(pair)}`,
  /** All timeframes of one pair: a single-wildcard filter, which nats-server 2.9 supports on one consumer. */
  candlesAllTf: (pair: string) => `md.candles.*.${pairToToken(pair)}`,
  indicators: (tf: string, pair: string) => `md.indicators.${tf}.${pairToToken(pair)}`,
  indicatorsAllTf: (pair: string) => `md.indicators.*.${pairToToken(pair)}`,
  dlq: (stage: string, pair: string) => `dlq.${stage}.${pairToToken(pair)}`,
} as const;

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
