// Recorded data for tests (data/ in the repo, so tests run without ../shared), and an independent
// candle computation to compare the pipeline with: a group-by over the whole file, written
// without any of the streaming code it checks.
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { gunzipSync } from "node:zlib";

export const ROOT = fileURLToPath(new URL("../..", import.meta.url));
export const BTC_FILE = join(ROOT, "data/trades/binance-spot-BTC-USDT-2024-08-08.jsonl.gz");
export const ETH_FILE = join(ROOT, "data/trades/binance-spot-ETH-USDT-2024-08-08.jsonl.gz");
export const CANDLE_FILE = join(ROOT, "data/candles/binance-BTC-USDT-1m-2023-03-16-slice.csv.gz");

export type RawTrade = { symbol: string; side: "buy" | "sell"; price: number; qty: number; ord_type: "market" | "limit"; trade_id: number; timestamp: string };

export function readTrades(file: string): RawTrade[] {
  return gunzipSync(readFileSync(file)).toString("utf8").split("\n").filter(Boolean).map((l) => JSON.parse(l));
}

export function toTrade(r: RawTrade) {
  return { v: 1 as const, pair: r.symbol, trade_id: r.trade_id, price: r.price, qty: r.qty, side: r.side as "buy" | "sell", ord_type: r.ord_type as "market" | "limit", ts_ms: Math.floor(Date.parse(r.timestamp)) };
}

export type OracleCandle = { window_start_ms: number; open: number; high: number; low: number; close: number; volume: number; vwap: number; trades: number; flat: boolean };

/** Candles of `tfMs` from a whole file: every window from the first trade's to the last trade's, empty ones flat at the previous close. */
export function oracleCandles(trades: RawTrade[], tfMs: number): OracleCandle[] {
  const groups = new Map<number, RawTrade[]>();
  for (const t of trades) {
    const w = Math.floor(Math.floor(Date.parse(t.timestamp)) / tfMs) * tfMs;
    if (!groups.has(w)) groups.set(w, []);
    groups.get(w)!.push(t);
  }
  const starts = [...groups.keys()].sort((a, b) => a - b);
  const out: OracleCandle[] = [];
  let prevClose = NaN;
  for (let w = starts[0]; w <= starts[starts.length - 1]; w += tfMs) {
    const g = groups.get(w);
    if (!g) {
      out.push({ window_start_ms: w, open: prevClose, high: prevClose, low: prevClose, close: prevClose, volume: 0, vwap: prevClose, trades: 0, flat: true });
      continue;
    }
    const prices = g.map((t) => t.price);
    const volume = g.reduce((s, t) => s + t.qty, 0);
    const notional = g.reduce((s, t) => s + t.price * t.qty, 0);
    out.push({
      window_start_ms: w, open: g[0].price, high: Math.max(...prices), low: Math.min(...prices), close: g[g.length - 1].price,
      volume, vwap: notional / volume, trades: g.length, flat: false,
    });
    prevClose = g[g.length - 1].price;
  }
  return out;
}

/** Equal within float noise of a different summation order. */
export function close(a: number, b: number, rel = 1e-9): boolean {
  return Math.abs(a - b) <= rel * Math.max(1, Math.abs(a), Math.abs(b));
}

export function readCandlesCsv(file: string) {
  const lines = gunzipSync(readFileSync(file)).toString("utf8").trim().split("\n").slice(1);
  return lines.map((l) => {
    const [t, open, high, low, close, volume] = l.split(",").map(Number);
    return { t, open, high, low, close, volume };
  });
}
