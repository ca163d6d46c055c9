// One shared Kraken WebSocket v2 connection per process, through which per-pair subscribers receive
// trades exactly once and in order, across disconnects.
//
// How "no trade lost, none twice" holds:
// - every (re)subscription of a pair starts a catch-up: a REST backfill from the pair's last trade
//   (the subscriber's `lastSeen()` or the last one delivered here, whichever is later); WebSocket
//   trades that arrive meanwhile are buffered, sorted by trade_id;
// - delivery per pair is one async loop: a batch is handed to `onTrades` only after the previous
//   promise resolved, and a trade is delivered only if its trade_id is above the last delivered one
//   (Kraken trade ids increase per pair: "a sequence number, unique per book");
// - Kraken ids are consecutive, so after a catch-up the first buffered live trade must follow the
//   last delivered one; if it does not (REST lagging the socket), the catch-up runs again, a few
//   times, before the hole is reported as a `gap` event.
// Liveness: Kraken sends a `heartbeat` about once a second while subscribed, and we send an
// app-level `ping` every pingIntervalMs; no frame at all for heartbeatTimeoutMs → the socket is
// terminated and reopened with exponential backoff, and every pair is subscribed again.
import WebSocket from "ws";
import { isPair } from "../../protocol/pairs.js";
import { ErrorCode, TickflowError } from "../../protocol/errors.js";
import type { Trade } from "../../protocol/messages.js";
import { BadFrameError, parseWsFrame, type BadRecord } from "./kraken-messages.js";
import {
  backfillTrades,
  backoffDelay,
  DEFAULT_REST_URL,
  MAX_PAGE,
  RateLimiter,
  type BackoffPolicy,
  type TradeCursor,
} from "./kraken-rest-backfill.js";

export const DEFAULT_WS_URL = "wss://ws.kraken.com/v2";

export type FeedState = "connecting" | "open" | "closed";
export type TradeOrigin = "snapshot" | "update" | "backfill";

export type TradeSubscriber = {
  /** The last trade this subscriber has safely processed (its resume point), or null if none ever. */
  lastSeen(): TradeCursor | null;
  /** Awaited: the next batch of this pair is not delivered before this resolves. A rejection is retried via a new catch-up from `lastSeen()`. */
  onTrades(trades: Trade[], origin: TradeOrigin): Promise<void>;
  /** A frame or record that could not be used (reason says what and where); the feed carries on. */
  onBadFrame(reason: string, raw: string): void;
};

export type TradeSubscription = {
  /** Stops deliveries for the pair; resolves once no `onTrades` call is running or will start. Do not await it from inside `onTrades`. */
  unsubscribe(): Promise<void>;
};

export type FeedEvent =
  | { type: "connecting"; url: string; attempt: number }
  | { type: "open"; connects: number }
  | { type: "status"; system: string; version: string | null }
  | { type: "close"; code: number; reason: string; openMs: number }
  | { type: "reconnect_scheduled"; attempt: number; delayMs: number }
  | { type: "heartbeat_timeout"; silentMs: number }
  | { type: "ack_timeout"; pairs: string[] }
  | { type: "subscribed"; pair: string }
  | { type: "subscribe_error"; pair: string | null; error: string }
  | { type: "server_error"; method: string | null; error: string }
  | { type: "backfill"; pair: string; trades: number; pages: number; requests: number }
  | { type: "backfill_error"; pair: string; error: Error; retryInMs: number }
  | { type: "subscriber_error"; pair: string; error: unknown; retryInMs: number }
  | { type: "gap"; pair: string; afterTradeId: number; nextTradeId: number }
  | { type: "bad_frame"; pair: string | null; reason: string }
  | { type: "socket_error"; error: Error }
  | { type: "backpressure"; paused: boolean; pending: number };

