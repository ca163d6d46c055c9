// Event time follows the data: the trades stage (production Kraken client against the local
// Kraken-protocol server) and the candles stage on a real nats-server. A feed that stalls, or that
// loses its socket and catches up over REST at Kraken's 1 request/s, must not make on-time trades
// late: every trade lands in its candle (equal to an independent group-by), the DLQ stays empty.
// Both scenarios failed before: the idle watermark advanced a quiet pair by the wall-clock time since
// its last trade, past trades that were still on their way.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { candlesActor } from "../../actors/candles/actor.js";
import { lastPublishedTrade, tradesActor } from "../../actors/trades/actor.js";
import { pairToToken } from "../../protocol/pairs.js";
import { subjects } from "../../protocol/subjects.js";
import { removePairs } from "../../supervisor/desired-pairs.js";
import type { Supervisor } from "../../supervisor/runtime.js";
import { startKrakenReplayServer, type KrakenReplayServer } from "../../actors/trades/kraken-replay-server.js";
import { BTC_FILE, close, ETH_FILE, oracleCandles, readTrades, type RawTrade } from "../harness/data.js";
import { check, cleanup, readAll, setup, type Env } from "../harness/nats.js";
import { addPair, startSupervisor, testConfig } from "../harness/pipeline.js";

const MINUTE = 60_000;
const raw = readTrades(BTC_FILE);
const ts = (r: RawTrade) => Math.floor(Date.parse(r.timestamp));

let env: Env;
before(async () => {
  env = await setup();
});
after(async () => {
  await cleanup(env);
});

/**
 * The first trade index at or after `from` whose trade lies `lo`..`hi` ms before a minute boundary,
 * with more trades between it and the boundary: a watermark that runs `hi` ms ahead of this trade
 * closes a window that still has trades to come.
 */
function beforeBoundary(from: number, lo: number, hi: number): number {
  for (let i = from; i < raw.length - 1; i++) {
    const t = ts(raw[i]);
    const b = Math.ceil((t + 1) / MINUTE) * MINUTE;
    if (b - t >= lo && b - t <= hi && ts(raw[i + 1]) < b && ts(raw[i + 1]) > t) return i;
  }
  throw new Error(`no trade ${lo}..${hi} ms before a minute boundary after index ${from}`);
}

// Grace 0 and a short idle period: any watermark ahead of the data shows up as a dead letter.
const config = () => testConfig({ TICKFLOW_IDLE_WATERMARK_MS: "300", TICKFLOW_GRACE_MS: "0", TICKFLOW_TIMEFRAMES: "1m" });

async function runToEnd(pair: string, replay: KrakenReplayServer, sup: Supervisor): Promise<void> {
  await replay.done;
  await check(async () => (await lastPublishedTrade(env.js, pair)).eos, 60_000, `${pair}: end of stream in TRADES`);
  const all = await readAll(env.js, "TRADES", subjects.trades(pair));
  const eos = all.at(-1)!.seq;
  await check(() => (sup.cell("candles", pair)?.status().lastSeq ?? 0) >= eos, 60_000, `${pair}: candles actor to apply the whole stream`);
  await sup.cell("candles", pair)!.checkpointIfRunning();
}

async function assertEveryTradeInItsCandle(pair: string): Promise<void> {
  const TOKEN = pairToToken(pair);
  const dlq = await readAll(env.js, "DLQ", `dlq.candles.${TOKEN}`);
  assert.deepEqual(dlq.map((d) => d.data.reason), [], "no trade dead-lettered by the candles stage");
  const got = await readAll(env.js, "CANDLES", `md.candles.1m.${TOKEN}`);
  const want = oracleCandles(raw, MINUTE);
  assert.equal(got.length, want.length, "candle count");
  got.forEach(({ data: c }, i) => {
    const w = want[i];
    assert.equal(c.window_start_ms, w.window_start_ms, `window ${i}`);
    assert.deepEqual([c.open, c.high, c.low, c.close, c.trades, c.flat], [w.open, w.high, w.low, w.close, w.trades, w.flat], `candle ${i} (${new Date(w.window_start_ms).toISOString()})`);
    assert.ok(close(c.volume, w.volume) && close(c.vwap, w.vwap), `candle ${i} volume/vwap`);
  });
}


