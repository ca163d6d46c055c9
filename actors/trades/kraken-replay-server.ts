// A local server that speaks Kraken's protocol and replays recorded trades, so the offline demo, the
// tests and the benchmarks run the production client (KrakenTradeFeed) unchanged. One HTTP port, laid
// out like Kraken: WebSocket v2 at `/v2` (status, heartbeat, ping/pong, trade subscribe/unsubscribe
// with acks, snapshot and batched updates) and REST at `/0/public/Trades` (pair/since/count, `last`
// cursor, Kraken's row format).
//
// The replay clock releases trades in timestamp order, `speed`× real time from the first trade; a
// client only ever sees released trades, over either protocol, so a client that lost its socket can
// catch up over REST exactly as against Kraken. With speed "max" the clock advances as fast as the
// slowest subscribed client takes the frames (nothing is released while no client is subscribed),
// and a socket whose send buffer is full is not written to: memory stays bounded.
//
// Frames go out in release (time) order across pairs, as Kraken emits trades when they happen: a
// frame holds a run of consecutive trades of one pair. Clients rely on that order for event time.
//
// Memory does not grow with the files (replay-source.ts): they are streamed, k-way merged, through a
// bounded read-ahead; released trades are kept only until every subscribed client was sent them;
// each pair keeps its most recent trades (for snapshots and recent REST ranges) and older REST
// ranges are served by re-reading the files, one bounded page per request.
//
// Timestamps are kept as recorded (the pipeline's candles are computed from them). Recorded data can
// have many trades in one millisecond (735 in the BTC file), so each trade also gets a unique
// nanosecond key (its time plus a tie-breaking nanosecond count) used for REST `since`/`last`:
// paging with a cursor that several trades share would skip or repeat trades at page boundaries.
import { readFileSync } from "node:fs";
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { performance } from "node:perf_hooks";
import { gunzipSync } from "node:zlib";
import { WebSocket, WebSocketServer } from "ws";
import { parseTradeRecord, restPairName } from "./kraken-messages.js";
import { fileSource, memorySource, scanTrades, type KrakenTradeRecord, type ReplayTrade, type ScanResult, type TradeSource } from "./replay-source.js";

export type { KrakenTradeRecord } from "./replay-source.js";

export type KrakenReplayOptions = {
  /** gzip (or plain) JSONL files of KrakenTradeRecord; or give `trades`. */
  files?: string[];
  trades?: KrakenTradeRecord[];
  /** Default 127.0.0.1. */
  host?: string;
  /** 0 = a free port. Default 0. */
  port?: number;
  /** Multiple of real time, or "max" (as fast as clients read). Default 1. */
  speed?: number | "max";
  /** Trades in a `snapshot` (Kraken sends the last 50). Default 50. */
  snapshotSize?: number;
  /** Default "/v2". */
  wsPath?: string;
  /** Heartbeat period while a client is subscribed and nothing else was sent. Default 1000 (Kraken: about once a second). */
  heartbeatIntervalMs?: number;
  /** Most trades in one `update` frame. Default 100. */
  maxBatch?: number;
  /** A client whose unsent bytes exceed this is not written to until they drain. Default 1 MiB. */
  highWaterBytes?: number;
  /**
   * When the replay clock starts. "all-subscribed" (default): once every recorded pair has a
   * subscriber, or `startGraceMs` after the first subscription, so pairs subscribed a moment apart
   * do not miss the start. "first-subscribe": at the first subscription. "listening": at once.
   */
  startWhen?: "all-subscribed" | "first-subscribe" | "listening";
  /** Default 2000. */
  startGraceMs?: number;
  /** With "all-subscribed": the pairs whose subscriptions start the clock (default: every recorded pair). */
  waitFor?: string[];
  /** Most recent trades kept per pair (snapshots, and REST ranges served without re-reading the files). Default 200, at least snapshotSize. */
  recentPerPair?: number;
  /** Finite speed: a client more than this many released trades behind is cut off (it reconnects and catches up, as with Kraken). Default 200000. */
  maxClientLag?: number;
};

export type ReplayStats = {
  started: boolean;
  paused: boolean;
  clients: number;
  /** Trades released by the replay clock, per pair. */
  released: Record<string, number>;
  restRequests: number;
  /** REST trade requests per pair asked for. */
  restRequestsByPair: Record<string, number>;
  /** REST requests served by re-reading the files (the range was older than the recent trades kept). */
  restScans: number;
  wsConnections: number;
};

