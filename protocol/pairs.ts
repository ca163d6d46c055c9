// Pair ids are Kraken v2 symbols (`BTC/USD`); NATS subject tokens cannot contain `/`, so in
// subjects and KV keys a pair is written `BTC-USD`. The mapping is a bijection because neither
// base nor quote may contain `-` or `/`.
import { ErrorCode, TickflowError } from "./errors.js";

const PAIR_RE = /^[A-Z0-9]{1,16}\/[A-Z0-9]{1,16}$/;
const TOKEN_RE = /^[A-Z0-9]{1,16}-[A-Z0-9]{1,16}$/;

export function isPair(s: string): boolean {
  return PAIR_RE.test(s);
}

/** `BTC/USD` → `BTC-USD`. */
export function pairToToken(pair: string): string {
  // Called for every subject and dedup id of every message: remembered per pair once checked.
  const known = TOKENS.get(pair);
  if (known !== undefined) return known;
  if (!PAIR_RE.test(pair)) {
    throw new TickflowError(ErrorCode.BadPair, `pair "${pair}" is not BASE/QUOTE in capitals and digits (e.g. BTC/USD)`);
  }
  const token = pair.replace("/", "-");
  if (TOKENS.size < 100_000) TOKENS.set(pair, token);
  return token;
}

const TOKENS = new Map<string, string>();

/** `BTC-USD` → `BTC/USD`. */
export function tokenToPair(token: string): string {
  if (!TOKEN_RE.test(token)) {
    throw new TickflowError(ErrorCode.BadPair, `subject token "${token}" is not BASE-QUOTE (e.g. BTC-USD)`);
  }
  return token.replace("-", "/");
}

/** Accepts `btc/usd`, `BTC-USD` or `BTC/USD` from a human; returns the canonical `BTC/USD`. */
export function normalizePair(input: string): string {
  const s = input.trim().toUpperCase();
  const pair = TOKEN_RE.test(s) ? s.replace("-", "/") : s;
  if (!PAIR_RE.test(pair)) {
    throw new TickflowError(ErrorCode.BadPair, `"${input}" is not a pair: expected BASE/QUOTE such as BTC/USD`);
  }
  return pair;
}

/** Pairs on a line for people: up to eight by name; more as a count with the first and last (a thousand names made a 10 KB line). */
export function pairsForPeople(pairs: string[]): string {
  return pairs.length <= 8 ? pairs.join(", ") : `${pairs.length} pairs (${pairs[0]} … ${pairs[pairs.length - 1]})`;
}
