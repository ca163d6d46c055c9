// Benchmark input: the recorded trades of data/trades, made K times longer. The 34k recorded trades
// last about 11 minutes per pair, too short for a steady-state rate; so each file is played K times
// back to back, copy k shifted in time by k × (the file's span + 1 minute) and in trade id by
// k × (id range + 1), so per pair timestamps and ids keep increasing (the replay server and the
// Kraken client insist on that) and every Nats-Msg-Id stays unique (no dedup hits flatter the rate).
// The minute of silence between copies yields flat candles, as a real quiet minute would.
import { readdirSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { loadTradeFiles, type KrakenTradeRecord } from "../actors/trades/kraken-replay-server.js";
import { parseTradeRecord, rfc3339ToNs } from "../actors/trades/kraken-messages.js";
import type { Trade } from "../protocol/messages.js";
import { timeframeMs } from "../protocol/timeframes.js";

export const DATA_DIR = fileURLToPath(new URL("../data/trades/", import.meta.url));

export function recordedFiles(): string[] {
  return readdirSync(DATA_DIR).filter((f) => /\.jsonl(\.gz)?$/.test(f)).sort().map((f) => join(DATA_DIR, f));
}

const GAP_NS = 60_000_000_000n;

/** ns since the epoch → RFC 3339 with microseconds, the form Kraken (and the recorded files) use. */
function nsToRfc3339(ns: bigint): string {
  const ms = ns / 1_000_000n;
  const micros = (ns % 1_000_000_000n) / 1_000n;
  return `${new Date(Number(ms)).toISOString().slice(0, 19)}.${micros.toString().padStart(6, "0")}Z`;
}

export type ReplayInput = {
  records: KrakenTradeRecord[];
  copies: number;
  recordedTrades: number;
  perPair: Record<string, number>;
  /** Event-time span per pair of the whole (copied) input, in ms. */
  spanMs: Record<string, number>;
};

/** Copies per file so the total lands near `target` trades. */
export function copiesFor(target: number, recorded: number): number {
  return Math.max(1, Math.round(target / recorded));
}

export function buildReplayInput(opts: { targetTrades?: number; copies?: number; files?: string[] } = {}): ReplayInput {
  const files = opts.files ?? recordedFiles();
  if (files.length === 0) throw new Error(`no recorded trades in ${DATA_DIR}`);
  const byFile = files.map((f) => loadTradeFiles([f]));
  const recorded = byFile.reduce((n, r) => n + r.length, 0);
  const copies = opts.copies ?? copiesFor(opts.targetTrades ?? 200_000, recorded);
  const records: KrakenTradeRecord[] = [];
  const perPair: Record<string, number> = {};
  const spanMs: Record<string, number> = {};
  for (const recs of byFile) {
    // One file holds one pair in time order; its span and id range define the shift of each copy.
    const ns = recs.map((r) => rfc3339ToNs(r.timestamp)!);
    let lo = ns[0];
    let hi = ns[0];
    for (const x of ns) {
      if (x < lo) lo = x;
      if (x > hi) hi = x;
    }
    const ids = recs.map((r) => r.trade_id);
    const idLo = Math.min(...ids);
    const idHi = Math.max(...ids);
    const shiftNs = hi - lo + GAP_NS;
    const shiftId = idHi - idLo + 1;
    for (let k = 0; k < copies; k++) {
      for (let i = 0; i < recs.length; i++) {
        const r = recs[i];
        records.push({ ...r, trade_id: r.trade_id + k * shiftId, timestamp: nsToRfc3339(ns[i] + BigInt(k) * shiftNs) });
      }
    }
    const pair = recs[0].symbol;
    perPair[pair] = (perPair[pair] ?? 0) + recs.length * copies;
    spanMs[pair] = Number((hi - lo + BigInt(copies - 1) * shiftNs) / 1_000_000n);
  }
  return { records, copies, recordedTrades: recorded, perPair, spanMs };
}

/** The same records as the trades stage publishes them (what the raw-publish reference sends). */
export function asTrades(records: KrakenTradeRecord[]): Trade[] {
  return records.map((r, i) => parseTradeRecord(r, `bench input #${i}`));
}

/**
 * Candles the pipeline must produce from `records`: per pair and timeframe, every window from the
 * first trade's to the last trade's (quiet ones as flat candles; the end-of-stream watermark closes
 * the last). A pipeline run that stops short of this has not processed everything.
 */
export function expectedCandles(records: KrakenTradeRecord[], timeframes: string[]): number {
  const span = new Map<string, { lo: number; hi: number }>();
  for (const r of records) {
    const ts = Number(rfc3339ToNs(r.timestamp)! / 1_000_000n);
    const s = span.get(r.symbol);
    if (!s) span.set(r.symbol, { lo: ts, hi: ts });
    else {
      if (ts < s.lo) s.lo = ts;
      if (ts > s.hi) s.hi = ts;
    }
  }
  let n = 0;
  for (const { lo, hi } of span.values()) {
    for (const tf of timeframes) {
      const ms = timeframeMs(tf);
      n += Math.floor(hi / ms) - Math.floor(lo / ms) + 1;
    }
  }
  return n;
}
