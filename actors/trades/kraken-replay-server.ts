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
import { parseTradeRecord, restPairName, rfc3339ToNs } from "./kraken-messages.js";

/** A trade as Kraken WebSocket v2 sends it (and as data/trades/*.jsonl.gz stores it, one per line). */
export type KrakenTradeRecord = {
  symbol: string;
  side: "buy" | "sell";
  price: number;
  qty: number;
  ord_type: "market" | "limit";
  trade_id: number;
  timestamp: string;
};

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
};

export type ReplayStats = {
  started: boolean;
  paused: boolean;
  clients: number;
  /** Trades released by the replay clock, per pair. */
  released: Record<string, number>;
  restRequests: number;
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
  /** The next `count` REST requests fail: with HTTP `status` (default 429), or with HTTP 200 and `krakenError` in `error`. */
  failRest(count: number, how?: { status?: number; krakenError?: string }): void;
  stats(): ReplayStats;
  /** Resolves when every trade is released and sent to every subscribed client; rejects if closed first. */
  done: Promise<void>;
  close(): Promise<void>;
};

/** Reads gzip or plain JSONL trade files, validating each line. */
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

type ReplayTrade = {
  pair: string;
  id: number;
  tsMs: number;
  /** Unique per pair, increasing: the REST cursor space. */
  key: bigint;
  /** Pre-serialised v2 record. */
  wire: string;
  /** Pre-serialised REST row. */
  rest: string;
};

type Client = { ws: WebSocket; subs: Map<string, { sent: number }>; held: string[]; lastSentAt: number };

/** The REST float time of a trade: seconds with at most 6 decimals (truncated to the microsecond, so it floors to the same millisecond as the WebSocket timestamp). */
function restTime(ns: bigint): string {
  const sec = ns / 1_000_000_000n;
  const frac = (ns % 1_000_000_000n).toString().padStart(9, "0").slice(0, 6).replace(/0+$/, "");
  return `${sec}.${frac || "0"}`;
}

/** Shortest decimal string (at least `min` decimals, never exponent notation) that reads back as exactly `x`. */
function decimal(x: number, min: number): string {
  for (let d = min; d <= 20; d++) {
    const s = x.toFixed(d);
    if (Number(s) === x) return s;
  }
  return x.toFixed(20);
}

function prepare(records: KrakenTradeRecord[]): { timeline: ReplayTrade[]; byPair: Map<string, ReplayTrade[]> } {
  const rows = records.map((r, i) => {
    const ns = rfc3339ToNs(r.timestamp);
    if (ns === null) throw new Error(`trade ${r.symbol} ${r.trade_id}: bad timestamp ${JSON.stringify(r.timestamp)}`);
    return { r, i, ns };
  });
  rows.sort((a, b) => (a.ns < b.ns ? -1 : a.ns > b.ns ? 1 : a.i - b.i));
  const byPair = new Map<string, ReplayTrade[]>();
  const timeline: ReplayTrade[] = [];
  for (const { r, ns } of rows) {
    let list = byPair.get(r.symbol);
    if (!list) byPair.set(r.symbol, (list = []));
    const prev = list[list.length - 1];
    if (prev && r.trade_id <= prev.id) {
      // The client drops any trade whose id is not above the last one: such data cannot be replayed faithfully.
      throw new Error(`${r.symbol}: trade_id ${r.trade_id} at ${r.timestamp} is not above ${prev.id}, the trade before it in time`);
    }
    const key = prev && ns <= prev.key ? prev.key + 1n : ns;
    const rec = { symbol: r.symbol, side: r.side, price: r.price, qty: r.qty, ord_type: r.ord_type, trade_id: r.trade_id, timestamp: r.timestamp };
    const t: ReplayTrade = {
      pair: r.symbol,
      id: r.trade_id,
      tsMs: Number(ns / 1_000_000n),
      key,
      wire: JSON.stringify(rec),
      rest: `[${JSON.stringify(decimal(r.price, 5))},${JSON.stringify(decimal(r.qty, 8))},${restTime(ns)},"${r.side[0]}","${r.ord_type[0]}","",${r.trade_id}]`,
    };
    list.push(t);
    timeline.push(t);
  }
  return { timeline, byPair };
}

export async function startKrakenReplayServer(opts: KrakenReplayOptions): Promise<KrakenReplayServer> {
  if (!!opts.files === !!opts.trades) throw new Error("startKrakenReplayServer: give exactly one of `files` or `trades`");
  const speed = opts.speed ?? 1;
  if (speed !== "max" && !(typeof speed === "number" && speed > 0 && Number.isFinite(speed))) {
    throw new Error(`startKrakenReplayServer: speed must be a positive number or "max" (got ${String(speed)})`);
  }
  const records = opts.files ? loadTradeFiles(opts.files) : opts.trades!;
  if (records.length === 0) throw new Error("startKrakenReplayServer: no trades to replay");
  const impl = new ReplayServer(prepare(records), { ...opts, speed });
  return impl.listen();
}

