// Catch-up cost: the production KrakenTradeFeed against the local Kraken-protocol server with 300
// subscribed pairs. Kraken answers a subscription with a snapshot of recent trades and numbers trades
// consecutively per pair, so after a reconnect only pairs whose snapshot does not reach back to their
// last trade may cost a REST request (one per second, Kraken's limit). Before, every pair with a known
// last trade ran a REST backfill: a reconnect with 300 pairs cost 300+ seconds.
import { test } from "node:test";
import assert from "node:assert/strict";
import { KrakenTradeFeed, startKrakenReplayServer, type KrakenTradeRecord, type TradeSubscriber } from "../../actors/trades/mod.js";
import type { Trade } from "../../protocol/messages.js";

const PAIRS = Array.from({ length: 300 }, (_, i) => `C${String(i + 1).padStart(3, "0")}/USD`);
/** Pairs that trade more during the outage than a snapshot (50) holds. */
const BUSY = new Set(PAIRS.slice(0, 3));
const T0 = Date.parse("2024-08-08T00:00:00Z");
const T1 = T0 + 60_000; // the outage starts after this
const T2 = T0 + 120_000; // and ends here

/** Synthetic trades, ids 1, 2, 3… per pair: a few before the outage, some during (many for BUSY pairs, none for some), a few after. */
function trades(): KrakenTradeRecord[] {
  const out: KrakenTradeRecord[] = [];
  PAIRS.forEach((pair, p) => {
    let id = 0;
    const add = (t: number) => out.push({ symbol: pair, side: id % 2 ? "buy" : "sell", price: 100 + p + id / 100, qty: 1, ord_type: "market", trade_id: ++id, timestamp: new Date(t).toISOString() });
    for (let k = 0; k < 3; k++) add(T0 + 1000 + p * 10 + k * 10_000);
    const during = BUSY.has(pair) ? 120 : p % 5;
    for (let k = 0; k < during; k++) add(T1 + 1000 + p * 10 + k * 400);
    for (let k = 0; k < 2; k++) add(T2 + 1000 + p * 10 + k * 10_000);
  });
  return out;
}

class Recorder {
  readonly trades: Trade[] = [];
  readonly violations: string[] = [];
  readonly sub: TradeSubscriber = {
    lastSeen: () => {
      const t = this.trades.at(-1);
      return t ? { trade_id: t.trade_id, ts_ms: t.ts_ms } : null;
    },
    onTrades: async (batch) => {
      for (const t of batch) {
        const prev = this.trades.at(-1);
        if (prev && t.trade_id !== prev.trade_id + 1) this.violations.push(`${t.pair}: trade ${t.trade_id} after ${prev.trade_id}`);
        this.trades.push(t);
      }
    },
    onBadFrame: (reason) => {
      this.violations.push(reason);
    },
  };
}

async function check(fn: () => boolean, ms: number, what: () => string): Promise<void> {
  const end = Date.now() + ms;
  while (!fn()) {
    if (Date.now() > end) throw new Error(`timed out after ${ms} ms waiting for: ${what()}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

test("kraken reconnect - 300 pairs, a short gap: caught up in seconds, REST only for the pairs whose snapshot does not reach back; one pair re-subscribing alone costs nobody a catch-up", { timeout: 120_000 }, async () => {
  const records = trades();
  const expected = new Map<string, number[]>();
  for (const r of records) expected.set(r.symbol, [...(expected.get(r.symbol) ?? []), r.trade_id]);
  const upTo = (pair: string, t: number) => records.filter((r) => r.symbol === pair && Date.parse(r.timestamp) <= t).length;

  const srv = await startKrakenReplayServer({ trades: records, speed: "max" });
  // Production REST pacing (1 request/s, shared): what makes a REST catch-up per pair expensive.
  const feed = new KrakenTradeFeed({ wsUrl: srv.wsUrl, restUrl: srv.restUrl, backoff: { initialMs: 50, maxMs: 200 } });
  const rec = new Map(PAIRS.map((p) => [p, new Recorder()]));
  const subs = new Map(PAIRS.map((p) => [p, feed.subscribe(p, rec.get(p)!.sub)]));
  try {
    srv.holdAt(T1);
    const caughtUpTo = (t: number) => () => PAIRS.every((p) => rec.get(p)!.trades.length >= upTo(p, t));
    const behind = (t: number) => () => PAIRS.filter((p) => rec.get(p)!.trades.length < upTo(p, t)).slice(0, 5).join(", ");
    await check(caughtUpTo(T1), 60_000, behind(T1));
    assert.equal(srv.stats().restRequests, 0, "first subscriptions need no history");

    // The outage: the exchange trades on while the feed cannot connect.
    const connects = feed.stats().connects;
    srv.refuseConnections(true);
    srv.dropConnections();
    await srv.releaseUntil(T2);
    srv.holdAt(T2);
    srv.refuseConnections(false);
    const t0 = Date.now();
    await check(() => feed.stats().connects > connects, 30_000, () => "reconnect");
    // 300 REST catch-ups at 1/s would take five minutes; three take about three seconds.
    await check(caughtUpTo(T2), 30_000, behind(T2));
    const catchUpMs = Date.now() - t0;
    const rest = srv.stats().restRequestsByPair;
    assert.deepEqual(Object.keys(rest).sort(), [...BUSY].sort(), `REST only for the pairs the snapshot does not cover (took ${catchUpMs} ms)`);
    assert.ok(Object.values(rest).every((n) => n === 1), `one page each: REST stops where the snapshot starts (${JSON.stringify(rest)})`);
    assert.ok(feed.stats().snapshotCatchUps >= PAIRS.length - BUSY.size, `snapshot catch-ups ${feed.stats().snapshotCatchUps}`);

    // One actor restarts: its pair re-subscribes alone, from its own last trade. Nobody else catches up.
    const lone = PAIRS[150];
    const restBefore = srv.stats().restRequests;
    const catchUpsBefore = feed.stats().snapshotCatchUps;
    await subs.get(lone)!.unsubscribe();
    subs.set(lone, feed.subscribe(lone, rec.get(lone)!.sub));
    await check(() => feed.stats().snapshotCatchUps === catchUpsBefore + 1, 10_000, () => "the lone pair's catch-up");
    assert.equal(srv.stats().restRequests, restBefore, "no REST for a re-subscription the snapshot covers");

    srv.holdAt(null);
    await srv.done;
    await check(() => PAIRS.every((p) => rec.get(p)!.trades.length >= expected.get(p)!.length), 30_000, () => "every trade");
    for (const p of PAIRS) {
      assert.deepEqual(rec.get(p)!.violations, [], p);
      assert.deepEqual(rec.get(p)!.trades.map((t) => t.trade_id), expected.get(p), `${p}: every trade once, in order`);
    }
    assert.equal(feed.stats().gaps, 0);
    assert.equal(feed.stats().connects, connects + 1, "one reconnect");
  } finally {
    await feed.close();
    await srv.close();
  }
});
