// The watermark rule of the trades source (actors/trades/event-time.ts) as pure functions: event
// time follows the feed's own progress; our clock only extends it while the feed is live and caught
// up, and only as far as the last frame read. Guards the bug where a quiet pair's watermark ran ahead
// by wall-clock time while the feed lagged, and on-time trades were dead-lettered as late.
import { test } from "node:test";
import assert from "node:assert/strict";
import { feedEventTime, feedIsLive, idleWatermark, nextClosePoint, type FeedProgress, type PairProgress, type WatermarkRule } from "../../actors/trades/event-time.js";

const rule: WatermarkRule = { idleMs: 2000, liveLagMs: 3000, maxFrameGapMs: 3000, minStepMs: 1000 };
const T = 1_723_161_255_000; // exchange time of the newest trade

/** A live feed: newest trade read 100 ms after its time, frames since, the last one 5 s later. */
function live(over: Partial<FeedProgress> = {}): FeedProgress {
  return { newestTradeTs: T, newestTradeReadAt: T + 100, lastFrameAt: T + 5100, maxFrameGapSinceNewest: 1000, socketOpen: true, readingPaused: false, ...over };
}
function quiet(over: Partial<PairProgress> = {}): PairProgress {
  return { catchingUp: false, lastTradeTs: T - 10_000, pendingTrades: 0, lastWatermark: null, ...over };
}

test("event time - a live feed advances to the last frame read, never to now", () => {
  assert.equal(feedIsLive(live(), rule), true);
  assert.equal(feedEventTime(live(), rule), T + 5000);
});

test("event time - a lagging feed (replay, backlog, REST) stays at its newest trade whatever the wall clock says", () => {
  // The newest trade arrived 10 min after its time: a replay or a backlog.
  const lagging = live({ newestTradeReadAt: T + 600_000, lastFrameAt: T + 900_000 });
  assert.equal(feedIsLive(lagging, rule), false);
  assert.equal(feedEventTime(lagging, rule), T);
  assert.equal(idleWatermark(lagging, quiet(), rule), T);
});

test("event time - a stall (silence between frames longer than maxFrameGapMs) ends wall-clock advancement", () => {
  assert.equal(feedEventTime(live({ maxFrameGapSinceNewest: 20_000 }), rule), T);
  // A fresh connection counts as stalled until a trade proves it live.
  assert.equal(feedEventTime(live({ maxFrameGapSinceNewest: Number.POSITIVE_INFINITY }), rule), T);
});

test("event time - a backpressured or closed socket is not idle: only the data moves event time", () => {
  assert.equal(feedEventTime(live({ readingPaused: true }), rule), T);
  assert.equal(feedEventTime(live({ socketOpen: false }), rule), T);
});

test("event time - no trade yet: no event time, no watermark", () => {
  assert.equal(feedEventTime(live({ newestTradeTs: null }), rule), null);
  assert.equal(idleWatermark(live({ newestTradeTs: null }), quiet(), rule), null);
});

test("event time - a pair catching up, with trades buffered, or without any trade gets no watermark", () => {
  assert.equal(idleWatermark(live(), quiet({ catchingUp: true }), rule), null);
  assert.equal(idleWatermark(live(), quiet({ pendingTrades: 1 }), rule), null);
  assert.equal(idleWatermark(live(), quiet({ lastTradeTs: null }), rule), null);
});

test("event time - a pair gets a watermark only after idleMs of event time without a trade, in steps of minStepMs", () => {
  const f = live({ socketOpen: false }); // event time = T exactly
  assert.equal(idleWatermark(f, quiet({ lastTradeTs: T - 1999 }), rule), null);
  assert.equal(idleWatermark(f, quiet({ lastTradeTs: T - 2000 }), rule), T);
  assert.equal(idleWatermark(f, quiet({ lastWatermark: T - 999 }), rule), null);
  assert.equal(idleWatermark(f, quiet({ lastWatermark: T - 1000 }), rule), T);
  assert.equal(idleWatermark(f, quiet({ lastWatermark: T }), rule), null);
});

const MIN = 60_000;
const M = Math.floor(T / MIN) * MIN; // the minute boundary before T (T is 15 s past it)

test("event time - the next point where a window closes: a window end plus the grace, strictly after the given time, over every period", () => {
  assert.equal(nextClosePoint(M - 1, [MIN], 0), M);
  assert.equal(nextClosePoint(M, [MIN], 0), M + MIN);
  assert.equal(nextClosePoint(M + 10, [MIN], 0), M + MIN);
  assert.equal(nextClosePoint(M + 1000, [MIN], 2000), M + 2000);
  assert.equal(nextClosePoint(M + 2000, [MIN], 2000), M + MIN + 2000);
  // 1m, 5m and 1h: the 1m points include the others.
  assert.equal(nextClosePoint(M + 10, [MIN, 5 * MIN, 60 * MIN], 0), M + MIN);
  // Periods that are not multiples of each other: whichever closes first.
  const h = Math.floor(T / 3_600_000) * 3_600_000;
  assert.equal(nextClosePoint(h + 61_000, [MIN, 90_000], 0), h + 90_000);
  assert.equal(nextClosePoint(h + 91_000, [MIN, 90_000], 0), h + 2 * MIN);
});

test("event time - with the candles' timeframes and grace, a quiet pair gets a watermark only when it closes a window", () => {
  const closing: WatermarkRule = { ...rule, closes: { periodsMs: [MIN], graceMs: 2000 } };
  const f = live({ socketOpen: false }); // event time = T, 15 s past the minute M; windows close at M + 2 s, M + 62 s, …
  // Quiet since M + 5 s: the window [M - 60 s, M) closed at M + 2 s already, the next closes at M + 62 s.
  assert.equal(idleWatermark(f, quiet({ lastTradeTs: M + 5000 }), rule), T, "every step without the closing rule");
  assert.equal(idleWatermark(f, quiet({ lastTradeTs: M + 5000 }), closing), null);
  // Quiet since M + 1 s: T reaches M + 2 s, where [M - 60 s, M) closes.
  assert.equal(idleWatermark(f, quiet({ lastTradeTs: M + 1000 }), closing), T);
  // …unless a watermark already took the pair past that point.
  assert.equal(idleWatermark(f, quiet({ lastTradeTs: M + 1000, lastWatermark: M + 3000 }), closing), null);
  // A watermark from before the last trade does not count.
  assert.equal(idleWatermark(f, quiet({ lastTradeTs: M + 1000, lastWatermark: M - 30_000 }), closing), T);
});

test("event time - a quiet pair over ten minutes of event time moving a second at a time: one watermark per window it closes, not one a second", () => {
  const closing: WatermarkRule = { ...rule, closes: { periodsMs: [MIN], graceMs: 2000 } };
  for (const [r, expect] of [[rule, 600], [closing, 10]] as const) {
    let last: number | null = null;
    const sent: number[] = [];
    for (let t = M + 1000; t <= M + 10 * MIN + 1000; t += 1000) {
      const w = idleWatermark(live({ socketOpen: false, newestTradeTs: t }), quiet({ lastTradeTs: M, lastWatermark: last }), r);
      if (w !== null) sent.push((last = w));
    }
    assert.equal(sent.length, expect);
    // Each closing watermark is the first one at or after a close point: the windows close as early as before.
    if (r === closing) assert.deepEqual(sent, Array.from({ length: 10 }, (_, k) => M + k * MIN + 2000));
  }
});