class ReplayServer {
  private readonly timeline: ReplayTrade[];
  private readonly byPair: Map<string, ReplayTrade[]>;
  private readonly releasedPerPair = new Map<string, number>();
  private readonly restNames = new Map<string, string>();
  private released = 0;
  private readonly t0: number;
  private readonly speed: number | "max";
  private readonly snapshotSize: number;
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
  private closed = false;
  private releaseTimer: NodeJS.Timeout | null = null;
  private graceTimer: NodeJS.Timeout | null = null;
  private heartbeatTimer: NodeJS.Timeout | null = null;
  private pumpHandle: NodeJS.Immediate | null = null;
  private restFailures: { status?: number; krakenError?: string }[] = [];
  private restRequests = 0;
  private wsConnections = 0;
  private doneSettled = false;
  private resolveDone!: () => void;
  private rejectDone!: (err: Error) => void;
  readonly done: Promise<void>;

  constructor(data: { timeline: ReplayTrade[]; byPair: Map<string, ReplayTrade[]> }, opts: KrakenReplayOptions & { speed: number | "max" }) {
    this.timeline = data.timeline;
    this.byPair = data.byPair;
    this.t0 = this.timeline[0].tsMs;
    this.speed = opts.speed;
    this.snapshotSize = opts.snapshotSize ?? 50;
    this.wsPath = opts.wsPath ?? "/v2";
    this.host = opts.host ?? "127.0.0.1";
    this.port = opts.port ?? 0;
    this.heartbeatMs = opts.heartbeatIntervalMs ?? 1000;
    this.maxBatch = opts.maxBatch ?? 100;
    this.highWater = opts.highWaterBytes ?? 1 << 20;
    this.startWhen = opts.startWhen ?? "all-subscribed";
    this.startGraceMs = opts.startGraceMs ?? 2000;
    for (const pair of this.byPair.keys()) {
      this.releasedPerPair.set(pair, 0);
      // Accept what Kraken REST accepts (XBTUSD), and the v2 name with or without its slash.
      for (const name of [restPairName(pair), pair, pair.replace("/", "")]) this.restNames.set(name.toUpperCase(), pair);
    }
    this.done = new Promise<void>((resolve, reject) => {
      this.resolveDone = resolve;
      this.rejectDone = reject;
    });
    this.done.catch(() => {}); // rejected only by close(); callers that await it still see the rejection
  }

