// Kraken wire formats → Tickflow `Trade`s. Pure: parses and validates WebSocket v2 frames and REST
// `GET /0/public/Trades` responses, does no I/O, and every error says what was wrong and where, so a
// dead letter can be read without the original code at hand.
//
// Shapes follow Kraken's documentation:
//   WS v2 trade:     https://docs.kraken.com/api/docs/websocket-v2/trade
//   WS v2 status:    https://docs.kraken.com/exchange/api-reference/spot-websocket-v2/status
//   WS v2 heartbeat: https://docs.kraken.com/api/docs/websocket-v2/heartbeat/
//   WS v2 ping:      https://docs.kraken.com/api/docs/websocket-v2/ping
//   REST Trades:     https://docs.kraken.com/api/docs/rest-api/get-recent-trades/
import { BadInputError, ErrorCode } from "../../protocol/errors.js";
import { SCHEMA_VERSION, TradeCheck, type Trade } from "../../protocol/messages.js";

/**
 * A frame or record that can never be turned into a `Trade`. It is dead-lettered, never retried.
 * `code` is the project's `TF_BAD_MESSAGE` (it is a `BadInputError`); `where` locates the problem
 * inside the frame (`trade frame data[3].price`).
 */
export class BadFrameError extends BadInputError {
  readonly where: string;
  constructor(where: string, problem: string, options?: { cause?: unknown }) {
    super(`${where}: ${problem}`, options);
    this.name = "BadFrameError";
    this.where = where;
  }
}

/** Kraken answered with `{"error":["EAPI:Rate limit exceeded", …]}`. */
export class KrakenApiError extends Error {
  readonly code = ErrorCode.KrakenApi;
  readonly errors: string[];
  /** True for errors that go away by waiting: rate limits, throttling, a busy or unavailable service. */
  readonly retryable: boolean;
  constructor(errors: string[], options?: { cause?: unknown }) {
    super(`Kraken error: ${errors.join("; ")}`, options);
    this.name = "KrakenApiError";
    this.errors = errors;
    this.retryable = errors.some(isTransientKrakenError);
  }
}

// Kraken error strings are `<severity><category>:<message>`; these categories/messages are the
// transient ones (rate limit counter, "EService:Throttled: <ts>", maintenance windows).
// https://docs.kraken.com/api/docs/guides/spot-rest-ratelimits/
const TRANSIENT = [/^EAPI:Rate limit exceeded/i, /^EService:/i, /^EGeneral:Temporary lockout/i, /^EGeneral:Too many requests/i];
export function isTransientKrakenError(e: string): boolean {
  return TRANSIENT.some((re) => re.test(e));
}

// --- small field checks ----------------------------------------------------------------------

