// Catching up a pair over Kraken REST (`GET /0/public/Trades`) after a gap in the WebSocket feed:
// pages from a cursor derived from the last delivered trade, follows Kraken's `last` cursor until a
// short page says "caught up", paces requests to Kraken's public limit and retries what is transient.
// Also home of the retry maths (backoffDelay, RateLimiter) the WebSocket client shares.
//
// Kraken facts relied on (https://docs.kraken.com/api/docs/rest-api/get-recent-trades/):
// - query `pair` (REST name, see restPairName), `since` (nanosecond timestamp; the response's `last`
//   is the value to pass next), `count` 1..1000 (default 1000);
// - errors come in the body's `error` array with HTTP 200 (`EAPI:Rate limit exceeded`, `EService:…`),
//   and as HTTP 429/5xx from the edge;
// - public endpoints are throttled per IP; about one call per second stays within the limit.
import { setTimeout as sleepTimer } from "node:timers/promises";
import type { Trade } from "../../protocol/messages.js";
import { ErrorCode } from "../../protocol/errors.js";
import { BadFrameError, KrakenApiError, parseRestTrades, restPairName, type BadRecord, type RestTradesPage } from "./kraken-messages.js";

export const DEFAULT_REST_URL = "https://api.kraken.com";
/** Kraken's maximum (and default) page size. */
export const MAX_PAGE = 1000;

// --- retry maths (pure) ----------------------------------------------------------------------

export type BackoffPolicy = {
  initialMs: number;
  maxMs: number;
  /** Growth per attempt; default 2. */
  factor?: number;
  /** Spread as a fraction of the delay, ±; default 0.2. */
  jitter?: number;
};

/**
 * Delay before retry `attempt` (0 for the first retry): initialMs·factor^attempt, capped at maxMs,
 * then spread by ±jitter so many clients that lost the same server do not come back in lock-step.
 * Never negative, never above maxMs. `random` is injectable so the maths is testable.
 */
export function backoffDelay(attempt: number, policy: BackoffPolicy, random: () => number = Math.random): number {
  const factor = policy.factor ?? 2;
  const jitter = policy.jitter ?? 0.2;
  const base = Math.min(policy.maxMs, policy.initialMs * Math.pow(factor, Math.max(0, attempt)));
  const spread = base * jitter * (2 * random() - 1);
  return Math.max(0, Math.min(policy.maxMs, Math.round(base + spread)));
}

export type Sleep = (ms: number, signal?: AbortSignal) => Promise<void>;
export const realSleep: Sleep = (ms, signal) => sleepTimer(ms, undefined, { signal });

/**
 * Token bucket: `ratePerSec` tokens a second, at most `burst` saved up. Takers are served in
 * arrival order, so several pairs backfilling at once share Kraken's per-IP budget fairly.
 * Clock and sleep are injectable: tests check spacing on a virtual clock, not the wall clock.
 */
export class RateLimiter {
  readonly ratePerSec: number;
  readonly burst: number;
  private readonly now: () => number;
  private readonly sleep: Sleep;
  private tokens: number;
  private stamp: number;
  private tail: Promise<void> = Promise.resolve();

  constructor(opts: { ratePerSec: number; burst?: number; now?: () => number; sleep?: Sleep }) {
    if (!(opts.ratePerSec > 0)) throw new RangeError(`ratePerSec must be > 0 (got ${opts.ratePerSec})`);
    this.ratePerSec = opts.ratePerSec;
    this.burst = Math.max(1, opts.burst ?? 1);
    this.now = opts.now ?? Date.now;
    this.sleep = opts.sleep ?? realSleep;
    this.tokens = this.burst;
    this.stamp = this.now();
  }

  /** A limiter for "at most one request every `ms`" (0 = unlimited, returns null). */
  static everyMs(ms: number, opts: { now?: () => number; sleep?: Sleep } = {}): RateLimiter | null {
    return ms > 0 ? new RateLimiter({ ratePerSec: 1000 / ms, burst: 1, ...opts }) : null;
  }

  /** Resolves when a token is available (and takes it). Rejects if `signal` aborts while waiting. */
  take(signal?: AbortSignal): Promise<void> {
    const turn = this.tail.then(() => this.acquire(signal));
    this.tail = turn.catch(() => {});
    return turn;
  }

