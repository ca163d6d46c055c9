// One shared Kraken WebSocket v2 connection per process, through which per-pair subscribers receive
// trades exactly once and in order, across disconnects.
//
// How "no trade lost, none twice" holds:
// - every (re)subscription of a pair starts a catch-up from the pair's last trade (the subscriber's
//   `lastSeen()` or the last one delivered here, whichever is later). Kraken answers a subscription
//   with a snapshot of its recent trades and numbers trades consecutively per pair, so the catch-up
//   first waits for the snapshot: if what the socket has given this pair (snapshot, then updates)
//   reaches back to the trade after the last one, nothing is missing and REST is not asked at all.
//   Only otherwise does a REST backfill run (one process-wide rate limit: Kraken limits per IP);
//   WebSocket trades that arrive meanwhile are buffered, sorted by trade_id;
// - delivery per pair is one async loop: a batch is handed to `onTrades` only after the previous
//   promise resolved, and a trade is delivered only if its trade_id is above the last delivered one
//   (Kraken trade ids increase per pair: "a sequence number, unique per book");
// - Kraken ids are consecutive, so after a catch-up the first buffered live trade must follow the
//   last delivered one; if it does not (REST lagging the socket), the catch-up runs again, a few
//   times, before the hole is reported as a `gap` event.
// Event time: with `watermark` set, a quiet pair's subscriber gets watermarks computed from the feed's
// own progress (event-time.ts) and queued behind the pair's undelivered trades.
// Liveness: Kraken sends a `heartbeat` about once a second while subscribed, and we send an
// app-level `ping` every pingIntervalMs; no frame at all for heartbeatTimeoutMs → the socket is
// terminated and reopened with exponential backoff, and every pair is subscribed again.
import WebSocket from "ws";
import { isPair } from "../../protocol/pairs.js";
import { ErrorCode, TickflowError } from "../../protocol/errors.js";
import type { Trade } from "../../protocol/messages.js";
import { idleWatermark, DEFAULT_WATERMARK_RULE, type FeedProgress, type WatermarkRule } from "./event-time.js";
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
  /**
   * Awaited like onTrades, in the same queue: no trade of this pair with an earlier time is still to
   * come (the feed's `watermark` rule). Called only if the feed has a `watermark` rule.
   */
  onWatermark?(tsMs: number): Promise<void>;
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
  /** Catch-ups settled by the subscription snapshot (and live trades) alone, without REST. */
  snapshotCatchUps: number;
  watermarks: number;
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
  /** Catch-up waits this long for a subscription's snapshot before it falls back to REST. Default 3000. */
  snapshotWaitMs?: number;
  /** Most symbols in one subscribe request. Default 200. */
  subscribeBatch?: number;
  /** Watermarks for quiet pairs (see event-time.ts); omitted = none. Checked every idleMs / 2 (at least 100 ms). */
  watermark?: Partial<WatermarkRule>;
  onEvent?: (e: FeedEvent) => void;
  random?: () => number;
};

type Pending = { trade: Trade; origin: "snapshot" | "update" };
type RestOptions = NonNullable<KrakenTradeFeedOptions["rest"]>;
type ResolvedOptions = Required<Omit<KrakenTradeFeedOptions, "onEvent" | "rest" | "random" | "watermark">> & {
  rest: Required<Omit<RestOptions, "fetch">> & Pick<RestOptions, "fetch">;
  watermark: WatermarkRule | null;
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
  /** Connection generation of `receivedThrough`: the socket has given this pair trades on it. */
  recvGen = 0;
  /** Highest trade id the socket has given this pair on connection `recvGen` (snapshot included). */
  receivedThrough = 0;
  /** Wakes a catch-up waiting for the subscription's snapshot. */
  snapshotWaiter: (() => void) | null = null;
  /** A watermark to hand over once every trade buffered before it is delivered. */
  watermarkDue: number | null = null;
  lastWatermark: number | null = null;
  running = false;
  stopped = false;
  loop: Promise<void> = Promise.resolve();
  retryTimer: NodeJS.Timeout | null = null;
  readonly abort = new AbortController();
  constructor(readonly pair: string, readonly sub: TradeSubscriber) {}
}

class DeliveryFailed extends Error {}
/** Thrown from a backfill's delivery to stop it early: the socket's buffered trades cover the rest. */
class CaughtUp extends Error {}