export type FeedStats = {
  connects: number;
  reconnects: number;
  heartbeatTimeouts: number;
  ackTimeouts: number;
  badFrames: number;
  subscribeErrors: number;
  backfillRuns: number;
  backfillErrors: number;
  backfilledTrades: number;
  restRequests: number;
  deliveredTrades: number;
  /** Trades received that were at or below the last delivered id (snapshot/backfill overlap). */
  duplicatesDropped: number;
  gaps: number;
  backpressurePauses: number;
  /** Trades received and not yet delivered, all pairs (a gauge, not a counter). */
  pendingTrades: number;
};

export type KrakenTradeFeedOptions = {
  /** Default wss://ws.kraken.com/v2. */
  wsUrl?: string;
  /** Default https://api.kraken.com. */
  restUrl?: string;
  /** Ask for the last 50 trades on subscribe. Set explicitly: Kraken's docs disagree on the default. Default true. */
  snapshot?: boolean;
  /** App-level ping period; must be below heartbeatTimeoutMs so an idle connection still shows life. Default min(5000, heartbeatTimeoutMs / 2). */
  pingIntervalMs?: number;
  /** No frame for this long → the connection is dead. Default 10000. */
  heartbeatTimeoutMs?: number;
  /** A subscription neither acknowledged nor streaming after this long → reconnect. Default 10000. */
  subscribeAckTimeoutMs?: number;
  /** Reconnect delays. Default 500 ms doubling to 30 s, ±20 %. */
  backoff?: BackoffPolicy;
  /** A connection that lived this long resets the backoff. Default 30000. */
  stableAfterMs?: number;
  rest?: {
    fetch?: typeof fetch;
    /** Spacing of REST requests, shared by all pairs (Kraken limits per IP). Default 1000. */
    minIntervalMs?: number;
    /** Page size 1..1000. Default 1000. */
    count?: number;
    /** Tries per page. Default 5. */
    maxTries?: number;
    backoff?: BackoffPolicy;
  };
  /** Re-runs of a catch-up when the first live trade does not follow the last delivered one. Default 3. */
  gapRetries?: number;
  /** Wait before such a re-run (REST may lag the socket a little). Default 1000. */
  gapRetryDelayMs?: number;
  /** Buffered-but-undelivered trades (all pairs) above which the socket stops being read. Default 20000. */
  highWaterMark?: number;
  /** Per-pair cap on buffered trades; the oldest are dropped and fetched again over REST. Default 200000. */
  maxPendingPerPair?: number;
  /** Largest batch handed to onTrades. Default 1000. */
  maxBatch?: number;
  onEvent?: (e: FeedEvent) => void;
  random?: () => number;
};

type Pending = { trade: Trade; origin: "snapshot" | "update" };
type RestOptions = NonNullable<KrakenTradeFeedOptions["rest"]>;
type ResolvedOptions = Required<Omit<KrakenTradeFeedOptions, "onEvent" | "rest" | "random">> & {
  rest: Required<Omit<RestOptions, "fetch">> & Pick<RestOptions, "fetch">;
};

class PairChannel {
  lastId: number | null = null;
  lastTs: number | null = null;
  /** Received, not yet delivered, ascending unique trade_id. */
  pending: Pending[] = [];
  /** Buffered trades may be delivered (the current subscription has caught up). */
  live = false;
  catchUpWanted = false;
  /** After a catch-up: check that the first live trade follows the last delivered one. */
  verifyGap = false;
  gapRounds = 0;
  failures = 0;
  /** Connection generation on which this pair's subscription is confirmed (0 = none). */
  ackGen = 0;
  /** Connection generation on which a subscribe request for this pair was sent. */
  sentGen = 0;
  /** Connection generation on which Kraken refused the subscription (retried on the next connection). */
  rejectedGen = 0;
  running = false;
  stopped = false;
  loop: Promise<void> = Promise.resolve();
  retryTimer: NodeJS.Timeout | null = null;
  readonly abort = new AbortController();
  constructor(readonly pair: string, readonly sub: TradeSubscriber) {}
}

