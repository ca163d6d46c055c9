// The many-pair trade files the scale benches replay (bench/many-pairs-file.ts): each pair gets its
// share of the recorded trades with its own consecutive ids, and `stretch` spreads the same trades
// over k times the time without touching anything else (the whole-system bench's quieter market).
import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { gunzipSync } from "node:zlib";
import { writeManyPairFile } from "../../bench/many-pairs-file.js";
import { BTC_FILE, readTrades } from "../harness/data.js";

type Rec = { symbol: string; price: number; qty: number; trade_id: number; timestamp: string };
const read = (f: string): Rec[] => gunzipSync(readFileSync(f)).toString("utf8").trim().split("\n").map((l) => JSON.parse(l));
/** Microseconds since the epoch of an RFC 3339 time with microseconds (Date keeps only milliseconds). */
const micros = (ts: string) => Date.parse(ts.slice(0, 19) + "Z") * 1000 + Number(ts.slice(20, 26));

test("many-pair file: trades dealt over the pairs with consecutive ids; stretched, the same trades at k times the offsets", async () => {
  const dir = mkdtempSync(join(tmpdir(), "tf-many-file-"));
  try {
    const recorded = readTrades(BTC_FILE).length;
    const trades = recorded + 500; // past one copy of the recording: the second copy follows the first
    await writeManyPairFile({ pairs: 7, trades, out: join(dir, "a.jsonl.gz") });
    await writeManyPairFile({ pairs: 7, trades, out: join(dir, "b.jsonl.gz"), stretch: 4 });
    const a = read(join(dir, "a.jsonl.gz"));
    const b = read(join(dir, "b.jsonl.gz"));
    assert.equal(a.length, trades);
    assert.equal(b.length, trades);
    const ids = new Map<string, number>();
    for (const r of a) {
      assert.equal(r.trade_id, (ids.get(r.symbol) ?? 0) + 1, `${r.symbol}: ids consecutive`);
      ids.set(r.symbol, r.trade_id);
    }
    assert.equal(ids.size, 7);
    const t0 = micros(a[0].timestamp);
    assert.equal(micros(b[0].timestamp), t0);
    for (let i = 0; i < trades; i++) {
      assert.deepEqual({ ...b[i], timestamp: "" }, { ...a[i], timestamp: "" }, `trade ${i}: only its time differs`);
      assert.equal(micros(b[i].timestamp) - t0, (micros(a[i].timestamp) - t0) * 4, `trade ${i}: offset × 4`);
    }
    await assert.rejects(writeManyPairFile({ pairs: 7, trades: 10, out: join(dir, "c.jsonl.gz"), stretch: 1.5 }), /stretch must be a whole number/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