test("trades event time - a feed that stalls longer than the idle watermark period, then delivers its backlog: every trade in its candle, none dead-lettered", async () => {
  // Stall 100..250 ms before a minute boundary: a wall-clock watermark (≥ 300 ms after the last
  // trade) would close that minute while its last trades are still held back by the stall.
  const PAIR = "BTC/USDT";
  const i = beforeBoundary(3000, 100, 250);
  const replay = await startKrakenReplayServer({ files: [BTC_FILE], speed: "max" });
  replay.holdAt(ts(raw[i]));
  const cfg = config();
  cfg.kraken.wsUrl = replay.wsUrl;
  cfg.kraken.restUrl = replay.restUrl;
  await addPair(env.js, PAIR);
  const sup = await startSupervisor(env, "w-stall", [tradesActor({ endOfInput: replay.lastTradeIds }), candlesActor], cfg);
  try {
    const upTo = raw.filter((r) => ts(r) <= ts(raw[i])).length;
    await check(() => (sup.cell("trades", PAIR)?.status().processed ?? 0) >= upTo, 120_000, `the ${upTo} trades before the stall`);
    // The stall itself (a scenario, not an assertion): several idle periods with the socket open and heartbeats flowing.
    await new Promise((r) => setTimeout(r, 2000));
    replay.holdAt(null);
    await runToEnd(PAIR, replay, sup);
    await assertEveryTradeInItsCandle(PAIR);
  } finally {
    await removePairs(env.js, [PAIR]);
    await sup.stop();
    await replay.close();
  }
});

test("trades event time - a disconnect caught up by REST backfill (1 request/s, 1000 trades a page): the backfilled trades land in their candles, none dead-lettered", async () => {
  // The outage starts after trade a; the first REST page ends at trade e, 100..250 ms before a minute
  // boundary, and the next page waits a second for the rate limit: a wall-clock watermark in that
  // second would close the minute before the second page delivers its last trades. The page asks
  // `since` a's millisecond, so with a the first trade of its millisecond it brings a+1 … a+999.
  // The same recorded trades under a pair name of its own (this file's first test used BTC/USDT).
  const PAIR = "XBT/USDT";
  let e = beforeBoundary(4000, 100, 250);
  while (ts(raw[e - 1000]) === ts(raw[e - 999])) e = beforeBoundary(e + 1, 100, 250);
  const a = e - 999;
  const replay = await startKrakenReplayServer({ trades: raw.map((r) => ({ ...r, symbol: PAIR })), speed: "max" });
  replay.holdAt(ts(raw[a]));
  const cfg = config();
  cfg.kraken.wsUrl = replay.wsUrl;
  cfg.kraken.restUrl = replay.restUrl;
  await addPair(env.js, PAIR);
  const sup = await startSupervisor(env, "w-backfill", [tradesActor({ endOfInput: replay.lastTradeIds }), candlesActor], cfg);
  try {
    const upTo = raw.filter((r) => ts(r) <= ts(raw[a])).length;
    await check(() => (sup.cell("trades", PAIR)?.status().processed ?? 0) >= upTo, 120_000, `the ${upTo} trades before the outage`);
    replay.refuseConnections(true);
    replay.dropConnections();
    await replay.releaseUntil(ts(raw[a + 3000])); // the exchange trades on while we are away
    replay.refuseConnections(false);
    replay.holdAt(null);
    await runToEnd(PAIR, replay, sup);
    assert.ok((replay.stats().restRequestsByPair[PAIR] ?? 0) >= 3, `the gap was filled over REST (${JSON.stringify(replay.stats().restRequestsByPair)})`);
    await assertEveryTradeInItsCandle(PAIR);
  } finally {
    await removePairs(env.js, [PAIR]);
    await sup.stop();
    await replay.close();
  }
});