  private async acquire(signal?: AbortSignal): Promise<void> {
    for (;;) {
      signal?.throwIfAborted();
      const t = this.now();
      this.tokens = Math.min(this.burst, this.tokens + ((t - this.stamp) / 1000) * this.ratePerSec);
      this.stamp = t;
      if (this.tokens >= 1 - 1e-9) {
        this.tokens -= 1;
        return;
      }
      await this.sleep(Math.ceil(((1 - this.tokens) / this.ratePerSec) * 1000), signal);
    }
  }
}

// --- backfill --------------------------------------------------------------------------------

export type TradeCursor = { trade_id: number; ts_ms: number };

/**
 * The `since` to ask for to get every trade after `c`: one nanosecond before its millisecond.
 * `ts_ms` is floored, so the trade itself and any later trade in the same millisecond are at or after
 * that instant; what comes back twice is dropped by trade_id.
 */
export function sinceFromCursor(c: TradeCursor): string {
  const ns = BigInt(c.ts_ms) * 1_000_000n - 1n;
  return (ns < 0n ? 0n : ns).toString();
}

export class BackfillError extends Error {
  readonly code = ErrorCode.KrakenBackfillFailed;
  readonly pair: string;
  readonly tries: number;
  constructor(pair: string, tries: number, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = "BackfillError";
    this.pair = pair;
    this.tries = tries;
  }
}

export type BackfillOptions = {
  /** Default https://api.kraken.com. */
  restUrl?: string;
  /** v2 pair id, `BTC/USD`; mapped to the REST name by restPairName. */
  pair: string;
  /** Last trade already delivered; null = first run: no history is fetched (the live snapshot starts the series). */
  since: TradeCursor | null;
  fetch?: typeof fetch;
  /** Page size, 1..1000; default 1000. */
  count?: number;
  /** Shared limiter (one per process: Kraken limits per IP). Default: a private one, `minIntervalMs` apart. */
  limiter?: RateLimiter | null;
  /** Used only without `limiter`; default 1000 (Kraken public ≈ 1 req/s). 0 = no pacing. */
  minIntervalMs?: number;
  /** Tries per page (first try included) before giving up; default 5. */
  maxTries?: number;
  backoff?: BackoffPolicy;
  requestTimeoutMs?: number;
  signal?: AbortSignal;
  sleep?: Sleep;
  now?: () => number;
  random?: () => number;
  /** A bad row in an otherwise good page: skipped, reported here, the rest delivered. */
  onBadRecord?: (bad: BadRecord) => void;
  /** Each request as sent (for logs and tests). */
  onRequest?: (url: string) => void;
};

export type BackfillResult = {
  /** Pages fetched successfully. */
  pages: number;
  /** HTTP requests made, retries included. */
  requests: number;
  /** Trades handed to `deliver` (after dropping those at or before `since`). */
  delivered: number;
  /** Last trade delivered, or `since` if none. */
  last: TradeCursor | null;
  /** The `last` cursor of the final page: where a later poll would continue. */
  cursor: string | null;
};

export const DEFAULT_REST_BACKOFF: BackoffPolicy = { initialMs: 1000, maxMs: 30_000, factor: 2, jitter: 0.2 };

/**
 * Fetches every trade of `pair` after `since` and hands them to `deliver` in trade_id order, one
 * page at a time, awaiting it (a page is not fetched before the previous one is delivered, so the
 * caller's last delivered trade is always a valid resume point: after a crash, call again with it).
 * Stops when a page comes back shorter than `count` (caught up with what Kraken has).
 * @throws BackfillError after `maxTries` failed tries of one page, or at once for a permanent error
 *   (HTTP 4xx other than 429, an unknown pair, a malformed response).
 */