class DeliveryFailed extends Error {}

export class KrakenTradeFeed {
  private readonly o: ResolvedOptions;
  private readonly onEvent?: (e: FeedEvent) => void;
  private readonly random: () => number;
  private readonly limiter: RateLimiter | null;
  private readonly pairs = new Map<string, PairChannel>();
  private readonly counters: FeedStats = {
    connects: 0, reconnects: 0, heartbeatTimeouts: 0, ackTimeouts: 0, badFrames: 0, subscribeErrors: 0, backfillRuns: 0,
    backfillErrors: 0, backfilledTrades: 0, restRequests: 0, deliveredTrades: 0, duplicatesDropped: 0, gaps: 0, backpressurePauses: 0,
    pendingTrades: 0,
  };
  private ws: WebSocket | null = null;
  private gen = 0;
  private attempts = 0;
  private openedAt = 0;
  private lastFrameAt = 0;
  private reqId = 0;
  private closing = false;
  private closed: Promise<void> | null = null;
  private reconnectTimer: NodeJS.Timeout | null = null;
  private pingTimer: NodeJS.Timeout | null = null;
  private livenessTimer: NodeJS.Timeout | null = null;
  private ackTimers = new Set<NodeJS.Timeout>();
  private subscribeQueued = false;
  private readingPaused = false;

  constructor(opts: KrakenTradeFeedOptions = {}) {
    const heartbeatTimeoutMs = opts.heartbeatTimeoutMs ?? 10_000;
    this.o = {
      wsUrl: opts.wsUrl ?? DEFAULT_WS_URL,
      restUrl: opts.restUrl ?? DEFAULT_REST_URL,
      snapshot: opts.snapshot ?? true,
      pingIntervalMs: opts.pingIntervalMs ?? Math.min(5000, Math.floor(heartbeatTimeoutMs / 2)),
      heartbeatTimeoutMs,
      subscribeAckTimeoutMs: opts.subscribeAckTimeoutMs ?? 10_000,
      backoff: opts.backoff ?? { initialMs: 500, maxMs: 30_000, factor: 2, jitter: 0.2 },
      stableAfterMs: opts.stableAfterMs ?? 30_000,
      rest: {
        fetch: opts.rest?.fetch,
        minIntervalMs: opts.rest?.minIntervalMs ?? 1000,
        count: opts.rest?.count ?? MAX_PAGE,
        maxTries: opts.rest?.maxTries ?? 5,
        backoff: opts.rest?.backoff ?? { initialMs: 1000, maxMs: 30_000, factor: 2, jitter: 0.2 },
      },
      gapRetries: opts.gapRetries ?? 3,
      gapRetryDelayMs: opts.gapRetryDelayMs ?? 1000,
      highWaterMark: opts.highWaterMark ?? 20_000,
      maxPendingPerPair: opts.maxPendingPerPair ?? 200_000,
      maxBatch: opts.maxBatch ?? 1000,
    };
    if (this.o.pingIntervalMs >= this.o.heartbeatTimeoutMs) {
      throw new TickflowError(ErrorCode.BadConfig, `pingIntervalMs (${this.o.pingIntervalMs}) must be below heartbeatTimeoutMs (${this.o.heartbeatTimeoutMs}): pongs are what keep an idle connection alive`);
    }
    this.onEvent = opts.onEvent;
    this.random = opts.random ?? Math.random;
    this.limiter = RateLimiter.everyMs(this.o.rest.minIntervalMs);
  }

  state(): FeedState {
    if (this.closing) return "closed";
    return this.ws?.readyState === WebSocket.OPEN ? "open" : "connecting";
  }

  stats(): FeedStats {
    return { ...this.counters, pendingTrades: this.totalPending() };
  }