test("trades event time - a quiet pair's windows are closed by watermarks sent only where a window ends: every candle as the trades make it, flat ones included, and no watermark that closes nothing", async () => {
  // A busy pair (3 minutes of the BTC/USDT recording) moves the feed's event time; a quiet one
  // trades only in its first 10 s, then its windows can close only by watermarks. At speed 20 the
  // feed's event time moves 3 s per 150 ms check: one watermark per check (about 60) without the
  // closing rule, one per minute with it. The recordings are two years old, so the feed is not
  // live and only the busy pair's trades move event time (no wall clock in this test's outcome).
  const BUSY = "XBT/EUR";
  const QUIET = "ETH/EUR";
  const busy = raw.filter((r) => ts(r) < ts(raw[0]) + 3 * MINUTE).map((r) => ({ ...r, symbol: BUSY }));
  const eth = readTrades(ETH_FILE);
  const quiet = eth.filter((r) => ts(r) < ts(eth[0]) + 10_000).map((r) => ({ ...r, symbol: QUIET }));
  const replay = await startKrakenReplayServer({ trades: [...busy, ...quiet].sort((a, b) => ts(a) - ts(b)), speed: 20 });
  const cfg = config();
  cfg.kraken.wsUrl = replay.wsUrl;
  cfg.kraken.restUrl = replay.restUrl;
  await addPair(env.js, BUSY);
  await addPair(env.js, QUIET);
  // Only the busy pair's input ends: the quiet pair gets no end-of-stream watermark to close its windows.
  const sup = await startSupervisor(env, "w-quiet", [tradesActor({ endOfInput: { [BUSY]: replay.lastTradeIds[BUSY] } }), candlesActor], cfg);
  try {
    await runToEnd(BUSY, replay, sup);
    // Grace 0: a window closes when event time reaches its end; the feed ends at its newest trade.
    const end = ts(busy.at(-1)!);
    const first = Math.floor(ts(quiet[0]) / MINUTE) * MINUTE;
    const windows = Math.floor(end / MINUTE) - first / MINUTE;
    const got = await check(async () => {
      const c = await readAll(env.js, "CANDLES", subjects.candles("1m", QUIET));
      return c.length >= windows ? c : null;
    }, 30_000, `${QUIET}: its ${windows} one-minute windows closed`);
    assert.equal(got.length, windows, "no window closed ahead of the feed");
    const traded = oracleCandles(quiet, MINUTE);
    const lastClose = traded.at(-1)!.close;
    got.forEach(({ data: c }, i) => {
      assert.equal(c.window_start_ms, first + i * MINUTE, `window ${i}`);
      const w = traded[i] ?? { open: lastClose, high: lastClose, low: lastClose, close: lastClose, trades: 0, flat: true, volume: 0, vwap: lastClose };
      assert.deepEqual([c.open, c.high, c.low, c.close, c.trades, c.flat], [w.open, w.high, w.low, w.close, w.trades, w.flat], `candle ${i}`);
      assert.ok(close(c.volume, w.volume) && close(c.vwap, w.vwap), `candle ${i} volume/vwap`);
    });
    assert.ok(got.length > traded.length, "windows after the quiet pair's last trade were closed");
    // The pair's stream in order: its event time is the newest trade or watermark so far, and each
    // watermark must take it to a window end it had not reached.
    const stream = (await readAll(env.js, "TRADES", subjects.trades(QUIET))).map((m) => m.data);
    const marks = stream.filter((d) => d.kind === "watermark");
    assert.ok(marks.length >= 1, "the quiet pair got watermarks");
    const iso = (x: number) => new Date(x).toISOString();
    let at = -1;
    for (const d of stream) {
      if (d.kind === "watermark") {
        assert.equal(d.eos, false);
        assert.ok(Math.floor(d.ts_ms / MINUTE) > Math.floor(at / MINUTE), `the watermark at ${iso(d.ts_ms)} closes no window (the pair was at ${iso(at)}); ${marks.length} watermarks`);
      }
      at = Math.max(at, d.ts_ms);
    }
    for (const p of [BUSY, QUIET]) assert.deepEqual((await readAll(env.js, "DLQ", `dlq.candles.${pairToToken(p)}`)).map((d) => d.data.reason), [], `${p}: nothing dead-lettered`);
  } finally {
    await removePairs(env.js, [BUSY, QUIET]);
    await sup.stop();
    await replay.close();
  }
});
