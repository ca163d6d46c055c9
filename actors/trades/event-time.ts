// Event time of a quiet pair, from the data: pure functions, no clock of their own (the caller
// passes every time it read). The rule (README, "Event time"):
//
// 1. The feed's event time is the newest trade time the shared WebSocket connection has delivered,
//    across pairs. Trades reach us in exchange-time order on one socket, so once a trade of any pair
//    with time T has been read, every trade of a subscribed, caught-up pair up to T has been read too.
// 2. Wall-clock time is added to it only while the feed is live and caught up: the socket is open
//    and being read (not paused by backpressure), the newest trade arrived within `liveLagMs` of its
//    own time, and since then frames (heartbeats included) kept arriving with no silence longer than
//    `maxFrameGapMs`. Even then event time advances only to the last frame read, never to "now": a
//    frame proves the exchange had sent nothing more before it; silence proves nothing.
// 3. A pair gets a watermark only if it is not catching up (snapshot/REST backfill in progress, or a
//    gap not yet ruled out), has nothing buffered, has been quiet for `idleMs` of event time, and the
//    watermark moves at least `minStepMs`. The caller queues it behind every trade of the pair the
//    socket has already received, so it can never overtake them.
// 4. With `closes` (the candles' timeframes and grace), a watermark is sent only when it reaches a
//    point where a window closes (a window end plus the grace) that the pair's event time has not
//    reached yet. A watermark between two such points changes nothing downstream, and a live feed
//    would otherwise give every quiet pair one a second: at a thousand pairs nine in ten messages
//    of TRADES, each read and applied by a candles actor, for nothing.
// A backpressured feed therefore never looks idle (Flink FLIP-471): while we are slow, nothing but
// the data moves event time.

export type WatermarkRule = {
  /** A pair gets a watermark after this much event time without a trade of its own. */
  idleMs: number;
  /** The feed counts as live only if its newest trade arrived at most this long after its trade time. */
  liveLagMs: number;
  /** A silence between frames longer than this (a stall, ours or the network's) ends liveness until the next live trade. */
  maxFrameGapMs: number;
  /** Smallest advance worth a watermark message. */
  minStepMs: number;
  /** Rule 4: only watermarks that close a window of these periods (window end + graceMs); omitted = every step. */
  closes?: { periodsMs: readonly number[]; graceMs: number };
};

export const DEFAULT_WATERMARK_RULE: WatermarkRule = { idleMs: 2000, liveLagMs: 3000, maxFrameGapMs: 3000, minStepMs: 1000 };

/** What the shared connection has shown so far (all times in ms; `*At` on our clock, `*Ts` on the exchange's). */
export type FeedProgress = {
  /** Newest trade time read on the socket, any pair; null before the first trade. */
  newestTradeTs: number | null;
  /** When that trade was read. */
  newestTradeReadAt: number;
  /** When the last frame of any kind was read. */
  lastFrameAt: number;
  /** Longest silence between two frames read since the newest trade (0 if none since). */
  maxFrameGapSinceNewest: number;
  socketOpen: boolean;
  /** The socket is not being read (backpressure): whatever the exchange sent is waiting unread. */
  readingPaused: boolean;
};

export type PairProgress = {
  /** Snapshot or REST catch-up running, or its result not yet verified against the live stream. */
  catchingUp: boolean;
  /** Time of the last trade delivered to the pair's subscriber; null if none yet. */
  lastTradeTs: number | null;
  /** Trades received for the pair and not yet delivered. */
  pendingTrades: number;
  /** The last watermark handed to the subscriber; null if none. */
  lastWatermark: number | null;
};

/** True while the feed may be extrapolated with our clock (rule 2). */
export function feedIsLive(f: FeedProgress, rule: WatermarkRule): boolean {
  if (f.newestTradeTs === null || !f.socketOpen || f.readingPaused) return false;
  if (f.newestTradeReadAt - f.newestTradeTs > rule.liveLagMs) return false;
  return f.maxFrameGapSinceNewest <= rule.maxFrameGapMs;
}

/** The feed's event time (rules 1 and 2), or null before its first trade. */
export function feedEventTime(f: FeedProgress, rule: WatermarkRule): number | null {
  if (f.newestTradeTs === null) return null;
  if (!feedIsLive(f, rule)) return f.newestTradeTs;
  return f.newestTradeTs + Math.max(0, f.lastFrameAt - f.newestTradeReadAt);
}

/** The watermark a quiet pair may be given now (rule 3), or null. */
export function idleWatermark(f: FeedProgress, p: PairProgress, rule: WatermarkRule): number | null {
  if (p.catchingUp || p.pendingTrades > 0 || p.lastTradeTs === null) return null;
  const t = feedEventTime(f, rule);
  if (t === null || t - p.lastTradeTs < rule.idleMs) return null;
  if (p.lastWatermark !== null && t - p.lastWatermark < rule.minStepMs) return null;
  if (rule.closes) {
    // Where the pair's event time stands: its last trade, or its last watermark if later.
    const at = p.lastWatermark !== null && p.lastWatermark > p.lastTradeTs ? p.lastWatermark : p.lastTradeTs;
    if (t < nextClosePoint(at, rule.closes.periodsMs, rule.closes.graceMs)) return null;
  }
  return t;
}

/** The first point after `after` at which a window of one of `periodsMs` closes: a window end (a multiple of its period) plus `graceMs`. */
export function nextClosePoint(after: number, periodsMs: readonly number[], graceMs: number): number {
  let best = Number.POSITIVE_INFINITY;
  for (const p of periodsMs) {
    const x = (Math.floor((after - graceMs) / p) + 1) * p + graceMs;
    if (x < best) best = x;
  }
  return best;
}
