// Recorded trades for the replay server, streamed: per-file line readers (gzip or plain JSONL, each
// file sorted by time) merged k ways into one time-ordered stream, so a replay's memory does not grow
// with its files' length. A first pass (`scanTrades`) learns what must be known up front (pairs,
// counts, last trade id per pair, first time) and validates every line; later passes re-read the
// files (the replay itself, and REST requests for ranges older than what is kept in memory).
import { createReadStream, openSync, readSync, closeSync } from "node:fs";
import { createGunzip } from "node:zlib";
import { parseTradeRecord, rfc3339ToNs } from "./kraken-messages.js";

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

/** A trade ready to send: its position in the replay, its REST cursor key, and both wire forms. */
export type ReplayTrade = {
  /** Position in the merged, time-ordered stream (0-based). */
  readonly seq: number;
  readonly pair: string;
  readonly id: number;
  readonly tsMs: number;
  /** Unique per pair, increasing: the REST cursor space (nanoseconds plus a tie-breaking count). */
  readonly key: bigint;
  /** Serialised v2 record. */
  readonly wire: string;
  /** The REST row, built when asked (most trades are never asked for over REST). */
  rest(): string;
};

export type Parsed = { rec: KrakenTradeRecord; ns: bigint };

/** Where trades come from: a fresh time-ordered pass on every call. */
export type TradeSource = {
  /** Batches of trades in time order. */
  open(): AsyncGenerator<ReplayTrade[], void, undefined>;
  /** The same order, records only (no wire forms): the cheap first pass. */
  records(): AsyncGenerator<Parsed[], void, undefined>;
  /** Up to `count` trades of `pair` with seq below `limitSeq`: after key `since`, or (since null) the most recent. */
  page(pair: string, since: bigint | null, count: number, limitSeq: number): Promise<ReplayTrade[]>;
  describe: string;
};

export type ScanResult = {
  total: number;
  firstTsMs: number;
  /** Per pair, in order of first appearance: trade count and last trade id. */
  pairs: Map<string, { count: number; lastId: number }>;
};

function isGzip(file: string): boolean {
  const fd = openSync(file, "r");
  try {
    const b = Buffer.alloc(2);
    return readSync(fd, b, 0, 2, 0) === 2 && b[0] === 0x1f && b[1] === 0x8b;
  } finally {
    closeSync(fd);
  }
}

function parseLine(line: string, where: string): Parsed {
  let raw: unknown;
  try {
    raw = JSON.parse(line);
  } catch (err) {
    throw new Error(`${where}: not JSON (${(err as Error).message})`);
  }
  const t = parseTradeRecord(raw, where);
  const timestamp = (raw as KrakenTradeRecord).timestamp;
  const ns = rfc3339ToNs(timestamp);
  if (ns === null) throw new Error(`${where}: bad timestamp ${JSON.stringify(timestamp)}`);
  return { rec: { symbol: t.pair, side: t.side, price: t.price, qty: t.qty, ord_type: t.ord_type, trade_id: t.trade_id, timestamp }, ns };
}

/**
 * One file's trades in file order, in batches (one per chunk read: per-item async iteration would
 * cost more than the parsing). A line earlier in time than the one before it is an error: the merge
 * needs sorted files.
 */
async function* fileBatches(file: string): AsyncGenerator<Parsed[], void, undefined> {
  const stream = createReadStream(file, { highWaterMark: 1 << 16 });
  const input = isGzip(file) ? stream.pipe(createGunzip({ chunkSize: 1 << 16 })) : stream;
  let lineNo = 0;
  let prev: bigint | null = null;
  let rest = "";
  const take = (line: string, out: Parsed[]) => {
    lineNo++;
    if (line.trim() === "") return;
    const p = parseLine(line, `${file}:${lineNo}`);
    if (prev !== null && p.ns < prev) {
      throw new Error(`${file}:${lineNo}: timestamp ${p.rec.timestamp} is earlier than the line before it; a replay file must be sorted by time`);
    }
    prev = p.ns;
    out.push(p);
  };
  try {
    for await (const chunk of input as AsyncIterable<Buffer>) {
      const text = rest + chunk.toString("utf8");
      const lines = text.split("\n");
      rest = lines.pop()!;
      const out: Parsed[] = [];
      for (const line of lines) take(line, out);
      if (out.length) yield out;
    }
    const out: Parsed[] = [];
    if (rest) take(rest, out);
    if (out.length) yield out;
  } finally {
    stream.destroy();
    if (input !== stream) input.destroy();
  }
}

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