export type KrakenReplayServer = {
  wsUrl: string;
  restUrl: string;
  port: number;
  pairs: string[];
  /** Last recorded trade id per pair (the end of a bounded replay). */
  lastTradeIds: Record<string, number>;
  /** Recorded trades per pair (progress displays). */
  totals: Record<string, number>;
  /** Forcibly cuts every WebSocket connection (no closing handshake), as a network failure would. */
  dropConnections(): void;
  /** Sends `text` as-is to every connected client (malformed-frame tests). */
  injectRaw(text: string): void;
  /** Stalls all output (trades, heartbeats, pongs, acks are held) and the clock, without closing anything. */
  pause(): void;
  resume(): void;
  /** Test control: the clock releases no trade later than `tsMs` (null: no limit). */
  holdAt(tsMs: number | null): void;
  /** Test control: releases every trade up to `tsMs` now, whatever the speed and whether anyone is connected. */
  releaseUntil(tsMs: number): Promise<void>;
  /** Test control: WebSocket upgrades are refused (HTTP 503) while on, as an unreachable exchange would. */
  refuseConnections(on: boolean): void;
  /** The next `count` REST requests fail: with HTTP `status` (default 429), or with HTTP 200 and `krakenError` in `error`. */
  failRest(count: number, how?: { status?: number; krakenError?: string }): void;
  stats(): ReplayStats;
  /** Resolves when every trade is released and sent to every subscribed client; rejects if closed first. */
  done: Promise<void>;
  close(): Promise<void>;
};

/** Reads gzip or plain JSONL trade files into memory, validating each line (small files: tests, benchmarks; the server itself streams). */
export function loadTradeFiles(files: string[]): KrakenTradeRecord[] {
  const out: KrakenTradeRecord[] = [];
  for (const file of files) {
    const buf = readFileSync(file);
    const text = (buf[0] === 0x1f && buf[1] === 0x8b ? gunzipSync(buf) : buf).toString("utf8");
    let lineNo = 0;
    for (const line of text.split("\n")) {
      lineNo++;
      if (line.trim() === "") continue;
      let rec: unknown;
      try {
        rec = JSON.parse(line);
      } catch (err) {
        throw new Error(`${file}:${lineNo}: not JSON (${(err as Error).message})`);
      }
      const t = parseTradeRecord(rec, `${file}:${lineNo}`);
      const r = rec as KrakenTradeRecord;
      out.push({ symbol: t.pair, side: t.side, price: t.price, qty: t.qty, ord_type: t.ord_type, trade_id: t.trade_id, timestamp: r.timestamp });
    }
  }
  return out;
}

export async function startKrakenReplayServer(opts: KrakenReplayOptions): Promise<KrakenReplayServer> {
  if (!!opts.files === !!opts.trades) throw new Error("startKrakenReplayServer: give exactly one of `files` or `trades`");
  const speed = opts.speed ?? 1;
  if (speed !== "max" && !(typeof speed === "number" && speed > 0 && Number.isFinite(speed))) {
    throw new Error(`startKrakenReplayServer: speed must be a positive number or "max" (got ${String(speed)})`);
  }
  const source = opts.files ? fileSource(opts.files) : memorySource(opts.trades!);
  const scan = await scanTrades(source);
  if (scan.total === 0) throw new Error("startKrakenReplayServer: no trades to replay");
  const impl = new ReplayServer(source, scan, { ...opts, speed });
  return impl.listen();
}