  /** Attaches the one subscriber of `pair` (a v2 symbol such as `BTC/USD`); connects on first use. */
  subscribe(pair: string, sub: TradeSubscriber): TradeSubscription {
    if (this.closing) throw new TickflowError(ErrorCode.BadArgs, `subscribe ${pair}: the feed is closed`);
    if (!isPair(pair)) throw new TickflowError(ErrorCode.BadPair, `subscribe: "${pair}" is not a Kraken v2 pair such as BTC/USD`);
    if (this.pairs.has(pair)) throw new TickflowError(ErrorCode.BadArgs, `subscribe ${pair}: already has a subscriber (one per pair per feed)`);
    const p = new PairChannel(pair, sub);
    this.pairs.set(pair, p);
    if (this.ws?.readyState === WebSocket.OPEN) this.queueSubscribe();
    else if (!this.ws && !this.reconnectTimer) this.connect();
    let done: Promise<void> | null = null;
    return { unsubscribe: () => (done ??= this.unsubscribe(p)) };
  }

  /** Closes the socket, stops every pair and clears every timer. Idempotent. */
  close(): Promise<void> {
    this.closed ??= this.shutdown();
    return this.closed;
  }

  // --- connection ----------------------------------------------------------------------------

  private connect(): void {
    if (this.closing) return;
    const gen = ++this.gen;
    this.emit({ type: "connecting", url: this.o.wsUrl, attempt: this.attempts });
    let ws: WebSocket;
    try {
      ws = new WebSocket(this.o.wsUrl, { perMessageDeflate: false, handshakeTimeout: this.o.heartbeatTimeoutMs });
    } catch (err) {
      // A malformed URL throws synchronously; retrying will not fix it, but crashing the process
      // from a timer would be worse. Report and back off.
      this.emit({ type: "socket_error", error: err as Error });
      this.scheduleReconnect();
      return;
    }
    this.ws = ws;
    ws.on("open", () => this.onOpen(ws));
    ws.on("message", (data, isBinary) => this.onMessage(ws, gen, data, isBinary));
    ws.on("error", (err) => this.emit({ type: "socket_error", error: err }));
    ws.on("close", (code, reason) => this.onClose(ws, code, reason.toString()));
  }

  private onOpen(ws: WebSocket): void {
    if (ws !== this.ws) return;
    this.counters.connects++;
    if (this.counters.connects > 1) this.counters.reconnects++;
    this.openedAt = Date.now();
    this.lastFrameAt = this.openedAt;
    this.emit({ type: "open", connects: this.counters.connects });
    this.pingTimer = setInterval(() => this.send(ws, { method: "ping", req_id: ++this.reqId }), this.o.pingIntervalMs);
    this.armLiveness(ws);
    this.queueSubscribe();
  }

  // Subscriptions made in the same tick (several actors starting together) go out as one request.
  private queueSubscribe(): void {
    if (this.subscribeQueued) return;
    this.subscribeQueued = true;
    queueMicrotask(() => {
      this.subscribeQueued = false;
      const ws = this.ws;
      if (!ws || ws.readyState !== WebSocket.OPEN) return;
      const gen = this.gen;
      const todo = [...this.pairs.values()].filter((p) => !p.stopped && p.ackGen !== gen && p.sentGen !== gen);
      if (todo.length === 0) return;
      for (const p of todo) p.sentGen = gen;
      this.send(ws, { method: "subscribe", params: { channel: "trade", symbol: todo.map((p) => p.pair), snapshot: this.o.snapshot }, req_id: ++this.reqId });
      const timer = setTimeout(() => {
        this.ackTimers.delete(timer);
        if (ws !== this.ws) return;
        const missing = todo.filter((p) => !p.stopped && p.ackGen !== gen && p.rejectedGen !== gen).map((p) => p.pair);
        if (missing.length === 0) return;
        this.counters.ackTimeouts++;
        this.emit({ type: "ack_timeout", pairs: missing });
        ws.terminate();
      }, this.o.subscribeAckTimeoutMs);
      this.ackTimers.add(timer);
    });
  }