export class KrakenTradeFeed {
  private readonly o: ResolvedOptions;
  private readonly onEvent?: (e: FeedEvent) => void;
  private readonly random: () => number;
  private readonly limiter: RateLimiter | null;
  private readonly pairs = new Map<string, PairChannel>();
  private readonly counters: FeedStats = {
    connects: 0, reconnects: 0, heartbeatTimeouts: 0, ackTimeouts: 0, badFrames: 0, subscribeErrors: 0, backfillRuns: 0,
    backfillErrors: 0, backfilledTrades: 0, restRequests: 0, deliveredTrades: 0, duplicatesDropped: 0, gaps: 0, backpressurePauses: 0,
    pendingTrades: 0, snapshotCatchUps: 0, watermarks: 0,
  };
  /** The feed's own progress, for event time (event-time.ts). */
  private readonly progress: FeedProgress = {
    newestTradeTs: null, newestTradeReadAt: 0, lastFrameAt: 0, maxFrameGapSinceNewest: 0, socketOpen: false, readingPaused: false,
  };
  private watermarkTimer: NodeJS.Timeout | null = null;
  /** Sum of every pair's pending length, kept as they change (summing over a thousand pairs per frame would cost more than the frame). */
  private pendingTotal = 0;
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
      snapshotWaitMs: opts.snapshotWaitMs ?? 3000,
      subscribeBatch: opts.subscribeBatch ?? 200,
      watermark: opts.watermark ? { ...DEFAULT_WATERMARK_RULE, ...opts.watermark } : null,
    };
    if (this.o.pingIntervalMs >= this.o.heartbeatTimeoutMs) {
      throw new TickflowError(ErrorCode.BadConfig, `pingIntervalMs (${this.o.pingIntervalMs}) must be below heartbeatTimeoutMs (${this.o.heartbeatTimeoutMs}): pongs are what keep an idle connection alive`);
    }
    this.onEvent = opts.onEvent;
    this.random = opts.random ?? Math.random;
    this.limiter = RateLimiter.everyMs(this.o.rest.minIntervalMs);
    const rule = this.o.watermark;
    if (rule) {
      // One timer for all pairs (not one per pair): cheap at a thousand pairs.
      this.watermarkTimer = setInterval(() => this.issueWatermarks(rule), Math.max(100, Math.floor(rule.idleMs / 2)));
      this.watermarkTimer.unref();
    }
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
    this.progress.socketOpen = true;
    this.progress.lastFrameAt = this.openedAt;
    // A new connection is live only once a trade proves it (the newest trade time itself stays: it was read).
    this.progress.maxFrameGapSinceNewest = Number.POSITIVE_INFINITY;
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
      // A reconnect subscribes every pair again: a few requests of many symbols each, not one per pair.
      for (let i = 0; i < todo.length; i += this.o.subscribeBatch) {
        const symbol = todo.slice(i, i + this.o.subscribeBatch).map((p) => p.pair);
        this.send(ws, { method: "subscribe", params: { channel: "trade", symbol, snapshot: this.o.snapshot }, req_id: ++this.reqId });
      }
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
    this.progress.socketOpen = false;
    this.progress.readingPaused = false;
    this.progress.maxFrameGapSinceNewest = Number.POSITIVE_INFINITY;
    // Catch-ups waiting for this connection's snapshot: it will not come.
    for (const p of this.pairs.values()) p.snapshotWaiter?.();
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
    const fire = () => {
      this.livenessTimer = null;
      if (ws !== this.ws || this.readingPaused) return;
      // Timers and Date.now() round differently: a timer refreshed at a frame may fire a
      // millisecond before the silence it measures has lasted the timeout by the wall clock.
      const silent = Date.now() - this.lastFrameAt;
      if (silent < this.o.heartbeatTimeoutMs) {
        this.livenessTimer = setTimeout(fire, this.o.heartbeatTimeoutMs - silent);
        return;
      }
      this.counters.heartbeatTimeouts++;
      this.emit({ type: "heartbeat_timeout", silentMs: Date.now() - this.lastFrameAt });
      // terminate, not close: a dead peer would never answer the closing handshake.
      ws.terminate();
    };
    this.livenessTimer = setTimeout(fire, this.o.heartbeatTimeoutMs);
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
    const now = Date.now();
    const pr = this.progress;
    pr.maxFrameGapSinceNewest = Math.max(pr.maxFrameGapSinceNewest, now - pr.lastFrameAt);
    pr.lastFrameAt = now;
    this.lastFrameAt = now;
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
        let newest = Number.NEGATIVE_INFINITY;
        for (const t of f.trades) if (t.ts_ms > newest) newest = t.ts_ms;
        const pr = this.progress;
        if (newest !== Number.NEGATIVE_INFINITY && (pr.newestTradeTs === null || newest >= pr.newestTradeTs)) {
          pr.newestTradeTs = newest;
          pr.newestTradeReadAt = pr.lastFrameAt;
          pr.maxFrameGapSinceNewest = 0;
        }
        for (const [pair, trades] of byPair) {
          const p = this.pairs.get(pair);
          if (!p || p.stopped) continue; // an unsubscribe in flight
          let top = 0;
          for (const t of trades) if (t.trade_id > top) top = t.trade_id;
          if (p.recvGen !== gen) {
            p.recvGen = gen;
            p.receivedThrough = top;
          } else if (top > p.receivedThrough) p.receivedThrough = top;
          // Trades prove the subscription is active even if its ack was lost.
          if (p.ackGen !== gen) this.confirmed(p, gen);
          this.buffer(p, trades, f.type);
          p.snapshotWaiter?.();
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
    const before = q.length;
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
    this.pendingTotal += q.length - before;
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
        if (!p.stopped && (p.catchUpWanted || (p.live && (p.pending.length > 0 || (p.watermarkDue !== null && !p.verifyGap))))) this.kick(p);
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
        this.pendingTotal--;
        this.counters.duplicatesDropped++;
      }
      const head = p.pending[0];
      if (!head) {
        if (p.watermarkDue !== null && !p.verifyGap) {
          const ts = p.watermarkDue;
          p.watermarkDue = null;
          if (!(await this.deliverWatermark(p, ts))) return;
          continue;
        }
        return;
      }
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
      this.pendingTotal -= n;
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
    // Kraken sends the snapshot right after the subscription's ack: wait for it (bounded) before
    // deciding whether anything is missing.
    if (this.o.snapshot && p.ackGen === this.gen && p.recvGen !== this.gen) {
      await new Promise<void>((resolve) => {
        const done = () => {
          clearTimeout(timer);
          p.snapshotWaiter = null;
          resolve();
        };
        const timer = setTimeout(done, this.o.snapshotWaitMs);
        p.snapshotWaiter = done;
      });
      if (p.stopped) return false;
    }
    if (this.socketCovers(p)) {
      p.verifyGap = false;
      this.counters.snapshotCatchUps++;
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
          // REST only fills the hole up to the first trade the socket gave us: the rest is buffered.
          if (this.socketCovers(p)) throw new CaughtUp("caught up");
        },
      ).catch((err) => {
        if (err instanceof CaughtUp) return null;
        throw err;
      });
      p.failures = 0;
      // Rule out a hole between REST's end and the socket's first trade now if we can; else on the first live trade.
      p.verifyGap = !this.socketCovers(p);
      // (r is null when the socket's buffer covered the rest: stopped early, nothing more to report.)
      if (r) this.emit({ type: "backfill", pair: p.pair, trades: r.delivered, pages: r.pages, requests: r.requests });
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

  /**
   * True if nothing after the pair's last delivered trade can be missing: on the current connection
   * the socket has given this pair trades (at least the snapshot), everything after the first of them
   * arrives on the socket, and the buffered trades above the last delivered one are exactly
   * lastId+1 … receivedThrough (Kraken's trade ids are consecutive per pair).
   */
  private socketCovers(p: PairChannel): boolean {
    if (p.lastId === null || p.recvGen !== this.gen || p.ackGen !== this.gen) return false;
    while (p.pending.length && p.pending[0].trade.trade_id <= p.lastId) {
      p.pending.shift();
      this.pendingTotal--;
      this.counters.duplicatesDropped++;
    }
    const n = p.pending.length;
    if (n === 0) return p.receivedThrough <= p.lastId;
    return p.pending[0].trade.trade_id === p.lastId + 1 && p.pending[n - 1].trade.trade_id === p.receivedThrough && p.receivedThrough - p.lastId === n;
  }

  /** The feed-wide timer: computes each quiet pair's watermark and queues it behind the pair's trades. */
  private issueWatermarks(rule: WatermarkRule): void {
    if (this.closing) return;
    for (const p of this.pairs.values()) {
      if (p.stopped || !p.sub.onWatermark) continue;
      const w = idleWatermark(this.progress, {
        catchingUp: !p.live || p.catchUpWanted || p.verifyGap,
        lastTradeTs: p.lastTs,
        pendingTrades: p.pending.length,
        lastWatermark: p.watermarkDue ?? p.lastWatermark,
      }, rule);
      if (w === null) continue;
      p.watermarkDue = w;
      this.kick(p);
    }
  }

  /** False if onWatermark rejected (handled like a failed batch: catch up from lastSeen()). */
  private async deliverWatermark(p: PairChannel, ts: number): Promise<boolean> {
    if (p.stopped) return false;
    try {
      await p.sub.onWatermark!(ts);
    } catch (err) {
      const retryInMs = backoffDelay(p.failures++, this.o.rest.backoff, this.random);
      this.emit({ type: "subscriber_error", pair: p.pair, error: err, retryInMs });
      p.live = false;
      this.retryLater(p, retryInMs);
      return false;
    }
    p.lastWatermark = ts;
    this.counters.watermarks++;
    return true;
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
    this.progress.readingPaused = true;
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
    this.progress.readingPaused = false;
    ws.resume();
    this.lastFrameAt = Date.now();
    this.armLiveness(ws);
    this.emit({ type: "backpressure", paused: false, pending });
  }

  private totalPending(): number {
    return this.pendingTotal;
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
    p.snapshotWaiter?.();
    p.abort.abort();
    this.pendingTotal -= p.pending.length;
    p.pending = [];
    if (p.retryTimer) clearTimeout(p.retryTimer);
    p.retryTimer = null;
  }

  private async shutdown(): Promise<void> {
    this.closing = true;
    if (this.watermarkTimer) clearInterval(this.watermarkTimer);
    this.watermarkTimer = null;
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