/** Pulls the merged stream ahead of the clock into a bounded queue. */
class ReadAhead {
  private readonly it: AsyncGenerator<ReplayTrade[], void, undefined>;
  private q: ReplayTrade[] = [];
  private head = 0;
  private filling = false;
  private closing = false;
  ended = false;
  error: Error | null = null;
  constructor(src: TradeSource, private readonly cap: number, private readonly onData: () => void) {
    this.it = src.open();
    this.fill();
  }
  get length(): number {
    return this.q.length - this.head;
  }
  peek(): ReplayTrade | undefined {
    return this.head < this.q.length ? this.q[this.head] : undefined;
  }
  shift(): ReplayTrade | undefined {
    if (this.head >= this.q.length) return undefined;
    const t = this.q[this.head++];
    if (this.head >= 4096 && this.head * 2 > this.q.length) {
      this.q = this.q.slice(this.head);
      this.head = 0;
    }
    if (!this.filling && !this.ended && this.length < this.cap / 2) this.fill();
    return t;
  }
  private fill(): void {
    this.filling = true;
    void (async () => {
      try {
        while (this.length < this.cap && !this.closing) {
          const r = await this.it.next();
          if (r.done) {
            this.ended = true;
            break;
          }
          for (const t of r.value) this.q.push(t);
          this.onData();
        }
      } catch (err) {
        this.error = err as Error;
        this.ended = true;
      } finally {
        this.filling = false;
        this.onData();
      }
    })();
  }
  async close(): Promise<void> {
    this.closing = true;
    // Let a pending read finish before closing the generator (a running generator cannot be returned).
    while (this.filling) await new Promise((r) => setTimeout(r, 5));
    await this.it.return(undefined).catch(() => {});
  }
}

type Client = {
  ws: WebSocket;
  /** Pair → the first release position this subscription is sent (earlier ones came in its snapshot, or not at all). */
  subs: Map<string, number>;
  /** Next release position to look at for this client. */
  cursor: number;
  held: string[];
  lastSentAt: number;
};

class ReplayServer {
  private readonly pairInfo: ScanResult["pairs"];
  private readonly total: number;
  private readonly reader: ReadAhead;
  /** Released trades not yet passed by every subscribed client: log[i] has seq logBase + i. */
  private log: ReplayTrade[] = [];
  private logBase = 0;
  /** Trades released so far (the next seq to release). */
  private released = 0;
  private readonly releasedPerPair = new Map<string, number>();
  /** Per pair, its most recent released trades, oldest first. */
  private readonly recent = new Map<string, ReplayTrade[]>();
  private readonly restNames = new Map<string, string>();
  private readonly t0: number;
  private readonly speed: number | "max";
  private readonly snapshotSize: number;
  private readonly recentSize: number;
  private readonly maxClientLag: number;
  private readonly wsPath: string;
  private readonly host: string;
  private readonly port: number;
  private readonly heartbeatMs: number;
  private readonly maxBatch: number;
  private readonly highWater: number;
  private readonly startWhen: "all-subscribed" | "first-subscribe" | "listening";
  private readonly startGraceMs: number;

  private readonly clients = new Set<Client>();
  private readonly everSubscribed = new Set<string>();
  private readonly http = createServer((req, res) => this.onHttp(req, res));
  private readonly wss = new WebSocketServer({ noServer: true, perMessageDeflate: false, maxPayload: 1 << 20 });
  private started = false;
  private wallStart = 0;
  private paused = false;
  private pausedAt = 0;
  private hold: number | null = null;
  private refusing = false;
  private closed = false;
  private releaseTimer: NodeJS.Timeout | null = null;
  private graceTimer: NodeJS.Timeout | null = null;
  private readonly waitFor: string[] | undefined;
  private heartbeatTimer: NodeJS.Timeout | null = null;
  private pumpHandle: NodeJS.Immediate | null = null;
  private waiters: { tsMs: number; resolve: () => void }[] = [];
  private restFailures: { status?: number; krakenError?: string }[] = [];
  private restRequests = 0;
  private restScans = 0;
  private readonly restByPair = new Map<string, number>();
  private wsConnections = 0;
  private doneSettled = false;
  private resolveDone!: () => void;
  private rejectDone!: (err: Error) => void;
  readonly done: Promise<void>;