function preview(v: unknown): string {
  if (v === undefined) return "nothing";
  let s: string | undefined;
  try {
    s = JSON.stringify(v);
  } catch {
    s = undefined;
  }
  if (s === undefined) s = String(v);
  return s.length > 60 ? `${s.slice(0, 57)}...` : s;
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

function positiveNumber(v: unknown, where: string): number {
  if (typeof v !== "number" || !Number.isFinite(v) || v <= 0) throw new BadFrameError(where, `expected a positive number (got ${preview(v)})`);
  return v;
}

function nonNegativeNumber(v: unknown, where: string): number {
  if (typeof v !== "number" || !Number.isFinite(v) || v < 0) throw new BadFrameError(where, `expected a number >= 0 (got ${preview(v)})`);
  return v;
}

function tradeId(v: unknown, where: string): number {
  if (typeof v !== "number" || !Number.isSafeInteger(v) || v < 0) throw new BadFrameError(where, `expected a whole number >= 0 (got ${preview(v)})`);
  return v;
}

// REST sends prices and volumes as decimal strings ("30243.40000") so no precision is lost in JSON.
const DECIMAL = /^\d+(\.\d+)?$/;
function decimalString(v: unknown, where: string, positive: boolean): number {
  if (typeof v !== "string" || !DECIMAL.test(v)) throw new BadFrameError(where, `expected a decimal string (got ${preview(v)})`);
  const n = Number(v);
  if (!Number.isFinite(n) || (positive ? n <= 0 : n < 0)) throw new BadFrameError(where, `expected a ${positive ? "positive" : "non-negative"} decimal (got ${preview(v)})`);
  return n;
}

// --- time ------------------------------------------------------------------------------------

const RFC3339 = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?(Z|[+-]\d{2}:\d{2})$/;

/**
 * RFC 3339 (Kraken v2 timestamps, e.g. `2024-08-08T23:54:15.342000Z`) → nanoseconds since the epoch,
 * exactly (BigInt: a nanosecond epoch does not fit in a double). Null if it is not a real instant.
 */
export function rfc3339ToNs(s: string): bigint | null {
  const m = RFC3339.exec(s);
  if (!m) return null;
  const [, y, mo, d, h, mi, se, frac = "", tz] = m;
  const ms = Date.UTC(Number(y), Number(mo) - 1, Number(d), Number(h), Number(mi), Number(se));
  const check = new Date(ms);
  // Date.UTC silently rolls 2024-02-30 over into March; a timestamp like that is corrupt.
  if (check.getUTCFullYear() !== Number(y) || check.getUTCMonth() !== Number(mo) - 1 || check.getUTCDate() !== Number(d) ||
      check.getUTCHours() !== Number(h) || check.getUTCMinutes() !== Number(mi) || check.getUTCSeconds() !== Number(se)) {
    return null;
  }
  let offsetMin = 0;
  if (tz !== "Z") {
    const sign = tz.startsWith("-") ? -1 : 1;
    offsetMin = sign * (Number(tz.slice(1, 3)) * 60 + Number(tz.slice(4, 6)));
  }
  return (BigInt(ms) - BigInt(offsetMin) * 60_000n) * 1_000_000n + BigInt(frac.padEnd(9, "0"));
}

/** RFC 3339 → integer milliseconds, floored (a trade at .342999 s belongs to millisecond 342). Null if invalid. */
export function rfc3339ToMs(s: string): number | null {
  // Every trade of a feed carries one of these, and the trades of one second share its first 19
  // characters: a timestamp in UTC ("…Z") within the second last validated is its millisecond
  // offset added to that second's, without the regular expression, Date and BigInt arithmetic.
  const n = s.length;
  if (n >= 20 && n <= 30 && s.charCodeAt(n - 1) === 90 && lastSecond !== "" && s.startsWith(lastSecond)) {
    if (n === 20) return lastSecondMs;
    if (s.charCodeAt(19) === 46 && n > 21) {
      let ms = 0;
      let ok = true;
      for (let i = 20; i < n - 1; i++) {
        const c = s.charCodeAt(i) - 48;
        if (c < 0 || c > 9) {
          ok = false;
          break;
        }
        if (i < 23) ms = ms * 10 + c;
      }
      if (ok) {
        for (let i = n - 1; i < 23; i++) ms *= 10;
        return lastSecondMs + ms;
      }
    }
  }
  const ns = rfc3339ToNs(s);
  if (ns === null) return null;
  if (n >= 20 && s.charCodeAt(n - 1) === 90 && (s.charCodeAt(19) === 46 || n === 20)) {
    const second = s.slice(0, 19);
    const secondNs = rfc3339ToNs(`${second}Z`);
    if (secondNs !== null) {
      lastSecond = second;
      lastSecondMs = floorMs(secondNs);
    }
  }
  return floorMs(ns);
}

/** The second (`YYYY-MM-DDTHH:MM:SS`, UTC) rfc3339ToMs last validated, and its epoch milliseconds. */
let lastSecond = "";
let lastSecondMs = 0;

function floorMs(ns: bigint): number {
  // Floor division for BigInt (negative instants round towards -infinity, like Math.floor).
  const q = ns / 1_000_000n;
  return Number(ns < 0n && q * 1_000_000n !== ns ? q - 1n : q);
}

/**
 * REST trade time (float seconds, e.g. 1688669597.8277369) → integer ms, floored. The double is first
 * rounded to whole microseconds: 1723161255.342 is stored as 1723161255.3419999…, and a plain
 * floor(t * 1000) would put that trade in the previous millisecond.
 */
export function restTimeToMs(t: number): number {
  return Math.floor(Math.round(t * 1e6) / 1000);
}

// --- trades ----------------------------------------------------------------------------------

function finish(t: Trade, where: string): Trade {
  const problem = TradeCheck.explain(t);
  if (problem !== null) throw new BadFrameError(where, problem);
  return t;
}

/**
 * One WebSocket v2 trade record → `Trade`.
 * `{"symbol":"BTC/USD","side":"buy","price":61837.6,"qty":0.02,"ord_type":"market","trade_id":42,"timestamp":"…Z"}`
 * @throws BadFrameError naming the field, e.g. `trade frame data[3].price: expected a positive number (got "abc")`
 */
export function parseTradeRecord(rec: unknown, where: string): Trade {
  if (!isObject(rec)) throw new BadFrameError(where, `expected a trade object (got ${preview(rec)})`);
  const symbol = rec.symbol;
  if (typeof symbol !== "string" || symbol.length === 0) throw new BadFrameError(`${where}.symbol`, `expected a pair such as "BTC/USD" (got ${preview(symbol)})`);
  const side = rec.side;
  if (side !== "buy" && side !== "sell") throw new BadFrameError(`${where}.side`, `expected "buy" or "sell" (got ${preview(side)})`);
  const ordType = rec.ord_type;
  if (ordType !== "market" && ordType !== "limit") throw new BadFrameError(`${where}.ord_type`, `expected "market" or "limit" (got ${preview(ordType)})`);
  const price = positiveNumber(rec.price, `${where}.price`);
  const qty = nonNegativeNumber(rec.qty, `${where}.qty`);
  const id = tradeId(rec.trade_id, `${where}.trade_id`);
  const ts = typeof rec.timestamp === "string" ? rfc3339ToMs(rec.timestamp) : null;
  if (ts === null) throw new BadFrameError(`${where}.timestamp`, `expected an RFC 3339 time such as "2024-08-08T23:54:15.342000Z" (got ${preview(rec.timestamp)})`);
  return finish({ v: SCHEMA_VERSION, pair: symbol, trade_id: id, price, qty, side, ord_type: ordType, ts_ms: ts }, where);
}

/**
 * One REST trade row → `Trade`: `[price, volume, time, "b"|"s", "m"|"l", misc, trade_id]`.
 * Rows without the 7th element (trade_id; Kraken added it in 2023) are rejected: dedup needs it.
 */
export function parseRestTradeRow(row: unknown, pair: string, where: string): Trade {
  if (!Array.isArray(row) || row.length < 7) throw new BadFrameError(where, `expected [price, volume, time, side, ord_type, misc, trade_id] (got ${preview(row)})`);
  const price = decimalString(row[0], `${where}[0] (price)`, true);
  const qty = decimalString(row[1], `${where}[1] (volume)`, false);
  const time = row[2];
  if (typeof time !== "number" || !Number.isFinite(time) || time < 0) throw new BadFrameError(`${where}[2] (time)`, `expected seconds since the epoch (got ${preview(time)})`);
  const side = row[3] === "b" ? "buy" : row[3] === "s" ? "sell" : null;
  if (side === null) throw new BadFrameError(`${where}[3] (side)`, `expected "b" or "s" (got ${preview(row[3])})`);
  const ordType = row[4] === "m" ? "market" : row[4] === "l" ? "limit" : null;
  if (ordType === null) throw new BadFrameError(`${where}[4] (ord_type)`, `expected "m" or "l" (got ${preview(row[4])})`);
  const id = tradeId(row[6], `${where}[6] (trade_id)`);
  return finish({ v: SCHEMA_VERSION, pair, trade_id: id, price, qty, side, ord_type: ordType, ts_ms: restTimeToMs(time) }, where);
}

/** A record that failed inside an otherwise valid frame or page: skipped, reported, the rest delivered. */
export type BadRecord = { error: BadFrameError; /** The record's symbol when it has one (to route the report). */ symbol: string | null; raw: string };

// --- WebSocket v2 frames -----------------------------------------------------------------------

export type WsTradeFrame = { kind: "trade"; type: "snapshot" | "update"; trades: Trade[]; bad: BadRecord[] };
export type WsFrame =
  | WsTradeFrame
  | { kind: "heartbeat" }
  | { kind: "status"; system: string; version: string | null }
  /** Answer to subscribe/unsubscribe. Kraken answers each symbol of a request separately. */
  | { kind: "ack"; method: "subscribe" | "unsubscribe"; success: boolean; symbol: string | null; error: string | null; reqId: number | null }
  | { kind: "pong"; reqId: number | null }
  /** Any other method response with `success: false` (e.g. a malformed request). */
  | { kind: "error"; method: string | null; error: string; reqId: number | null };

function reqIdOf(o: Record<string, unknown>): number | null {
  return typeof o.req_id === "number" ? o.req_id : null;
}

/**
 * One text frame from `wss://ws.kraken.com/v2`.
 * Frame-level problems (not JSON, unknown channel, no `data`) throw a BadFrameError; a bad record
 * inside a trade frame does not: it is returned in `bad` and the valid records in `trades`.
 */
export function parseWsFrame(text: string): WsFrame {
  let msg: unknown;
  try {
    msg = JSON.parse(text);
  } catch (err) {
    throw new BadFrameError("frame", `not JSON (${(err as Error).message}): ${preview(text)}`, { cause: err });
  }
  if (!isObject(msg)) throw new BadFrameError("frame", `expected a JSON object (got ${preview(msg)})`);

  if (typeof msg.method === "string") {
    const method = msg.method;
    const success = msg.success !== false;
    const error = typeof msg.error === "string" ? msg.error : null;
    if (method === "subscribe" || method === "unsubscribe") {
      const result = isObject(msg.result) ? msg.result : {};
      const symbol = typeof result.symbol === "string" ? result.symbol : typeof msg.symbol === "string" ? msg.symbol : null;
      return { kind: "ack", method, success, symbol, error: success ? null : (error ?? "unknown error"), reqId: reqIdOf(msg) };
    }
    if (method === "pong") return { kind: "pong", reqId: reqIdOf(msg) };
    if (!success) return { kind: "error", method, error: error ?? "unknown error", reqId: reqIdOf(msg) };
    throw new BadFrameError("frame.method", `unexpected method ${preview(method)}`);
  }
  if (typeof msg.error === "string") return { kind: "error", method: null, error: msg.error, reqId: reqIdOf(msg) };

  const channel = msg.channel;
  if (channel === "heartbeat") return { kind: "heartbeat" };
  if (channel === "status") {
    const d = Array.isArray(msg.data) && isObject(msg.data[0]) ? msg.data[0] : null;
    if (!d || typeof d.system !== "string") throw new BadFrameError("status frame data[0].system", `expected a string (got ${preview(d?.system)})`);
    return { kind: "status", system: d.system, version: typeof d.version === "string" ? d.version : null };
  }
  if (channel === "trade") {
    const type = msg.type;
    if (type !== "snapshot" && type !== "update") throw new BadFrameError("trade frame.type", `expected "snapshot" or "update" (got ${preview(type)})`);
    if (!Array.isArray(msg.data)) throw new BadFrameError("trade frame.data", `expected an array of trades (got ${preview(msg.data)})`);
    const trades: Trade[] = [];
    const bad: BadRecord[] = [];
    msg.data.forEach((rec: unknown, i: number) => {
      try {
        trades.push(parseTradeRecord(rec, `trade frame data[${i}]`));
      } catch (err) {
        if (!(err instanceof BadFrameError)) throw err;
        const symbol = isObject(rec) && typeof rec.symbol === "string" ? rec.symbol : null;
        bad.push({ error: err, symbol, raw: JSON.stringify(rec) ?? String(rec) });
      }
    });
    return { kind: "trade", type, trades, bad };
  }
  throw new BadFrameError("frame.channel", `unknown channel ${preview(channel)}`);
}

// --- REST ------------------------------------------------------------------------------------

export type RestTradesPage = {
  /** The pair name Kraken used as the key (its own canonical name, e.g. `XXBTZUSD`, not necessarily what was asked). */
  key: string;
  trades: Trade[];
  /** Rows in the page, good or bad: a page with fewer rows than `count` means "caught up". */
  rows: number;
  bad: BadRecord[];
  /** Cursor for the next page (nanoseconds since the epoch, as a string: it does not fit a double). */
  last: string;
};

/**
 * A `GET /0/public/Trades` body → trades of `pair`.
 * `{"error":[],"result":{"XXBTZUSD":[["30243.40000","0.34507674",1688669597.8277369,"b","m","",61044952],…],"last":"1688671969993150842"}}`
 * @throws KrakenApiError when `error` is not empty; BadFrameError when the shape is wrong.
 */
export function parseRestTrades(body: unknown, pair: string): RestTradesPage {
  const where = "Trades response";
  if (!isObject(body)) throw new BadFrameError(where, `expected a JSON object (got ${preview(body)})`);
  if (!Array.isArray(body.error)) throw new BadFrameError(`${where}.error`, `expected an array (got ${preview(body.error)})`);
  if (body.error.length > 0) throw new KrakenApiError(body.error.map(String));
  const result = body.result;
  if (!isObject(result)) throw new BadFrameError(`${where}.result`, `expected an object (got ${preview(result)})`);
  const last = result.last;
  if (typeof last !== "string" || !/^\d+$/.test(last)) throw new BadFrameError(`${where}.result.last`, `expected a string of digits (got ${preview(last)})`);
  // The key is Kraken's name for the pair, which differs from what the request used (XBTUSD →
  // XXBTZUSD), so the one array-valued key is taken rather than looked up by name.
  const keys = Object.keys(result).filter((k) => k !== "last" && Array.isArray(result[k]));
  if (keys.length !== 1) throw new BadFrameError(`${where}.result`, `expected exactly one trade list besides "last" (got keys ${preview(Object.keys(result))})`);
  const key = keys[0];
  const rows = result[key] as unknown[];
  const trades: Trade[] = [];
  const bad: BadRecord[] = [];
  rows.forEach((row, i) => {
    try {
      trades.push(parseRestTradeRow(row, pair, `${where} result.${key}[${i}]`));
    } catch (err) {
      if (!(err instanceof BadFrameError)) throw err;
      bad.push({ error: err, symbol: pair, raw: JSON.stringify(row) ?? "" });
    }
  });
  return { key, trades, rows: rows.length, bad, last };
}

/**
 * The name Kraken REST takes for a v2 pair. v2 symbols (`BTC/USD`) are not REST names: REST wants
 * the pair without the slash and still calls bitcoin XBT and dogecoin XDG (`XBTUSD`, `XDGUSD`; see
 * "API symbols and tickers", https://support.kraken.com/hc/en-us/articles/360000920306). Other assets
 * keep their ticker (`ETH/USDT` → `ETHUSDT`). The authoritative map is `GET /0/public/AssetPairs`
 * (`wsname` ↔ `altname`); this covers the assets whose names differ.
 */
export function restPairName(pair: string): string {
  const [base, quote] = pair.split("/");
  if (!base || !quote) throw new BadFrameError("pair", `expected BASE/QUOTE (got ${preview(pair)})`);
  return (REST_ASSET[base] ?? base) + (REST_ASSET[quote] ?? quote);
}
const REST_ASSET: Record<string, string> = { BTC: "XBT", DOGE: "XDG" };