export async function backfillTrades(opts: BackfillOptions, deliver: (trades: Trade[]) => Promise<void>): Promise<BackfillResult> {
  const result: BackfillResult = { pages: 0, requests: 0, delivered: 0, last: opts.since, cursor: null };
  if (opts.since === null) return result;
  const count = opts.count ?? MAX_PAGE;
  if (!Number.isInteger(count) || count < 1 || count > MAX_PAGE) throw new RangeError(`count must be 1..${MAX_PAGE} (got ${count})`);
  const limiter = opts.limiter !== undefined ? opts.limiter : RateLimiter.everyMs(opts.minIntervalMs ?? 1000, { now: opts.now, sleep: opts.sleep });
  const base = (opts.restUrl ?? DEFAULT_REST_URL).replace(/\/+$/, "");
  const restPair = restPairName(opts.pair);
  let lastId = opts.since.trade_id;
  let cursor = sinceFromCursor(opts.since);

  for (;;) {
    opts.signal?.throwIfAborted();
    const url = `${base}/0/public/Trades?pair=${encodeURIComponent(restPair)}&since=${cursor}&count=${count}`;
    const page = await fetchPage(url, opts, limiter, result);
    result.pages++;
    for (const b of page.bad) opts.onBadRecord?.(b);
    const fresh = page.trades.filter((t) => t.trade_id > lastId).sort((a, b) => a.trade_id - b.trade_id);
    const unique = fresh.filter((t, i) => i === 0 || t.trade_id !== fresh[i - 1].trade_id);
    if (unique.length > 0) {
      await deliver(unique);
      const end = unique[unique.length - 1];
      lastId = end.trade_id;
      result.last = { trade_id: end.trade_id, ts_ms: end.ts_ms };
      result.delivered += unique.length;
    }
    result.cursor = page.last;
    if (page.rows < count) return result;
    // A full page whose cursor does not move would be fetched forever.
    if (page.last === cursor) {
      throw new BackfillError(opts.pair, 1, `backfill ${opts.pair}: a full page at since=${cursor} did not advance the cursor`);
    }
    cursor = page.last;
  }
}

class Transient extends Error {}

async function fetchPage(url: string, opts: BackfillOptions, limiter: RateLimiter | null, result: BackfillResult): Promise<RestTradesPage> {
  const doFetch = opts.fetch ?? fetch;
  const sleep = opts.sleep ?? realSleep;
  const maxTries = Math.max(1, opts.maxTries ?? 5);
  const timeoutMs = opts.requestTimeoutMs ?? 15_000;
  for (let attempt = 0; ; attempt++) {
    await limiter?.take(opts.signal);
    result.requests++;
    opts.onRequest?.(url);
    let err: unknown;
    try {
      const signal = opts.signal ? AbortSignal.any([opts.signal, AbortSignal.timeout(timeoutMs)]) : AbortSignal.timeout(timeoutMs);
      const res = await doFetch(url, { signal, headers: { accept: "application/json" } });
      const text = await res.text();
      if (res.status === 429 || res.status >= 500) throw new Transient(`HTTP ${res.status}`);
      if (!res.ok) throw new BackfillError(opts.pair, attempt + 1, `backfill ${opts.pair}: GET ${url} → HTTP ${res.status}: ${text.slice(0, 200)}`);
      let body: unknown;
      try {
        body = JSON.parse(text);
      } catch {
        // A truncated body is a network accident more often than a format change.
        throw new Transient(`response is not JSON: ${text.slice(0, 80)}`);
      }
      return parseRestTrades(body, opts.pair);
    } catch (e) {
      err = e;
    }
    opts.signal?.throwIfAborted();
    const retryable = err instanceof Transient || (err instanceof KrakenApiError && err.retryable) || isNetworkError(err);
    const why = err instanceof Error ? err.message : String(err);
    if (err instanceof BackfillError) throw err;
    if (!retryable) {
      const kind = err instanceof BadFrameError ? "malformed response" : "permanent error";
      throw new BackfillError(opts.pair, attempt + 1, `backfill ${opts.pair}: GET ${url}: ${kind}: ${why}`, { cause: err });
    }
    if (attempt + 1 >= maxTries) {
      throw new BackfillError(opts.pair, attempt + 1, `backfill ${opts.pair}: GET ${url} failed ${attempt + 1} times, giving up; last error: ${why}`, { cause: err });
    }
    await sleep(backoffDelay(attempt, opts.backoff ?? DEFAULT_REST_BACKOFF, opts.random), opts.signal);
  }
}

// fetch rejects with a TypeError ("fetch failed") for refused/reset connections and DNS failures,
// and with a TimeoutError when our per-request timeout fires: all worth another try.
function isNetworkError(err: unknown): boolean {
  return err instanceof TypeError || (err instanceof Error && (err.name === "TimeoutError" || err.name === "AbortError"));
}