  constructor(private readonly source: TradeSource, scan: ScanResult, opts: KrakenReplayOptions & { speed: number | "max" }) {
    this.pairInfo = scan.pairs;
    this.total = scan.total;
    this.t0 = scan.firstTsMs;
    this.speed = opts.speed;
    this.snapshotSize = opts.snapshotSize ?? 50;
    this.recentSize = Math.max(this.snapshotSize, opts.recentPerPair ?? 200);
    this.maxClientLag = opts.maxClientLag ?? 200_000;
    this.wsPath = opts.wsPath ?? "/v2";
    this.host = opts.host ?? "127.0.0.1";
    this.port = opts.port ?? 0;
    this.heartbeatMs = opts.heartbeatIntervalMs ?? 1000;
    this.maxBatch = opts.maxBatch ?? 100;
    this.highWater = opts.highWaterBytes ?? 1 << 20;
    this.startWhen = opts.startWhen ?? "all-subscribed";
    this.startGraceMs = opts.startGraceMs ?? 2000;
    this.waitFor = opts.waitFor;
    for (const pair of this.pairInfo.keys()) {
      this.releasedPerPair.set(pair, 0);
      this.recent.set(pair, []);
      // Accept what Kraken REST accepts (XBTUSD), and the v2 name with or without its slash.
      for (const name of [restPairName(pair), pair, pair.replace("/", "")]) this.restNames.set(name.toUpperCase(), pair);
    }
    this.reader = new ReadAhead(source, 4096, () => this.onData());
    this.done = new Promise<void>((resolve, reject) => {
      this.resolveDone = resolve;
      this.rejectDone = reject;
    });
    this.done.catch(() => {}); // rejected only by close() or a read error; callers that await it still see the rejection
  }

  async listen(): Promise<KrakenReplayServer> {
    this.http.on("upgrade", (req, socket, head) => {
      const path = new URL(req.url ?? "/", "http://replay").pathname;
      if (this.refusing) {
        socket.end("HTTP/1.1 503 Service Unavailable\r\nConnection: close\r\nContent-Length: 0\r\n\r\n");
        return;
      }
      if (path !== this.wsPath || this.closed) {
        socket.end("HTTP/1.1 404 Not Found\r\nConnection: close\r\nContent-Length: 0\r\n\r\n");
        return;
      }
      this.wss.handleUpgrade(req, socket, head, (ws) => this.onConnection(ws));
    });
    await new Promise<void>((resolve, reject) => {
      this.http.once("error", reject);
      this.http.listen(this.port, this.host, () => {
        this.http.off("error", reject);
        resolve();
      });
    });
    const port = (this.http.address() as AddressInfo).port;
    const hostInUrl = this.host.includes(":") ? `[${this.host}]` : this.host;
    this.heartbeatTimer = setInterval(() => this.heartbeat(), this.heartbeatMs);
    if (this.startWhen === "listening") this.start();
    const lastTradeIds: Record<string, number> = {};
    for (const [pair, info] of this.pairInfo) lastTradeIds[pair] = info.lastId;
    const totals = Object.fromEntries([...this.pairInfo].map(([pair, info]) => [pair, info.count]));
    return {
      wsUrl: `ws://${hostInUrl}:${port}${this.wsPath}`,
      restUrl: `http://${hostInUrl}:${port}`,
      port,
      pairs: [...this.pairInfo.keys()],
      lastTradeIds,
      totals,
      dropConnections: () => {
        for (const c of this.clients) c.ws.terminate();
      },
      injectRaw: (text) => {
        for (const c of this.clients) this.send(c, text);
      },
      pause: () => this.pause(),
      resume: () => this.resume(),
      holdAt: (tsMs) => {
        this.hold = tsMs;
        this.tick();
        this.schedulePump();
      },
      releaseUntil: (tsMs) => this.releaseUntil(tsMs),
      refuseConnections: (on) => {
        this.refusing = on;
      },
      failRest: (count, how = {}) => {
        for (let i = 0; i < count; i++) this.restFailures.push(how.krakenError ? { krakenError: how.krakenError } : { status: how.status ?? 429 });
      },
      stats: () => ({
        started: this.started,
        paused: this.paused,
        clients: this.clients.size,
        released: Object.fromEntries(this.releasedPerPair),
        restRequests: this.restRequests,
        restRequestsByPair: Object.fromEntries(this.restByPair),
        restScans: this.restScans,
        wsConnections: this.wsConnections,
      }),
      done: this.done,
      close: () => this.close(),
    };
  }

  // --- replay clock ----------------------------------------------------------------------------

  private start(): void {
    if (this.started || this.closed) return;
    this.started = true;
    this.wallStart = performance.now();
    if (this.paused) this.pausedAt = this.wallStart;
    if (this.graceTimer) clearTimeout(this.graceTimer);
    this.graceTimer = null;
    this.tick();
    this.schedulePump();
  }