  private onClose(ws: WebSocket, code: number, reason: string): void {
    if (ws !== this.ws) return;
    this.ws = null;
    this.clearConnectionTimers();
    this.readingPaused = false;
    const openMs = this.openedAt ? Date.now() - this.openedAt : 0;
    this.openedAt = 0;
    this.emit({ type: "close", code, reason, openMs });
    if (openMs >= this.o.stableAfterMs) this.attempts = 0;
    if (this.closing) return;
    this.scheduleReconnect();
  }

  private scheduleReconnect(): void {
    if (this.closing || this.reconnectTimer) return;
    const delayMs = backoffDelay(this.attempts, this.o.backoff, this.random);
    this.attempts++;
    this.emit({ type: "reconnect_scheduled", attempt: this.attempts, delayMs });
    this.reconnectTimer = setTimeout(() => {
      this.reconnectTimer = null;
      this.connect();
    }, delayMs);
  }

  private armLiveness(ws: WebSocket): void {
    if (this.livenessTimer) {
      this.livenessTimer.refresh();
      return;
    }
    this.livenessTimer = setTimeout(() => {
      this.livenessTimer = null;
      if (ws !== this.ws || this.readingPaused) return;
      this.counters.heartbeatTimeouts++;
      this.emit({ type: "heartbeat_timeout", silentMs: Date.now() - this.lastFrameAt });
      // terminate, not close: a dead peer would never answer the closing handshake.
      ws.terminate();
    }, this.o.heartbeatTimeoutMs);
  }

  private clearConnectionTimers(): void {
    if (this.pingTimer) clearInterval(this.pingTimer);
    if (this.livenessTimer) clearTimeout(this.livenessTimer);
    for (const t of this.ackTimers) clearTimeout(t);
    this.pingTimer = null;
    this.livenessTimer = null;
    this.ackTimers.clear();
  }

  private send(ws: WebSocket, msg: unknown): void {
    if (ws.readyState !== WebSocket.OPEN) return;
    ws.send(JSON.stringify(msg), (err) => {
      if (err) this.emit({ type: "socket_error", error: err });
    });
  }

  // --- frames --------------------------------------------------------------------------------

  private onMessage(ws: WebSocket, gen: number, data: WebSocket.RawData, isBinary: boolean): void {
    if (ws !== this.ws) return;
    this.lastFrameAt = Date.now();
    this.armLiveness(ws);
    const text = Buffer.isBuffer(data) ? data.toString("utf8") : Array.isArray(data) ? Buffer.concat(data).toString("utf8") : Buffer.from(data).toString("utf8");
    // Nothing may escape a socket handler: one bad frame must not take the feed down.
    try {
      if (isBinary) throw new BadFrameError("frame", "binary frame (Kraken sends JSON text)");
      this.onFrame(gen, text);
    } catch (err) {
      const reason = err instanceof Error ? err.message : String(err);
      this.badFrame(null, err instanceof BadFrameError ? reason : `frame: ${reason}`, text);
    }
  }

  private onFrame(gen: number, text: string): void {
    const f = parseWsFrame(text);
    switch (f.kind) {
      case "heartbeat":
      case "pong":
        return;
      case "status":
        this.emit({ type: "status", system: f.system, version: f.version });
        return;
      case "error":
        this.emit({ type: "server_error", method: f.method, error: f.error });
        return;
      case "ack": {
        if (f.method !== "subscribe") return;
        const p = f.symbol ? this.pairs.get(f.symbol) : undefined;
        if (f.success || /already subscribed/i.test(f.error ?? "")) {
          if (p) this.confirmed(p, gen);
          return;
        }
        if (p) p.rejectedGen = gen;
        this.counters.subscribeErrors++;
        this.emit({ type: "subscribe_error", pair: f.symbol, error: f.error ?? "unknown error" });
        return;
      }
      case "trade": {
        for (const b of f.bad) this.badRecord(b);
        const byPair = new Map<string, Trade[]>();
        for (const t of f.trades) {
          const list = byPair.get(t.pair);
          if (list) list.push(t);
          else byPair.set(t.pair, [t]);
        }
        for (const [pair, trades] of byPair) {
          const p = this.pairs.get(pair);
          if (!p || p.stopped) continue; // an unsubscribe in flight
          // Trades prove the subscription is active even if its ack was lost.
          if (p.ackGen !== gen) this.confirmed(p, gen);
          this.buffer(p, trades, f.type);
        }
        this.maybePauseReading();
      }
    }
  }

