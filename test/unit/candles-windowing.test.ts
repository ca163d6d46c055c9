import { test } from "node:test";
import assert from "node:assert/strict";
import { applyTrade, applyWatermark, createCandleState } from "../../actors/candles/windowing.js";
import type { Candle } from "../../protocol/messages.js";
import { BTC_FILE, close, oracleCandles, readTrades, toTrade } from "../harness/data.js";

const trade = (id: number, ts: number, price: number, qty = 1) => ({ v: 1 as const, pair: "BTC/USD", trade_id: id, price, qty, side: "buy" as const, ord_type: "market" as const, ts_ms: ts });

test("candles - a recorded day of BTC/USDT trades gives the 1m and 5m candles of an independent group-by", () => {
  const raw = readTrades(BTC_FILE);
  const s = createCandleState("BTC/USDT", ["1m", "5m"], 2000);
  const out: Candle[] = [];
  for (const r of raw) {
    const res = applyTrade(s, toTrade(r));
    assert.equal(res.late, null);
    out.push(...res.candles);
  }
  out.push(...applyWatermark(s, { ts_ms: 0, eos: true }));
  for (const [tf, ms] of [["1m", 60_000], ["5m", 300_000]] as const) {
    const got = out.filter((c) => c.tf === tf);
    const want = oracleCandles(raw, ms);
    assert.equal(got.length, want.length, `${tf} candle count`);
    got.forEach((c, i) => {
      const w = want[i];
      assert.equal(c.window_start_ms, w.window_start_ms);
      assert.equal(c.window_end_ms, w.window_start_ms + ms);
      assert.deepEqual([c.open, c.high, c.low, c.close, c.trades, c.flat], [w.open, w.high, w.low, w.close, w.trades, w.flat], `${tf} ${i}`);
      assert.ok(close(c.volume, w.volume) && close(c.vwap, w.vwap), `${tf} ${i} volume/vwap`);
    });
  }
});

test("candles - a window closes only once event time passes its end plus grace", () => {
  const s = createCandleState("BTC/USD", ["1m"], 2000);
  assert.deepEqual(applyTrade(s, trade(1, 10_000, 100)).candles, []);
  assert.deepEqual(applyTrade(s, trade(2, 61_000, 101)).candles, [], "inside grace: 60s window still open");
  const r = applyTrade(s, trade(3, 62_000, 102));
  assert.equal(r.candles.length, 1);
  assert.equal(r.candles[0].close, 100);
});

test("candles - a trade out of order within grace lands in its window; open/close follow event time", () => {
  const s = createCandleState("BTC/USD", ["1m"], 5000);
  applyTrade(s, trade(1, 30_000, 100));
  applyTrade(s, trade(2, 61_000, 200));
  applyTrade(s, trade(3, 20_000, 90)); // earlier than trade 1: becomes the open
  applyTrade(s, trade(4, 59_000, 110)); // latest of the window: becomes the close
  const c = applyTrade(s, trade(5, 70_000, 210)).candles[0];
  assert.deepEqual([c.open, c.high, c.low, c.close, c.trades], [90, 110, 90, 110, 3]);
});

test("candles - a trade for a closed window is late: reported, counted, and changes nothing", () => {
  const s = createCandleState("BTC/USD", ["1m"], 1000);
  applyTrade(s, trade(1, 10_000, 100));
  assert.equal(applyTrade(s, trade(2, 62_000, 101)).candles.length, 1);
  const before = JSON.stringify(s.tfs);
  const r = applyTrade(s, trade(3, 59_000, 999));
  assert.match(r.late!, /late trade 3: .*1m window 1970-01-01T00:00:00.000Z/);
  assert.equal(s.lateTrades, 1);
  assert.equal(JSON.stringify(s.tfs), before);
});

test("candles - a quiet window is emitted flat at the previous close", () => {
  const s = createCandleState("BTC/USD", ["1m"], 0);
  applyTrade(s, trade(1, 5_000, 100, 2));
  const r = applyTrade(s, trade(2, 185_000, 105));
  assert.deepEqual(r.candles.map((c) => [c.window_start_ms, c.flat, c.open, c.close, c.volume, c.trades]), [
    [0, false, 100, 100, 2, 1],
    [60_000, true, 100, 100, 0, 0],
    [120_000, true, 100, 100, 0, 0],
  ]);
});

test("candles - a watermark closes windows of a quiet pair; end-of-stream flushes the open ones", () => {
  const s = createCandleState("BTC/USD", ["1m", "5m"], 2000);
  applyTrade(s, trade(1, 5_000, 100));
  assert.deepEqual(applyWatermark(s, { ts_ms: 61_000, eos: false }), []);
  assert.deepEqual(applyWatermark(s, { ts_ms: 62_000, eos: false }).map((c) => c.tf), ["1m"]);
  applyTrade(s, trade(2, 70_000, 101));
  const flushed = applyWatermark(s, { ts_ms: 70_000, eos: true });
  assert.deepEqual(flushed.map((c) => `${c.tf}@${c.window_start_ms}`), ["1m@60000", "5m@0"]);
  assert.equal(applyTrade(s, trade(3, 75_000, 1)).late !== null, true, "after end of stream nothing more is accepted");
});

test("candles - a trade jumping 7 days past event time is rejected instead of emitting 10,000 flats", () => {
  const s = createCandleState("BTC/USD", ["1m"], 0);
  applyTrade(s, trade(1, 1_000, 100));
  const r = applyTrade(s, trade(2, 1_000 + 8 * 86_400_000, 100));
  assert.match(r.late!, /jumps more than 7 days/);
  assert.equal(r.candles.length, 0);
});

test("candles - restoring a JSON copy of the state mid-stream gives the same candles as no restart", () => {
  const raw = readTrades(BTC_FILE).slice(0, 6000);
  const run = (restoreAt: number | null) => {
    let s = createCandleState("BTC/USDT", ["1m", "5m", "1h"], 2000);
    const out: Candle[] = [];
    raw.forEach((r, i) => {
      if (i === restoreAt) s = JSON.parse(JSON.stringify(s));
      out.push(...applyTrade(s, toTrade(r)).candles);
    });
    out.push(...applyWatermark(s, { ts_ms: 0, eos: true }));
    return JSON.stringify(out);
  };
  const a = run(null);
  assert.equal(run(2500), a);
  assert.ok(a.length > 100);
});