  private onSubscribed(pair: string): void {
    const first = this.everSubscribed.size === 0;
    this.everSubscribed.add(pair);
    if (this.started) return;
    if (this.startWhen === "first-subscribe") this.start();
    else if (this.startWhen === "all-subscribed") {
      const wanted = this.waitFor ?? [...this.pairInfo.keys()];
      if (wanted.every((p) => this.everSubscribed.has(p) || !this.pairInfo.has(p))) this.start();
      else if (first) this.graceTimer = setTimeout(() => this.start(), this.startGraceMs);
    }
  }

  /** More of the files is in memory: whatever waited for it may go on. */
  private onData(): void {
    if (this.closed) return;
    if (this.reader.error && !this.doneSettled) {
      this.doneSettled = true;
      this.rejectDone(this.reader.error);
      return;
    }
    this.serveWaiters();
    if (!this.releaseTimer) this.tick();
    this.schedulePump();
  }

  private releasable(t: ReplayTrade | undefined): t is ReplayTrade {
    return !!t && (this.hold === null || t.tsMs <= this.hold);
  }

  /** Finite speed: releases the trades that are due and sleeps until the next one is. */
  private tick(): void {
    if (this.releaseTimer) clearTimeout(this.releaseTimer);
    this.releaseTimer = null;
    if (!this.started || this.paused || this.closed || this.speed === "max") return;
    const now = performance.now();
    const horizon = this.t0 + (now - this.wallStart) * this.speed;
    let n = 0;
    while (this.releasable(this.reader.peek()) && this.reader.peek()!.tsMs <= horizon) {
      this.releaseOne(this.reader.shift()!);
      n++;
    }
    if (n > 0) {
      this.cutLaggards();
      this.schedulePump();
    }
    const next = this.reader.peek();
    if (this.releasable(next)) {
      const due = this.wallStart + (next.tsMs - this.t0) / this.speed;
      this.releaseTimer = setTimeout(() => this.tick(), Math.min(1000, Math.max(1, due - now)));
    } else if (!next && !this.reader.ended) {
      // The read-ahead is refilling: onData() ticks again.
    } else this.checkDone();
  }

  private releaseOne(t: ReplayTrade): void {
    this.log.push(t);
    this.released++;
    this.releasedPerPair.set(t.pair, this.releasedPerPair.get(t.pair)! + 1);
    const r = this.recent.get(t.pair)!;
    r.push(t);
    if (r.length > this.recentSize + 32) r.splice(0, r.length - this.recentSize);
  }

  private recentOf(pair: string): ReplayTrade[] {
    const r = this.recent.get(pair)!;
    return r.length > this.recentSize ? r.slice(r.length - this.recentSize) : r;
  }

  private async releaseUntil(tsMs: number): Promise<void> {
    await new Promise<void>((resolve) => {
      this.waiters.push({ tsMs, resolve });
      this.serveWaiters();
    });
    this.schedulePump();
  }

  private serveWaiters(): void {
    if (this.waiters.length === 0) return;
    while (this.reader.peek() && this.reader.peek()!.tsMs <= Math.max(...this.waiters.map((w) => w.tsMs))) this.releaseOne(this.reader.shift()!);
    const next = this.reader.peek();
    this.waiters = this.waiters.filter((w) => {
      if (next ? next.tsMs > w.tsMs : this.reader.ended) {
        w.resolve();
        return false;
      }
      return true;
    });
    this.trimLog();
  }

  private pause(): void {
    if (this.paused) return;
    this.paused = true;
    this.pausedAt = performance.now();
    if (this.releaseTimer) clearTimeout(this.releaseTimer);
    this.releaseTimer = null;
  }

  private resume(): void {
    if (!this.paused || this.closed) return;
    this.paused = false;
    // The clock does not count the pause: the replay continues where it stopped.
    if (this.started) this.wallStart += performance.now() - Math.max(this.pausedAt, this.wallStart);
    for (const c of this.clients) {
      const held = c.held;
      c.held = [];
      for (const text of held) this.sendNow(c, text);
    }
    this.tick();
    this.schedulePump();
  }

  // --- sending ---------------------------------------------------------------------------------

  private schedulePump(): void {
    if (this.pumpHandle || this.closed) return;
    this.pumpHandle = setImmediate(() => {
      this.pumpHandle = null;
      this.pump();
    });
  }