  private confirmed(p: PairChannel, gen: number): void {
    if (p.stopped || p.ackGen === gen) return;
    p.ackGen = gen;
    this.emit({ type: "subscribed", pair: p.pair });
    this.requestCatchUp(p);
  }

  private badRecord(b: BadRecord): void {
    this.badFrame(b.symbol, b.error.message, b.raw);
  }

  /** Reports to the pair's subscriber; a problem that names no subscribed pair goes to every subscriber (there is no other sink, and dropping it silently is not an option). */
  private badFrame(pair: string | null, reason: string, raw: string): void {
    this.counters.badFrames++;
    this.emit({ type: "bad_frame", pair, reason });
    const target = pair ? this.pairs.get(pair) : undefined;
    const subs = target ? [target] : [...this.pairs.values()];
    for (const p of subs) {
      if (p.stopped) continue;
      try {
        p.sub.onBadFrame(reason, raw);
      } catch {
        // A failing dead-letter hook must not stop the feed.
      }
    }
  }

  // --- per-pair delivery ---------------------------------------------------------------------

  private buffer(p: PairChannel, trades: Trade[], origin: "snapshot" | "update"): void {
    const q = p.pending;
    for (const trade of trades) {
      if (p.lastId !== null && trade.trade_id <= p.lastId) {
        this.counters.duplicatesDropped++;
        continue;
      }
      const tail = q.length ? q[q.length - 1].trade.trade_id : -1;
      if (trade.trade_id > tail) {
        q.push({ trade, origin });
        continue;
      }
      let lo = 0;
      let hi = q.length;
      while (lo < hi) {
        const mid = (lo + hi) >> 1;
        if (q[mid].trade.trade_id < trade.trade_id) lo = mid + 1;
        else hi = mid;
      }
      if (q[lo]?.trade.trade_id === trade.trade_id) this.counters.duplicatesDropped++;
      else q.splice(lo, 0, { trade, origin });
    }
    if (q.length > this.o.maxPendingPerPair) {
      // Safe to drop only because a catch-up fetches them again from REST.
      q.splice(0, q.length - this.o.maxPendingPerPair);
      this.requestCatchUp(p);
    }
    this.kick(p);
  }

  private requestCatchUp(p: PairChannel): void {
    if (p.retryTimer) {
      clearTimeout(p.retryTimer);
      p.retryTimer = null;
    }
    p.catchUpWanted = true;
    p.live = false;
    p.gapRounds = 0;
    this.kick(p);
  }

  private kick(p: PairChannel): void {
    if (p.running || p.stopped) return;
    p.running = true;
    p.loop = this.run(p)
      .catch((err) => this.emit({ type: "subscriber_error", pair: p.pair, error: err, retryInMs: 0 }))
      .finally(() => {
        p.running = false;
        this.maybeResumeReading();
        if (!p.stopped && (p.catchUpWanted || (p.live && p.pending.length > 0))) this.kick(p);
      });
  }

