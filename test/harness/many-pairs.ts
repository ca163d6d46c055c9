// Many pairs from the recorded trades, as a user at Kraken's scale would see them: the BTC/USDT
// file dealt round-robin over N pairs `C001/USD`…, each with its own consecutive trade ids 1, 2, 3…
// (as Kraken numbers them) and prices scaled per pair, timestamps kept, so every pair's trades are
// real trades in real time order and the feed interleaves them as an exchange would.
import assert from "node:assert/strict";
import type { JetStreamClient } from "@nats-io/jetstream";
import { close, oracleCandles, type RawTrade } from "./data.js";
import { readAll } from "./nats.js";

export function pairName(i: number): string {
  return `C${String(i + 1).padStart(3, "0")}/USD`;
}

/** Records of `raw` dealt over `n` pairs; `limit` caps the total. Result is in time order across pairs. */
export function dealOverPairs(raw: RawTrade[], n: number, limit = raw.length): RawTrade[] {
  const ids = new Array<number>(n).fill(0);
  const out: RawTrade[] = [];
  for (let j = 0; j < Math.min(limit, raw.length); j++) {
    const i = j % n;
    out.push({ ...raw[j], symbol: pairName(i), trade_id: ++ids[i], price: Math.round(raw[j].price * (1 + i / 1000) * 100) / 100 });
  }
  return out;
}

/** Records grouped by pair, order kept. */
export function byPair(records: RawTrade[]): Map<string, RawTrade[]> {
  const m = new Map<string, RawTrade[]>();
  for (const r of records) {
    let l = m.get(r.symbol);
    if (!l) m.set(r.symbol, (l = []));
    l.push(r);
  }
  return m;
}

/** Asserts that every pair's 1m candles in CANDLES equal an independent group-by of its trades. */
export async function assertOracleCandles(js: JetStreamClient, pairs: Map<string, RawTrade[]>): Promise<void> {
  for (const [pair, list] of pairs) {
    const got = (await readAll(js, "CANDLES", `md.candles.1m.${pair.replace("/", "-")}`)).map((m) => m.data);
    const want = oracleCandles(list, 60_000);
    assert.equal(got.length, want.length, `${pair} 1m candle count`);
    got.forEach((c, i) => {
      assert.deepEqual([c.window_start_ms, c.open, c.close, c.trades], [want[i].window_start_ms, want[i].open, want[i].close, want[i].trades], `${pair} #${i}`);
      assert.ok(close(c.volume, want[i].volume), `${pair} #${i} volume`);
    });
  }
}