function toReplayTrade(r: KrakenTradeRecord, ns: bigint, seq: number, key: bigint): ReplayTrade {
  return new RecordedTrade(seq, r.symbol, r.trade_id, Number(ns / 1_000_000n), key, JSON.stringify(r), r, ns);
}

/**
 * A ReplayTrade with its REST row as a method rather than a closure per trade: under tsx every
 * closure made per trade is also named with Object.defineProperty, which was 2 % of the pipeline
 * bench's busy time (a replay server serves every trade once).
 */
class RecordedTrade implements ReplayTrade {
  constructor(
    readonly seq: number,
    readonly pair: string,
    readonly id: number,
    readonly tsMs: number,
    readonly key: bigint,
    readonly wire: string,
    private readonly r: KrakenTradeRecord,
    private readonly ns: bigint,
  ) {}

  rest(): string {
    const r = this.r;
    return `[${JSON.stringify(decimal(r.price, 5))},${JSON.stringify(decimal(r.qty, 8))},${restTime(this.ns)},"${r.side[0]}","${r.ord_type[0]}","",${r.trade_id}]`;
  }
}

/** One pass over the records for one pair's page: only that pair's trades are turned into ReplayTrades. */
async function pageOf(merged: AsyncGenerator<Parsed[], void, undefined>, pair: string, since: bigint | null, count: number, limitSeq: number): Promise<ReplayTrade[]> {
  const out: ReplayTrade[] = [];
  let seq = 0;
  let prevKey: bigint | null = null;
  try {
    outer: for await (const batch of merged) {
      for (const { rec, ns } of batch) {
        if (seq >= limitSeq) break outer;
        const s = seq++;
        if (rec.symbol !== pair) continue;
        const key: bigint = prevKey !== null && ns <= prevKey ? prevKey + 1n : ns;
        prevKey = key;
        if (since === null) {
          out.push(toReplayTrade(rec, ns, s, key));
          if (out.length > count) out.shift();
        } else if (key > since) {
          out.push(toReplayTrade(rec, ns, s, key));
          if (out.length >= count) break outer;
        }
      }
    }
  } finally {
    await merged.return(undefined);
  }
  return out;
}

/** Turns a time-ordered stream of records into ReplayTrades (keys, wire forms, per-pair id check), in batches. */
async function* prepare(merged: AsyncGenerator<Parsed[], void, undefined>): AsyncGenerator<ReplayTrade[], void, undefined> {
  const last = new Map<string, { id: number; key: bigint }>();
  let seq = 0;
  try {
    for await (const batch of merged) {
      const out: ReplayTrade[] = [];
      for (const { rec: r, ns } of batch) {
        const prev = last.get(r.symbol);
        if (prev && r.trade_id <= prev.id) {
          // The client drops any trade whose id is not above the last one: such data cannot be replayed faithfully.
          throw new Error(`${r.symbol}: trade_id ${r.trade_id} at ${r.timestamp} is not above ${prev.id}, the trade before it in time`);
        }
        const key: bigint = prev && ns <= prev.key ? prev.key + 1n : ns;
        if (prev) {
          prev.id = r.trade_id;
          prev.key = key;
        } else last.set(r.symbol, { id: r.trade_id, key });
        out.push(toReplayTrade(r, ns, seq++, key));
      }
      yield out;
    }
  } finally {
    await merged.return(undefined);
  }
}

/** A batched reader with a cursor: the merge takes one record at a time without an await per record. */
class Cursor {
  private batch: Parsed[] = [];
  private i = 0;
  done = false;
  constructor(private readonly it: AsyncGenerator<Parsed[], void, undefined>) {}
  /** The current record, loading the next batch if needed; null at the end. */
  async head(): Promise<Parsed | null> {
    while (this.i >= this.batch.length) {
      if (this.done) return null;
      const r = await this.it.next();
      if (r.done) {
        this.done = true;
        return null;
      }
      this.batch = r.value;
      this.i = 0;
    }
    return this.batch[this.i];
  }
  /** The current record if it is loaded (no await). */
  peek(): Parsed | null {
    return this.i < this.batch.length ? this.batch[this.i] : null;
  }
  advance(): void {
    this.i++;
  }
  close(): Promise<unknown> {
    return this.it.return(undefined);
  }
}

const OUT_BATCH = 1024;