  private async run(p: PairChannel): Promise<void> {
    while (!p.stopped) {
      if (p.catchUpWanted) {
        p.catchUpWanted = false;
        p.live = false;
        const ok = await this.catchUp(p);
        if (p.stopped || !ok) return; // on failure a retry timer asks again
        if (!p.catchUpWanted) p.live = true;
        continue;
      }
      if (!p.live) return;
      while (p.pending.length && p.lastId !== null && p.pending[0].trade.trade_id <= p.lastId) {
        p.pending.shift();
        this.counters.duplicatesDropped++;
      }
      const head = p.pending[0];
      if (!head) return;
      if (p.verifyGap && p.lastId !== null) {
        if (head.trade.trade_id > p.lastId + 1 && p.gapRounds < this.o.gapRetries) {
          p.gapRounds++;
          p.live = false;
          this.retryLater(p, this.o.gapRetryDelayMs);
          return;
        }
        if (head.trade.trade_id > p.lastId + 1) {
          this.counters.gaps++;
          this.emit({ type: "gap", pair: p.pair, afterTradeId: p.lastId, nextTradeId: head.trade.trade_id });
        }
        p.verifyGap = false;
        p.gapRounds = 0;
      }
      let n = 1;
      while (n < p.pending.length && n < this.o.maxBatch && p.pending[n].origin === head.origin) n++;
      const batch = p.pending.splice(0, n).map((e) => e.trade);
      if (!(await this.deliver(p, batch, head.origin))) return;
      this.maybeResumeReading();
    }
  }

  /** Backfills from the later of lastSeen() and our last delivered trade. False if it failed (a retry is scheduled). */
  private async catchUp(p: PairChannel): Promise<boolean> {
    let seen: TradeCursor | null = null;
    try {
      seen = p.sub.lastSeen();
    } catch (err) {
      this.emit({ type: "subscriber_error", pair: p.pair, error: err, retryInMs: 0 });
    }
    if (seen && (p.lastId === null || seen.trade_id > p.lastId)) {
      p.lastId = seen.trade_id;
      p.lastTs = seen.ts_ms;
    }
    if (p.lastId === null || p.lastTs === null) {
      // First run: no history wanted; the snapshot (if asked) and live trades start the series.
      p.verifyGap = false;
      return true;
    }
    this.counters.backfillRuns++;
    try {
      const r = await backfillTrades(
        {
          restUrl: this.o.restUrl,
          pair: p.pair,
          since: { trade_id: p.lastId, ts_ms: p.lastTs },
          fetch: this.o.rest.fetch,
          count: this.o.rest.count,
          limiter: this.limiter,
          maxTries: this.o.rest.maxTries,
          backoff: this.o.rest.backoff,
          signal: p.abort.signal,
          random: this.random,
          onBadRecord: (b) => this.badFrame(p.pair, b.error.message, b.raw),
          onRequest: () => this.counters.restRequests++,
        },
        async (trades) => {
          if (!(await this.deliver(p, trades, "backfill"))) throw new DeliveryFailed();
        },
      );
      p.failures = 0;
      p.verifyGap = true;
      this.emit({ type: "backfill", pair: p.pair, trades: r.delivered, pages: r.pages, requests: r.requests });
      return true;
    } catch (err) {
      if (p.stopped) return false;
      if (err instanceof DeliveryFailed) return false; // deliver() already scheduled the retry
      this.counters.backfillErrors++;
      const retryInMs = backoffDelay(p.failures++, this.o.rest.backoff, this.random);
      this.emit({ type: "backfill_error", pair: p.pair, error: err as Error, retryInMs });
      this.retryLater(p, retryInMs);
      return false;
    }
  }

  /** Hands a batch to the subscriber, dropping what it already has. False if onTrades rejected. */
  private async deliver(p: PairChannel, trades: Trade[], origin: TradeOrigin): Promise<boolean> {
    if (p.stopped) return false;
    const last = p.lastId;
    const fresh = last === null ? trades : trades.filter((t) => t.trade_id > last);
    this.counters.duplicatesDropped += trades.length - fresh.length;
    if (fresh.length === 0) return true;
    try {
      await p.sub.onTrades(fresh, origin);
    } catch (err) {
      // The batch may not be persisted: redo from what the subscriber says it has.
      const retryInMs = backoffDelay(p.failures++, this.o.rest.backoff, this.random);
      this.emit({ type: "subscriber_error", pair: p.pair, error: err, retryInMs });
      const seen = safeLastSeen(p.sub);
      p.lastId = seen?.trade_id ?? p.lastId;
      p.lastTs = seen?.ts_ms ?? p.lastTs;
      p.live = false;
      this.retryLater(p, retryInMs);
      return false;
    }
    const end = fresh[fresh.length - 1];
    p.lastId = end.trade_id;
    p.lastTs = end.ts_ms;
    this.counters.deliveredTrades += fresh.length;
    if (origin === "backfill") this.counters.backfilledTrades += fresh.length;
    return true;
  }