  private pump(): void {
    if (this.closed || this.paused) return;
    // Bounded rounds per turn of the event loop, so a fast reader cannot starve timers and other clients.
    for (let round = 0; round < 16; round++) {
      for (const c of this.clients) this.flush(c);
      this.trimLog();
      if (this.speed !== "max" || !this.started || !this.allCaughtUp()) break;
      let n = 0;
      while (n < this.maxBatch && this.releasable(this.reader.peek())) {
        this.releaseOne(this.reader.shift()!);
        n++;
      }
      if (n === 0) break; // held, at the end, or the read-ahead is refilling (onData pumps again)
      if (round === 15) this.schedulePump();
    }
    this.checkDone();
  }

  /** "max": more is released only when every subscribed client has been sent all released trades and has buffer room. */
  private allCaughtUp(): boolean {
    let any = false;
    for (const c of this.clients) {
      if (c.subs.size === 0) continue;
      any = true;
      if (c.ws.bufferedAmount >= this.highWater || c.cursor < this.released) return false;
    }
    return any;
  }

  /** Sends a client the released trades of its pairs, in release order, a run of one pair per frame. */
  private flush(c: Client): void {
    if (c.ws.readyState !== WebSocket.OPEN) return;
    if (c.subs.size === 0) {
      c.cursor = this.released;
      return;
    }
    let i = Math.max(c.cursor, this.logBase);
    let last: string | null = null;
    // Many small frames (a frame per run of one pair's trades): one write to the kernel, not one each.
    const sock = (c.ws as unknown as { _socket?: { cork(): void; uncork(): void } })._socket;
    sock?.cork();
    while (i < this.released && c.ws.bufferedAmount < this.highWater) {
      let pair: string | null = null;
      const data: string[] = [];
      for (; i < this.released && data.length < this.maxBatch; i++) {
        const t = this.log[i - this.logBase];
        const from = c.subs.get(t.pair);
        if (from === undefined || t.seq < from) continue;
        if (pair !== null && t.pair !== pair) break;
        pair = t.pair;
        data.push(t.wire);
      }
      if (data.length === 0) continue;
      // One drain callback per flush, not per frame: it only has to wake the pump.
      if (last !== null) this.sendNow(c, last, false);
      last = `{"channel":"trade","type":"update","data":[${data.join(",")}]}`;
    }
    if (last !== null) this.sendNow(c, last);
    sock?.uncork();
    c.cursor = i;
  }

  /** Drops released trades every subscribed client has passed. */
  private trimLog(): void {
    let min = this.released;
    for (const c of this.clients) if (c.subs.size > 0 && c.cursor < min) min = c.cursor;
    const drop = min - this.logBase;
    if (drop <= 0 || (drop < 4096 && drop < this.log.length)) return;
    this.log.splice(0, drop);
    this.logBase = min;
  }

  /** Finite speed: a client that cannot keep up is cut off rather than buffered for without bound (Kraken does the same). */
  private cutLaggards(): void {
    for (const c of this.clients) if (c.subs.size > 0 && this.released - c.cursor > this.maxClientLag) c.ws.terminate();
  }

  private send(c: Client, text: string): void {
    if (this.paused) c.held.push(text);
    else this.sendNow(c, text);
  }

  private sendNow(c: Client, text: string, wake = true): void {
    if (c.ws.readyState !== WebSocket.OPEN) return;
    c.lastSentAt = performance.now();
    // The callback runs once the frame is handed to the kernel: buffer room again, time to pump.
    if (wake) {
      c.ws.send(text, (err) => {
        if (!err) this.schedulePump();
      });
    } else c.ws.send(text);
  }

  private heartbeat(): void {
    if (this.paused || this.closed) return;
    const now = performance.now();
    for (const c of this.clients) {
      // Kraken sends heartbeats while subscribed and only in the absence of other traffic.
      if (c.subs.size > 0 && now - c.lastSentAt >= this.heartbeatMs * 0.9) this.sendNow(c, '{"channel":"heartbeat"}');
    }
    this.schedulePump(); // also a safety net should a drain go unnoticed
  }

  private checkDone(): void {
    if (this.doneSettled || !this.started || this.released < this.total) return;
    for (const c of this.clients) if (c.subs.size > 0 && c.cursor < this.released) return;
    this.doneSettled = true;
    this.resolveDone();
  }

  // --- WebSocket protocol ----------------------------------------------------------------------

