// Actor keys. Most actors are keyed by a pair (`BTC/USD`, written `BTC-USD` in subjects and KV
// keys); others by a subject token of their own (a news source such as `cryptopanic`). Pair
// tokens are upper case and other keys lower case, so the two can never name the same lease.
import { ErrorCode, TickflowError } from "../protocol/errors.js";
import { isPair, pairToToken } from "../protocol/pairs.js";

const KEY_RE = /^[a-z0-9][a-z0-9_-]{0,63}$/;
const TOKENS = new Map<string, string>();

/** True for a key that is not a pair: lower-case letters, digits, `-` and `_`, at most 64. */
export function isPlainKey(key: string): boolean {
  return KEY_RE.test(key);
}

/** The key as a subject token / KV key part: `BTC/USD` → `BTC-USD`; a plain key as it is. */
export function keyToken(key: string): string {
  const known = TOKENS.get(key);
  if (known !== undefined) return known;
  const token = isPair(key) ? pairToToken(key) : KEY_RE.test(key) ? key : null;
  if (token !== null) {
    // Reconcile names every actor of the process on every pass: checked once per key.
    if (TOKENS.size < 100_000) TOKENS.set(key, token);
    return token;
  }
  throw new TickflowError(
    ErrorCode.BadSubject,
    `actor key "${key}" is neither a pair (BASE/QUOTE such as BTC/USD) nor a key of lower-case letters, digits, "-" or "_" (at most 64, e.g. cryptopanic)`,
  );
}

/** Validates the keys a stage computed from config; the error names the stage and the bad key. */
export function checkKeys(stage: string, keys: readonly string[]): string[] {
  for (const k of keys) {
    if (typeof k !== "string" || (!isPair(k) && !KEY_RE.test(k))) {
      throw new TickflowError(
        ErrorCode.BadConfig,
        `stage "${stage}": actor key ${JSON.stringify(k)} must be lower-case letters, digits, "-" or "_" (at most 64, e.g. cryptopanic), or a pair such as BTC/USD`,
      );
    }
  }
  return [...new Set(keys)];
}

/** `<stage>.<token>`: the actor's name in tf_leases and tf_state. */
export function actorKey(stage: string, key: string): string {
  return `${stage}.${keyToken(key)}`;
}