  private retryLater(p: PairChannel, ms: number): void {
    if (p.stopped) return;
    if (p.retryTimer) clearTimeout(p.retryTimer);
    p.retryTimer = setTimeout(() => {
      p.retryTimer = null;
      p.catchUpWanted = true;
      this.kick(p);
    }, ms);
  }

  // Backpressure: while subscribers lag, stop reading the socket so the buffer stays bounded; the
  // server then sees a full TCP window. The liveness timer is suspended meanwhile (silence is ours).
  private maybePauseReading(): void {
    const ws = this.ws;
    if (!ws || this.readingPaused) return;
    const pending = this.totalPending();
    if (pending <= this.o.highWaterMark) return;
    this.readingPaused = true;
    this.counters.backpressurePauses++;
    ws.pause();
    this.emit({ type: "backpressure", paused: true, pending });
  }

  private maybeResumeReading(): void {
    const ws = this.ws;
    if (!ws || !this.readingPaused) return;
    const pending = this.totalPending();
    if (pending > this.o.highWaterMark / 2) return;
    this.readingPaused = false;
    ws.resume();
    this.lastFrameAt = Date.now();
    this.armLiveness(ws);
    this.emit({ type: "backpressure", paused: false, pending });
  }

  private totalPending(): number {
    let n = 0;
    for (const p of this.pairs.values()) n += p.pending.length;
    return n;
  }

  // --- teardown ------------------------------------------------------------------------------

  private async unsubscribe(p: PairChannel): Promise<void> {
    this.stopPair(p);
    if (this.pairs.get(p.pair) === p) this.pairs.delete(p.pair);
    const ws = this.ws;
    if (ws && p.ackGen === this.gen) this.send(ws, { method: "unsubscribe", params: { channel: "trade", symbol: [p.pair] }, req_id: ++this.reqId });
    await p.loop;
    this.maybeResumeReading();
  }

  private stopPair(p: PairChannel): void {
    p.stopped = true;
    p.abort.abort();
    p.pending = [];
    if (p.retryTimer) clearTimeout(p.retryTimer);
    p.retryTimer = null;
  }

  private async shutdown(): Promise<void> {
    this.closing = true;
    if (this.reconnectTimer) clearTimeout(this.reconnectTimer);
    this.reconnectTimer = null;
    const loops = [...this.pairs.values()].map((p) => {
      this.stopPair(p);
      return p.loop;
    });
    this.pairs.clear();
    const ws = this.ws;
    if (ws) {
      await new Promise<void>((resolve) => {
        const done = () => {
          clearTimeout(force);
          resolve();
        };
        ws.once("close", done);
        // A peer that does not answer the closing handshake gets cut off.
        const force = setTimeout(() => ws.terminate(), 1000);
        if (ws.readyState === WebSocket.OPEN) ws.close(1000, "client closing");
        else ws.terminate();
      });
    }
    this.clearConnectionTimers();
    await Promise.all(loops);
  }

  private emit(e: FeedEvent): void {
    if (!this.onEvent) return;
    try {
      this.onEvent(e);
    } catch {
      // An observer's bug must not break the feed.
    }
  }
}

function safeLastSeen(sub: TradeSubscriber): TradeCursor | null {
  try {
    return sub.lastSeen();
  } catch {
    return null;
  }
}