  private onConnection(ws: WebSocket): void {
    this.wsConnections++;
    const c: Client = { ws, subs: new Map(), cursor: this.released, held: [], lastSentAt: performance.now() };
    this.clients.add(c);
    ws.on("message", (data, isBinary) => {
      try {
        this.onClientMessage(c, isBinary ? "" : data.toString());
      } catch {
        // a replay server must not crash on a client's bad input
      }
    });
    ws.on("error", () => {}); // resets after terminate(); 'close' follows
    ws.on("close", () => {
      this.clients.delete(c);
      this.schedulePump();
    });
    this.send(c, JSON.stringify({
      channel: "status",
      type: "update",
      data: [{ api_version: "v2", connection_id: this.wsConnections, system: "online", version: "2.0.0-replay" }],
    }));
  }

  private onClientMessage(c: Client, text: string): void {
    const timeIn = isoNow();
    let msg: Record<string, unknown>;
    try {
      const parsed: unknown = JSON.parse(text);
      if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed)) throw new Error("not an object");
      msg = parsed as Record<string, unknown>;
    } catch {
      this.reply(c, { error: "Malformed request", method: "error", success: false }, undefined, timeIn);
      return;
    }
    const reqId = typeof msg.req_id === "number" ? msg.req_id : undefined;
    const method = msg.method;
    const params = (typeof msg.params === "object" && msg.params !== null ? msg.params : {}) as Record<string, unknown>;
    if (method === "ping") return this.reply(c, { method: "pong" }, reqId, timeIn);
    if (method !== "subscribe" && method !== "unsubscribe") {
      return this.reply(c, { error: `Method not found: ${String(method)}`, method: String(method), success: false }, reqId, timeIn);
    }
    if (params.channel !== "trade") {
      return this.reply(c, { error: `Channel not supported by the replay: ${String(params.channel)}`, method, success: false }, reqId, timeIn);
    }
    const symbols = Array.isArray(params.symbol) ? params.symbol.filter((s): s is string => typeof s === "string") : [];
    if (symbols.length === 0) return this.reply(c, { error: "Missing or empty symbol list", method, success: false }, reqId, timeIn);
    const snapshot = params.snapshot !== false; // docs.kraken.com/api/docs/websocket-v2/trade: default true
    // Kraken answers each symbol of a request separately.
    for (const symbol of symbols) {
      if (method === "unsubscribe") {
        if (c.subs.delete(symbol)) this.reply(c, { method, result: { channel: "trade", symbol }, success: true }, reqId, timeIn);
        else this.reply(c, { error: "Subscription Not Found", method, success: false, symbol }, reqId, timeIn);
        continue;
      }
      if (!this.pairInfo.has(symbol)) {
        this.reply(c, { error: `Currency pair not supported ${symbol}`, method, success: false, symbol }, reqId, timeIn);
        continue;
      }
      if (c.subs.has(symbol)) {
        this.reply(c, { error: "Already subscribed", method, success: false, symbol }, reqId, timeIn);
        continue;
      }
      this.reply(c, { method, result: { channel: "trade", snapshot, symbol }, success: true }, reqId, timeIn);
      if (snapshot) {
        const r = this.recentOf(symbol);
        const snap = r.slice(Math.max(0, r.length - this.snapshotSize));
        this.send(c, `{"channel":"trade","type":"snapshot","data":[${snap.map((t) => t.wire).join(",")}]}`);
      }
      c.subs.set(symbol, this.released);
      this.onSubscribed(symbol);
    }
    this.schedulePump();
  }

  private reply(c: Client, body: Record<string, unknown>, reqId: number | undefined, timeIn: string): void {
    const out: Record<string, unknown> = { ...body, time_in: timeIn, time_out: isoNow() };
    if (reqId !== undefined) out.req_id = reqId;
    this.send(c, JSON.stringify(out));
  }

  // --- REST ------------------------------------------------------------------------------------

  private onHttp(req: IncomingMessage, res: ServerResponse): void {
    const url = new URL(req.url ?? "/", "http://replay");
    const json = (status: number, body: string) => {
      if (res.writableEnded) return;
      res.writeHead(status, { "content-type": "application/json", "content-length": Buffer.byteLength(body) });
      res.end(body);
    };
    if (url.pathname === "/0/public/Time") {
      const now = Date.now();
      return json(200, JSON.stringify({ error: [], result: { unixtime: Math.floor(now / 1000), rfc1123: new Date(now).toUTCString() } }));
    }
    if (url.pathname !== "/0/public/Trades") return json(404, '{"error":["EGeneral:Unknown method"]}');
    this.restRequests++;
    const fail = this.restFailures.shift();
    if (fail?.krakenError) return json(200, JSON.stringify({ error: [fail.krakenError] }));
    if (fail?.status) return json(fail.status, JSON.stringify({ error: [fail.status === 429 ? "EGeneral:Too many requests" : "EService:Unavailable"] }));

    const pair = this.restNames.get((url.searchParams.get("pair") ?? "").toUpperCase());
    if (!pair) return json(200, '{"error":["EQuery:Unknown asset pair"]}');
    this.restByPair.set(pair, (this.restByPair.get(pair) ?? 0) + 1);
    const countParam = url.searchParams.get("count");
    const count = countParam === null ? 1000 : Number(countParam);
    if (!Number.isInteger(count) || count < 1 || count > 1000) return json(200, '{"error":["EGeneral:Invalid arguments:count"]}');
    const since = parseSince(url.searchParams.get("since"));
    if (since === "invalid") return json(200, '{"error":["EGeneral:Invalid arguments:since"]}');
    this.restPage(pair, since, count).then(
      (rows) => {
        const last = rows.length ? rows[rows.length - 1].key : (since ?? 0n);
        json(200, `{"error":[],"result":{${JSON.stringify(restPairName(pair))}:[${rows.map((t) => t.rest()).join(",")}],"last":"${last}"}}`);
      },
      (err: Error) => json(500, JSON.stringify({ error: [`EService:Unavailable (${err.message})`] })),
    );
  }

  /** Up to `count` released trades of `pair` after the key `since` (none: the most recent), from memory when the recent trades cover it, else by re-reading the files. */
  private async restPage(pair: string, since: bigint | null, count: number): Promise<ReplayTrade[]> {
    const r = this.recentOf(pair);
    const all = this.releasedPerPair.get(pair)!;
    const complete = r.length === all; // every released trade of the pair is in memory
    if (since === null) {
      if (complete || count <= r.length) return r.slice(Math.max(0, r.length - count));
    } else if (complete || (r.length > 0 && r[0].key <= since)) {
      let lo = 0;
      let hi = r.length;
      while (lo < hi) {
        const mid = (lo + hi) >> 1;
        if (r[mid].key <= since) lo = mid + 1;
        else hi = mid;
      }
      return r.slice(lo, lo + count);
    }
    this.restScans++;
    // A trade released after this request began is not part of the answer.
    return this.source.page(pair, since, count, this.released);
  }

  // --- shutdown ----------------------------------------------------------------------------------

  private async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    for (const t of [this.releaseTimer, this.graceTimer]) if (t) clearTimeout(t);
    if (this.heartbeatTimer) clearInterval(this.heartbeatTimer);
    if (this.pumpHandle) clearImmediate(this.pumpHandle);
    this.releaseTimer = this.graceTimer = this.heartbeatTimer = null;
    this.pumpHandle = null;
    for (const w of this.waiters) w.resolve();
    this.waiters = [];
    for (const c of this.clients) c.ws.terminate();
    await new Promise<void>((resolve) => this.wss.close(() => resolve()));
    const closed = new Promise<void>((resolve) => this.http.close(() => resolve()));
    this.http.closeAllConnections(); // keep-alive REST connections would hold close() open
    await closed;
    await this.reader.close();
    if (!this.doneSettled) {
      this.doneSettled = true;
      this.rejectDone(new Error("replay server closed before every trade was sent"));
    }
  }
}

function parseSince(s: string | null): bigint | null | "invalid" {
  if (s === null || s === "") return null;
  const m = /^(\d+)(?:\.(\d+))?$/.exec(s);
  if (!m) return "invalid";
  // A nanosecond epoch has 19 digits; seconds have at most 10 until the year 2286.
  if (m[2] === undefined && m[1].length > 11) return BigInt(m[1]);
  return BigInt(m[1]) * 1_000_000_000n + BigInt((m[2] ?? "").slice(0, 9).padEnd(9, "0"));
}

function isoNow(): string {
  return new Date().toISOString();
}
