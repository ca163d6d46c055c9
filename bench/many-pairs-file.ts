// Writes a many-pair trade file (gzip JSONL, sorted by time) from the recorded BTC/USDT trades in
// data/trades, streaming (the file may hold millions of trades): the recording is played back to back
// as often as needed, copy k shifted by k × (its span + 1 minute); its trades are dealt round-robin to
// `pairs` pairs `C001/USD`, `C002/USD`…, so each pair gets a share of the real trades, its prices scaled
// (pair p: × (1 + p / 100)) and its own consecutive trade ids 1, 2, 3… as Kraken numbers them.
// `stretch` k spreads the same trades over k times the time (every offset from the first trade × k):
// a market k times quieter, which makes k times more candles per pair (bench/system.ts).
//
//   npx tsx bench/many-pairs-file.ts --pairs 300 --trades 5000000 --out /tmp/c300-5m.jsonl.gz
//   npx tsx bench/many-pairs-file.ts --pairs 300 --trades 39808 --stretch 4 --out /tmp/c300-quiet.jsonl.gz
import { createWriteStream } from "node:fs";
import { once } from "node:events";
import { parseArgs } from "node:util";
import { createGzip } from "node:zlib";
import { fileURLToPath } from "node:url";
import { loadTradeFiles } from "../actors/trades/kraken-replay-server.js";
import { rfc3339ToNs } from "../actors/trades/kraken-messages.js";

export const BTC_FILE = fileURLToPath(new URL("../data/trades/binance-spot-BTC-USDT-2024-08-08.jsonl.gz", import.meta.url));

export function pairName(p: number): string {
  return `C${String(p + 1).padStart(3, "0")}/USD`;
}

function nsToRfc3339(ns: bigint): string {
  const ms = ns / 1_000_000n;
  const micros = (ns % 1_000_000_000n) / 1_000n;
  return `${new Date(Number(ms)).toISOString().slice(0, 19)}.${micros.toString().padStart(6, "0")}Z`;
}

/** Writes the file; resolves with the trade count per pair. */
export async function writeManyPairFile(opts: { pairs: number; trades: number; out: string; source?: string; stretch?: number }): Promise<{ perPair: number[] }> {
  if (opts.pairs < 1 || opts.pairs > 999) throw new Error(`--pairs must be 1..999 (got ${opts.pairs})`);
  if (!Number.isInteger(opts.stretch ?? 1) || (opts.stretch ?? 1) < 1) throw new Error(`stretch must be a whole number ≥ 1 (got ${opts.stretch})`);
  const stretch = BigInt(opts.stretch ?? 1);
  const recs = loadTradeFiles([opts.source ?? BTC_FILE]);
  const ns = recs.map((r) => rfc3339ToNs(r.timestamp)!);
  const span = ns[ns.length - 1] - ns[0] + 60_000_000_000n;
  const gz = createGzip({ level: 1 });
  const file = createWriteStream(opts.out);
  gz.pipe(file);
  const ids = new Array<number>(opts.pairs).fill(0);
  let buf = "";
  for (let n = 0; n < opts.trades; n++) {
    const j = n % recs.length;
    const k = BigInt(Math.floor(n / recs.length));
    const p = n % opts.pairs;
    const r = recs[j];
    const price = Number((r.price * (1 + p / 100)).toPrecision(10));
    buf += `${JSON.stringify({ symbol: pairName(p), side: r.side, price, qty: r.qty, ord_type: r.ord_type, trade_id: ++ids[p], timestamp: nsToRfc3339(ns[0] + (ns[j] - ns[0] + k * span) * stretch) })}\n`;
    if (buf.length > 1 << 16) {
      if (!gz.write(buf)) await once(gz, "drain");
      buf = "";
    }
  }
  gz.end(buf);
  await once(file, "close");
  return { perPair: ids };
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const { values } = parseArgs({ options: { pairs: { type: "string" }, trades: { type: "string" }, out: { type: "string" }, stretch: { type: "string" } } });
  if (!values.out) throw new Error("usage: many-pairs-file.ts --pairs N --trades M [--stretch K] --out FILE.jsonl.gz");
  const t0 = Date.now();
  const r = await writeManyPairFile({ pairs: Number(values.pairs ?? 100), trades: Number(values.trades ?? 100_000), out: values.out, stretch: Number(values.stretch ?? 1) });
  process.stderr.write(`${values.out}: ${r.perPair.reduce((a, b) => a + b, 0)} trades, ${r.perPair.length} pairs, ${Date.now() - t0} ms\n`);
}
