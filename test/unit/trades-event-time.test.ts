// The watermark rule of the trades source (actors/trades/event-time.ts) as pure functions: event
// time follows the feed's own progress; our clock only extends it while the feed is live and caught
// up, and only as far as the last frame read. Guards the bug where a quiet pair's watermark ran ahead
// by wall-clock time while the feed lagged, and on-time trades were dead-lettered as late.
import { test } from "node:test";
import assert from "node:assert/strict";
import { feedEventTime, feedIsLive, idleWatermark, type FeedProgress, type PairProgress, type WatermarkRule } from "../../actors/trades/event-time.js";

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
