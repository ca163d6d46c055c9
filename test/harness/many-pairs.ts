// Many pairs from the recorded trades, as a user at Kraken's scale would see them: the BTC/USDT
// file dealt round-robin over N pairs `C001/USD`…, each with its own consecutive trade ids 1, 2, 3…
// (as Kraken numbers them) and prices scaled per pair, timestamps kept, so every pair's trades are
// real trades in real time order and the feed interleaves them as an exchange would.
import type { RawTrade } from "./data.js";

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