/** k-way merge by time, in batches; equal times keep file order (then line order). */
async function* mergeBatches(sources: AsyncGenerator<Parsed[], void, undefined>[]): AsyncGenerator<Parsed[], void, undefined> {
  const cs = sources.map((it) => new Cursor(it));
  try {
    for (;;) {
      const out: Parsed[] = [];
      while (out.length < OUT_BATCH) {
        let best = -1;
        let bestNs = 0n;
        for (let i = 0; i < cs.length; i++) {
          const h = cs[i].peek() ?? (await cs[i].head());
          if (h && (best < 0 || h.ns < bestNs)) {
            best = i;
            bestNs = h.ns;
          }
        }
        if (best < 0) break;
        out.push(cs[best].peek()!);
        cs[best].advance();
      }
      if (out.length === 0) return;
      yield out;
    }
  } finally {
    for (const c of cs) await c.close();
  }
}

export function fileSource(files: string[]): TradeSource {
  return {
    open: () => prepare(mergeBatches(files.map(fileBatches))),
    records: () => mergeBatches(files.map(fileBatches)),
    page: (pair, since, count, limitSeq) => pageOf(mergeBatches(files.map(fileBatches)), pair, since, count, limitSeq),
    describe: files.join(", "),
  };
}

/** Trades given in memory (tests, benchmarks): sorted by time once, stable. */
export function memorySource(records: KrakenTradeRecord[]): TradeSource {
  const rows = records.map((r, i) => {
    const ns = rfc3339ToNs(r.timestamp);
    if (ns === null) throw new Error(`trade ${r.symbol} ${r.trade_id}: bad timestamp ${JSON.stringify(r.timestamp)}`);
    return { r, i, ns };
  });
  rows.sort((a, b) => (a.ns < b.ns ? -1 : a.ns > b.ns ? 1 : a.i - b.i));
  async function* gen(): AsyncGenerator<Parsed[], void, undefined> {
    for (let i = 0; i < rows.length; i += OUT_BATCH) yield rows.slice(i, i + OUT_BATCH).map(({ r, ns }) => ({ rec: r, ns }));
  }
  // In memory anyway: REST pages from per-pair arrays, built on first use.
  let byPair: Map<string, ReplayTrade[]> | null = null;
  const pairArrays = async () => {
    if (byPair) return byPair;
    const m = new Map<string, ReplayTrade[]>();
    for await (const batch of prepare(gen())) {
      for (const t of batch) {
        const l = m.get(t.pair);
        if (l) l.push(t);
        else m.set(t.pair, [t]);
      }
    }
    return (byPair = m);
  };
  return {
    open: () => prepare(gen()),
    records: gen,
    page: async (pair, since, count, limitSeq) => {
      const list = (await pairArrays()).get(pair) ?? [];
      let end = 0;
      let top = list.length;
      while (end < top) {
        const mid = (end + top) >> 1;
        if (list[mid].seq < limitSeq) end = mid + 1;
        else top = mid;
      }
      if (since === null) return list.slice(Math.max(0, end - count), end);
      let lo = 0;
      let hi = end;
      while (lo < hi) {
        const mid = (lo + hi) >> 1;
        if (list[mid].key <= since) lo = mid + 1;
        else hi = mid;
      }
      return list.slice(lo, Math.min(end, lo + count));
    },
    describe: `${records.length} trades in memory`,
  };
}

/** The first pass: validates everything and learns pairs, counts and last ids. */
export async function scanTrades(src: TradeSource): Promise<ScanResult> {
  const pairs = new Map<string, { count: number; lastId: number }>();
  let total = 0;
  let firstTsMs = 0;
  for await (const batch of src.records()) {
    for (const { rec, ns } of batch) {
      if (total === 0) firstTsMs = Number(ns / 1_000_000n);
      total++;
      const p = pairs.get(rec.symbol);
      if (!p) pairs.set(rec.symbol, { count: 1, lastId: rec.trade_id });
      else if (rec.trade_id <= p.lastId) {
        // The client drops any trade whose id is not above the last one: such data cannot be replayed faithfully.
        throw new Error(`${rec.symbol}: trade_id ${rec.trade_id} at ${rec.timestamp} is not above ${p.lastId}, the trade before it in time`);
      } else {
        p.count++;
        p.lastId = rec.trade_id;
      }
    }
  }
  return { total, firstTsMs, pairs };
}

/** Reads gzip or plain JSONL trade files into memory, validating each line (small files: tests, benchmarks). */
export async function loadTradeFilesAsync(files: string[]): Promise<KrakenTradeRecord[]> {
  const out: KrakenTradeRecord[] = [];
  for (const f of files) for await (const batch of fileBatches(f)) for (const p of batch) out.push(p.rec);
  return out;
}