  async listen(): Promise<KrakenReplayServer> {
    this.http.on("upgrade", (req, socket, head) => {
      const path = new URL(req.url ?? "/", "http://replay").pathname;
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
    for (const [pair, list] of this.byPair) lastTradeIds[pair] = list[list.length - 1].id;
    const totals = Object.fromEntries([...this.byPair].map(([pair, list]) => [pair, list.length]));
    return {
      wsUrl: `ws://${hostInUrl}:${port}${this.wsPath}`,
      restUrl: `http://${hostInUrl}:${port}`,
      port,
      pairs: [...this.byPair.keys()],
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
      failRest: (count, how = {}) => {
        for (let i = 0; i < count; i++) this.restFailures.push(how.krakenError ? { krakenError: how.krakenError } : { status: how.status ?? 429 });
      },
      stats: () => ({
        started: this.started,
        paused: this.paused,
        clients: this.clients.size,
        released: Object.fromEntries(this.releasedPerPair),
        restRequests: this.restRequests,
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
      if (this.everSubscribed.size === this.byPair.size) this.start();
      else if (first) this.graceTimer = setTimeout(() => this.start(), this.startGraceMs);
    }
  }

  /** Finite speed: releases the trades that are due and sleeps until the next one is. */
  private tick(): void {
    this.releaseTimer = null;
    if (!this.started || this.paused || this.closed || this.speed === "max") return;
    const now = performance.now();
    const horizon = this.t0 + (now - this.wallStart) * this.speed;
    let i = this.released;
    while (i < this.timeline.length && this.timeline[i].tsMs <= horizon) i++;
    if (i > this.released) {
      this.releaseTo(i);
      this.schedulePump();
    }
    if (this.released < this.timeline.length) {
      const due = this.wallStart + (this.timeline[this.released].tsMs - this.t0) / this.speed;
      this.releaseTimer = setTimeout(() => this.tick(), Math.min(1000, Math.max(1, due - now)));
    } else {
      this.checkDone();
    }
  }

  private releaseTo(i: number): void {
    for (let k = this.released; k < i; k++) {
      const pair = this.timeline[k].pair;
      this.releasedPerPair.set(pair, this.releasedPerPair.get(pair)! + 1);
    }
    this.released = i;
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
    for (let round = 0; round < 64; round++) {
      for (const c of this.clients) this.flush(c);
      if (this.speed !== "max" || !this.started || this.released >= this.timeline.length || !this.allCaughtUp()) break;
      this.releaseTo(Math.min(this.timeline.length, this.released + this.maxBatch));
      if (round === 63) this.schedulePump();
    }
    this.checkDone();
  }

  /** "max": more is released only when every subscribed client has been sent all released trades and has buffer room. */
  private allCaughtUp(): boolean {
    let any = false;
    for (const c of this.clients) {
      if (c.subs.size === 0) continue;
      any = true;
      if (c.ws.bufferedAmount >= this.highWater) return false;
      for (const [pair, s] of c.subs) if (s.sent < this.releasedPerPair.get(pair)!) return false;
    }
    return any;
  }

  private flush(c: Client): void {
    if (c.ws.readyState !== WebSocket.OPEN) return;
    for (const [pair, s] of c.subs) {
      const rel = this.releasedPerPair.get(pair)!;
      const list = this.byPair.get(pair)!;
      while (s.sent < rel && c.ws.bufferedAmount < this.highWater) {
        const n = Math.min(this.maxBatch, rel - s.sent);
        const frame = tradeFrame("update", list, s.sent, s.sent + n);
        s.sent += n;
        this.sendNow(c, frame);
      }
    }
  }

  private send(c: Client, text: string): void {
    if (this.paused) c.held.push(text);
    else this.sendNow(c, text);
  }

  private sendNow(c: Client, text: string): void {
    if (c.ws.readyState !== WebSocket.OPEN) return;
    c.lastSentAt = performance.now();
    // The callback runs once the frame is handed to the kernel: buffer room again, time to pump.
    c.ws.send(text, (err) => {
      if (!err) this.schedulePump();
    });
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
    if (this.doneSettled || !this.started || this.released < this.timeline.length) return;
    for (const c of this.clients) for (const [pair, s] of c.subs) if (s.sent < this.releasedPerPair.get(pair)!) return;
    this.doneSettled = true;
    this.resolveDone();
  }

  // --- WebSocket protocol ----------------------------------------------------------------------

  private onConnection(ws: WebSocket): void {
    this.wsConnections++;
    const c: Client = { ws, subs: new Map(), held: [], lastSentAt: performance.now() };
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
      const list = this.byPair.get(symbol);
      if (!list) {
        this.reply(c, { error: `Currency pair not supported ${symbol}`, method, success: false, symbol }, reqId, timeIn);
        continue;
      }
      if (c.subs.has(symbol)) {
        this.reply(c, { error: "Already subscribed", method, success: false, symbol }, reqId, timeIn);
        continue;
      }
      this.reply(c, { method, result: { channel: "trade", snapshot, symbol }, success: true }, reqId, timeIn);
      const rel = this.releasedPerPair.get(symbol)!;
      if (snapshot) this.send(c, tradeFrame("snapshot", list, Math.max(0, rel - this.snapshotSize), rel));
      c.subs.set(symbol, { sent: rel });
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
    const countParam = url.searchParams.get("count");
    const count = countParam === null ? 1000 : Number(countParam);
    if (!Number.isInteger(count) || count < 1 || count > 1000) return json(200, '{"error":["EGeneral:Invalid arguments:count"]}');
    const since = parseSince(url.searchParams.get("since"));
    if (since === "invalid") return json(200, '{"error":["EGeneral:Invalid arguments:since"]}');

    const list = this.byPair.get(pair)!;
    const rel = this.releasedPerPair.get(pair)!;
    let start: number;
    if (since === null) {
      start = Math.max(0, rel - count); // no `since`: the most recent trades, as Kraken does
    } else {
      let lo = 0;
      let hi = rel;
      while (lo < hi) {
        const mid = (lo + hi) >> 1;
        if (list[mid].key <= since) lo = mid + 1;
        else hi = mid;
      }
      start = lo;
    }
    const end = Math.min(rel, start + count);
    const rows: string[] = [];
    for (let i = start; i < end; i++) rows.push(list[i].rest);
    const last = end > start ? list[end - 1].key : (since ?? 0n);
    json(200, `{"error":[],"result":{${JSON.stringify(restPairName(pair))}:[${rows.join(",")}],"last":"${last}"}}`);
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
    for (const c of this.clients) c.ws.terminate();
    await new Promise<void>((resolve) => this.wss.close(() => resolve()));
    const closed = new Promise<void>((resolve) => this.http.close(() => resolve()));
    this.http.closeAllConnections(); // keep-alive REST connections would hold close() open
    await closed;
    if (!this.doneSettled) {
      this.doneSettled = true;
      this.rejectDone(new Error("replay server closed before every trade was sent"));
    }
  }
}

function tradeFrame(type: "snapshot" | "update", list: ReplayTrade[], from: number, to: number): string {
  let data = "";
  for (let i = from; i < to; i++) data += (i > from ? "," : "") + list[i].wire;
  return `{"channel":"trade","type":"${type}","data":[${data}]}`;
}

/** `since`: nanoseconds (Kraken's cursor) or, as Kraken also accepts, seconds (integer or decimal). */
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
