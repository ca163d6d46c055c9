import { test } from "node:test";
import assert from "node:assert/strict";
import { addItem, closeAt, createSignalState, itemValue } from "../../actors/sentiment/signal.js";

const near = (a: number, b: number, what: string) => assert.ok(Math.abs(a - b) < 1e-12, `${what}: ${a} vs ${b}`);

test("sentiment signal - equals a hand computation of the decay (half-life 60 s)", () => {
  const st = createSignalState(60_000);
  closeAt(st, 0); // the first candle close sets the reference time
  addItem(st, 0, itemValue("bullish", 1)); // s = +1 at t = 0
  addItem(st, 30_000, itemValue("bearish", 0.5)); // s = −0.5 at t = 30 s: from the future of t = 0, so pending
  addItem(st, 90_000, itemValue("bullish", 0.8)); // pending until a close passes 90 s
  // At t = 60 s: weights 2^(−60/60) = 0.5 and 2^(−30/60) = 1/√2.
  //   S = 1·0.5 − 0.5/√2 = 0.146446609…   W = 0.5 + 1/√2 = 1.207106781…   score = S/(W+1) = 0.066352299…
  const a = closeAt(st, 60_000);
  near(a.score, 0.06635229915246604, "score at 60 s");
  near(a.weight, 1.2071067811865475, "weight at 60 s");
  assert.equal(a.items, 2);
  // At t = 120 s: S and W halve, the 90 s item enters with 2^(−30/60):
  //   S = 0.146446609·0.5 + 0.8/√2 = 0.638908729…   W = 1.207106781·0.5 + 1/√2 = 1.310660171…   score = 0.276504843…
  const b = closeAt(st, 120_000);
  near(b.score, 0.2765048437046768, "score at 120 s");
  near(b.weight, 1.3106601717798214, "weight at 120 s");
  assert.equal(b.items, 1);
});

test("sentiment signal - an item that arrives after a later close counts as if it had come in order", () => {
  const inOrder = createSignalState(120_000);
  const late = createSignalState(120_000);
  closeAt(inOrder, 0); closeAt(late, 0);
  addItem(inOrder, 30_000, itemValue("bearish", 0.9));
  const x = closeAt(inOrder, 60_000);
  const y = closeAt(late, 60_000);
  assert.equal(y.score, 0);
  addItem(late, 30_000, itemValue("bearish", 0.9)); // published at 30 s, arrives after the 60 s close
  const x2 = closeAt(inOrder, 120_000);
  const y2 = closeAt(late, 120_000);
  assert.ok(x.score < 0);
  near(y2.score, x2.score, "late item at 120 s");
  near(y2.weight, x2.weight, "late item weight");
});

test("sentiment signal - no news relaxes to 0, neutral items pull toward 0, a repeated close does not rewind", () => {
  const st = createSignalState(60_000);
  closeAt(st, 0);
  addItem(st, 0, itemValue("bullish", 1));
  const a = closeAt(st, 0);
  near(a.score, 0.5, "one bullish item at age 0 against the neutral prior");
  addItem(st, 0, itemValue("neutral", 0.9));
  near(closeAt(st, 0).score, 1 / 3, "one bullish, one neutral");
  const far = closeAt(st, 3_600_000);
  assert.ok(Math.abs(far.score) < 1e-9 && far.weight < 1e-15);
  const again = closeAt(st, 60_000); // before the reference: value at the reference, state unchanged
  assert.equal(again.score, closeAt(st, 3_600_000).score);
  assert.throws(() => createSignalState(0), /half-life/);
});

import { applyCandle, applyScored, createPairSentiment } from "../../actors/sentiment/pair-sentiment.js";
import { SentimentSignalCheck } from "../../protocol/news.js";

test("pair sentiment - a 1m candle close emits the decayed value for its coin; other coins and replayed closes are ignored", () => {
  const st = createPairSentiment("BTC/USDT", "BTC", 60);
  const candle = (endMs: number) => ({ v: 1 as const, pair: "BTC/USDT", tf: "1m", window_start_ms: endMs - 60_000, window_end_ms: endMs, open: 1, high: 1, low: 1, close: 1, volume: 0, vwap: 1, trades: 0, flat: true });
  const item = (coin: string, ts: number, signal: "bullish" | "bearish", confidence: number) => ({ v: 1 as const, id: `x:${ts}`, source: "x", ts_ms: ts, title: "t", coin, signal, confidence, reason: "", scorer: "lexicon" });
  // No news of its coin yet: no signal (see the next test).
  assert.equal(applyCandle(st, candle(60_000)), null);
  applyScored(st, item("BTC", 60_000, "bullish", 1));
  applyScored(st, item("ETH", 60_000, "bearish", 1));
  const s = applyCandle(st, candle(120_000));
  assert.ok(s);
  // one item of age 60 s with half-life 60 s: S = 0.5, W = 0.5 → 0.5 / 1.5
  assert.ok(Math.abs(s.score - 1 / 3) < 1e-12);
  assert.deepEqual([s.pair, s.coin, s.ts_ms, s.items, s.half_life_s], ["BTC/USDT", "BTC", 120_000, 1, 60]);
  assert.equal(SentimentSignalCheck.explain(s), null);
  assert.equal(applyCandle(st, candle(120_000)), null);
  assert.equal(st.foreign, 1);
});

test("pair sentiment - a pair whose coin has no news publishes nothing; the step back to zero is published once; an old checkpoint publishes one zero", () => {
  const candle = (endMs: number) => ({ v: 1 as const, pair: "DOGE/USD", tf: "1m", window_start_ms: endMs - 60_000, window_end_ms: endMs, open: 1, high: 1, low: 1, close: 1, volume: 0, vwap: 1, trades: 0, flat: true });
  const st = createPairSentiment("DOGE/USD", "DOGE", 60);
  for (let m = 1; m <= 30; m++) assert.equal(applyCandle(st, candle(m * 60_000)), null, `minute ${m}: no news, no signal`);
  // The closes still advance: a replayed one is refused as before.
  assert.equal(st.lastClose, 30 * 60_000);
  // One bearish item: a signal at every close while it decays…
  applyScored(st, { v: 1, id: "x:1", source: "x", ts_ms: 30 * 60_000, title: "t", coin: "DOGE", signal: "bearish", confidence: 1, reason: "", scorer: "lexicon" });
  const seen: number[] = [];
  let zeros = 0;
  for (let m = 31; m <= 31 + 1200; m++) {
    const s = applyCandle(st, candle(m * 60_000));
    if (!s) continue;
    if (s.weight === 0 && s.score === 0) zeros++;
    else seen.push(s.score);
  }
  // …every minute until the weight underflows to exactly 0 (about 1,075 half-lives of 60 s), then
  // one zero signal, then nothing.
  assert.ok(seen.length > 1000 && seen.every((x) => x < 0), `${seen.length} signals, all bearish`);
  assert.equal(zeros, 1);
  assert.equal(st.quiet, true);
  // A checkpoint written before the rule has no \`quiet\`: its first zero is published, then the rule holds.
  const old = createPairSentiment("DOGE/USD", "DOGE", 60);
  delete old.quiet;
  assert.ok(applyCandle(old, candle(60_000)));
  assert.equal(applyCandle(old, candle(120_000)), null);
});
