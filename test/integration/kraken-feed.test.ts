// The production KrakenTradeFeed and REST backfill against the local Kraken-protocol replay server,
// over real sockets on 127.0.0.1, with the recorded trades of data/trades as the oracle: every trade
// of each file must come out exactly once, in order, with the file's fields — also across forced
// disconnects, a silent (stalled) server and malformed frames.
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";
import {
  backfillTrades,
  BackfillError,
  KrakenTradeFeed,
  loadTradeFiles,
  rfc3339ToMs,
  startKrakenReplayServer,
  type FeedEvent,
  type KrakenReplayOptions,
  type KrakenReplayServer,
  type KrakenTradeFeedOptions,
  type TradeOrigin,
  type TradeSubscriber,
} from "../../actors/trades/mod.js";
import type { Trade } from "../../protocol/messages.js";

const DATA = fileURLToPath(new URL("../../data/trades/", import.meta.url));
const FILES = [`${DATA}binance-spot-BTC-USDT-2024-08-08.jsonl.gz`, `${DATA}binance-spot-ETH-USDT-2024-08-08.jsonl.gz`];
const BTC = "BTC/USDT";
const ETH = "ETH/USDT";
const RECORDS = loadTradeFiles(FILES);

/** The oracle: each file's trades, as the pipeline must see them. */
const EXPECTED: Record<string, Trade[]> = {};
for (const r of RECORDS) {
  (EXPECTED[r.symbol] ??= []).push({
    v: 1, pair: r.symbol, trade_id: r.trade_id, price: r.price, qty: r.qty, side: r.side, ord_type: r.ord_type, ts_ms: rfc3339ToMs(r.timestamp)!,
  });
}

/** Polls instead of sleeping; fails with `what` after `ms`. */
async function check(fn: () => boolean, ms: number, what: string): Promise<void> {
  const end = Date.now() + ms;
  while (!fn()) {
    if (Date.now() > end) throw new Error(`timed out after ${ms} ms waiting for: ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

/** A subscriber that records everything and flags order violations as they happen. */
class Recorder {
  readonly trades: Trade[] = [];
  readonly origins: Record<TradeOrigin, number> = { snapshot: 0, update: 0, backfill: 0 };
  readonly bad: { reason: string; raw: string }[] = [];
  readonly violations: string[] = [];
  hook: ((batch: Trade[]) => Promise<void> | void) | null = null;
  private inFlight = false;

  constructor(readonly pair: string) {}

  get count(): number {
    return this.trades.length;
  }

  readonly sub: TradeSubscriber = {
    lastSeen: () => {
      const t = this.trades[this.trades.length - 1];
      return t ? { trade_id: t.trade_id, ts_ms: t.ts_ms } : null;
    },
    onTrades: async (batch, origin) => {
      // Backpressure contract: no batch before the previous promise resolved.
      if (this.inFlight) this.violations.push(`onTrades called while the previous call was still running (${origin})`);
      this.inFlight = true;
      for (const t of batch) {
        const prev = this.trades[this.trades.length - 1];
        if (t.pair !== this.pair) this.violations.push(`trade ${t.trade_id} of ${t.pair} delivered to ${this.pair}`);
        if (prev && t.trade_id <= prev.trade_id) this.violations.push(`trade ${t.trade_id} after ${prev.trade_id} (${origin})`);
        this.trades.push(t);
      }
      this.origins[origin] += batch.length;
      try {
        await this.hook?.(batch);
      } finally {
        this.inFlight = false;
      }
    },
    onBadFrame: (reason, raw) => {
      this.bad.push({ reason, raw });
    },
  };
}

type Rig = { srv: KrakenReplayServer; feed: KrakenTradeFeed; rec: Record<string, Recorder>; events: FeedEvent[] };

async function rig(srvOpts: Partial<KrakenReplayOptions> = {}, feedOpts: Partial<KrakenTradeFeedOptions> = {}): Promise<Rig> {
  const srv = await startKrakenReplayServer({ trades: RECORDS, speed: "max", ...srvOpts });
  const events: FeedEvent[] = [];
  const feed = new KrakenTradeFeed({
    wsUrl: srv.wsUrl,
    restUrl: srv.restUrl,
    pingIntervalMs: 500,
    heartbeatTimeoutMs: 3000,
    backoff: { initialMs: 20, maxMs: 200 },
    gapRetryDelayMs: 50,
    rest: { minIntervalMs: 0, backoff: { initialMs: 20, maxMs: 100 } },
    ...feedOpts,
    onEvent: (e) => events.push(e),
  });
  const rec = { [BTC]: new Recorder(BTC), [ETH]: new Recorder(ETH) };
  return { srv, feed, rec, events };
}

function start(r: Rig): void {
  for (const pair of [BTC, ETH]) r.feed.subscribe(pair, r.rec[pair].sub);
}

async function teardown(r: Rig): Promise<void> {
  await r.feed.close();
  await r.srv.close();
}

async function allDelivered(r: Rig, ms = 20_000, extra: Record<string, number> = {}): Promise<void> {
  await check(() => [BTC, ETH].every((p) => r.rec[p].count >= EXPECTED[p].length + (extra[p] ?? 0)), ms,
    `all trades delivered (BTC ${r.rec[BTC].count}/${EXPECTED[BTC].length}, ETH ${r.rec[ETH].count}/${EXPECTED[ETH].length})`);
}

/** Exactly the file: same trade_id sequence (nothing missing, nothing twice, in order) and same fields. */
function assertExactlyTheFile(rec: Recorder, expected = EXPECTED[rec.pair]): void {
  assert.deepEqual(rec.violations, []);
  const ids = rec.trades.map((t) => t.trade_id);
  assert.equal(new Set(ids).size, ids.length, `${rec.pair}: duplicates`);
  assert.deepEqual(ids, expected.map((t) => t.trade_id), `${rec.pair}: trade_id sequence differs from the file`);
  assert.deepEqual(rec.trades, expected, `${rec.pair}: fields differ from the file`);
}

describe("kraken feed - replay at max speed", { timeout: 30_000 }, () => {
  test("kraken feed - every trade of both files exactly once, in order, fields equal (files loaded by the server)", async () => {
    const r = await rig({ trades: undefined, files: FILES });
    try {
      assert.deepEqual(r.srv.pairs.sort(), [BTC, ETH]);
      assert.deepEqual(r.srv.lastTradeIds, { [BTC]: EXPECTED[BTC].at(-1)!.trade_id, [ETH]: EXPECTED[ETH].at(-1)!.trade_id });
      start(r);
      await r.srv.done;
      await allDelivered(r);
      for (const p of [BTC, ETH]) assertExactlyTheFile(r.rec[p]);
      const s = r.feed.stats();
      assert.equal(s.connects, 1);
      assert.equal(s.reconnects, 0);
      assert.equal(s.badFrames, 0);
      // One coalesced subscribe for both pairs; the clock waited for both, so nothing predates the subscription.
      assert.equal(r.events.filter((e) => e.type === "subscribed").length, 2);
      assert.equal(r.rec[BTC].origins.update, EXPECTED[BTC].length);
      assert.equal(r.feed.state(), "open");
    } finally {
      await teardown(r);
    }
    assert.equal(r.feed.state(), "closed");
  });

  test("kraken feed - a subscription Kraken refuses is reported and does not disturb the others", async () => {
    const r = await rig({}, { subscribeAckTimeoutMs: 300 });
    try {
      const unknown = new Recorder("XRP/USD");
      start(r);
      r.feed.subscribe("XRP/USD", unknown.sub);
      assert.throws(() => r.feed.subscribe(BTC, new Recorder(BTC).sub), /already has a subscriber/);
      assert.throws(() => r.feed.subscribe("btc-usd", new Recorder("x").sub), /not a Kraken v2 pair/);
      await allDelivered(r);
      const err = r.events.find((e) => e.type === "subscribe_error");
      assert.deepEqual(err, { type: "subscribe_error", pair: "XRP/USD", error: "Currency pair not supported XRP/USD" });
      assert.equal(r.feed.stats().ackTimeouts, 0);
      assert.equal(r.feed.stats().connects, 1);
      for (const p of [BTC, ETH]) assertExactlyTheFile(r.rec[p]);
    } finally {
      await teardown(r);
    }
  });
});

describe("kraken feed - backpressure", { timeout: 30_000 }, () => {
  test("kraken feed - a slow subscriber makes the feed stop reading the socket: bounded buffer, nothing lost", async () => {
    const highWaterMark = 300;
    const r = await rig({}, { highWaterMark, maxBatch: 50 });
    try {
      let maxPending = 0;
      r.rec[BTC].hook = async () => {
        maxPending = Math.max(maxPending, r.feed.stats().pendingTrades);
        await new Promise((res) => setTimeout(res, 1));
      };
      start(r);
      await allDelivered(r);
      for (const p of [BTC, ETH]) assertExactlyTheFile(r.rec[p]);
      const s = r.feed.stats();
      assert.ok(s.backpressurePauses > 0, "the socket was never paused");
      // Frames already read from the socket still arrive after pause(): at most one read's worth more.
      assert.ok(maxPending < highWaterMark + 1000, `up to ${maxPending} trades buffered`);
      assert.equal(s.heartbeatTimeouts, 0, "our own pause must not look like a dead server");
      assert.equal(s.pendingTrades, 0);
    } finally {
      await teardown(r);
    }
  });
});

describe("kraken feed - faults", { timeout: 30_000 }, () => {
  test("kraken feed - forced disconnects mid-stream: backfill over REST, nothing missing, nothing twice", async () => {
    const r = await rig();
    try {
      const drops: number[] = [];
      r.rec[BTC].hook = async () => {
        const n = r.rec[BTC].count;
        if (drops.length === 0 && n >= 5000) {
          drops.push(n);
          const connects = r.feed.stats().connects;
          // A real outage: the exchange goes on trading (2000 more BTC trades are released) while the
          // feed cannot connect, so the trades in between can only come from the REST backfill (the
          // snapshot holds 50). Before, a reconnect with no trade missed went to REST all the same.
          r.srv.refuseConnections(true);
          r.srv.dropConnections();
          await r.srv.releaseUntil(EXPECTED[BTC][n + 2000].ts_ms);
          r.srv.refuseConnections(false);
          await check(() => r.feed.stats().connects > connects, 10_000, "reconnect after first drop");
        } else if (drops.length === 1 && n >= 12_000) {
          drops.push(n);
          r.srv.dropConnections();
        }
      };
      start(r);
      await allDelivered(r);
      // The second drop may come after the backfill already delivered everything: wait for its reconnect.
      await check(() => r.feed.stats().reconnects >= 2 && r.feed.state() === "open", 10_000, "reconnect after the second drop");
      for (const p of [BTC, ETH]) assertExactlyTheFile(r.rec[p]);
      const s = r.feed.stats();
      assert.equal(drops.length, 2);
      assert.ok(r.rec[BTC].origins.backfill > 0, "no BTC trade came from the REST backfill");
      assert.equal(s.backfilledTrades, r.rec[BTC].origins.backfill + r.rec[ETH].origins.backfill);
      assert.ok(s.backfillRuns >= 2 && s.restRequests >= 2, `backfill runs ${s.backfillRuns}, REST requests ${s.restRequests}`);
      assert.equal(s.gaps, 0);
    } finally {
      await teardown(r);
    }
  });

  test("kraken feed - a server that goes silent (no heartbeats, socket open) is detected and the feed reconnects by itself", async () => {
    const r = await rig({}, { heartbeatTimeoutMs: 400, pingIntervalMs: 100 });
    try {
      let paused = false;
      r.rec[BTC].hook = () => {
        if (!paused && r.rec[BTC].count >= 3000) {
          paused = true;
          r.srv.pause();
        }
      };
      start(r);
      await check(() => r.feed.stats().heartbeatTimeouts >= 1 && r.feed.stats().reconnects >= 1, 10_000, "heartbeat timeout and reconnect");
      assert.equal(r.srv.stats().paused, true, "the server never closed anything: the client gave up on its own");
      assert.ok(r.srv.stats().wsConnections >= 2);
      const timeout = r.events.find((e) => e.type === "heartbeat_timeout");
      assert.ok(timeout && timeout.type === "heartbeat_timeout" && timeout.silentMs >= 400, JSON.stringify(timeout));
      r.srv.resume();
      await allDelivered(r);
      for (const p of [BTC, ETH]) assertExactlyTheFile(r.rec[p]);
    } finally {
      await teardown(r);
    }
  });

  test("kraken feed - malformed frames reach onBadFrame with what and where; the stream goes on, nothing lost", async () => {
    const r = await rig();
    try {
      const first = RECORDS[0];
      assert.equal(first.symbol, BTC);
      let injected = false;
      r.rec[BTC].hook = () => {
        if (!injected && r.rec[BTC].count >= 2000) {
          injected = true;
          r.srv.injectRaw("{not json");
          r.srv.injectRaw(JSON.stringify({ channel: "trade", type: "update", data: [{ ...first, price: "abc" }] }));
          r.srv.injectRaw('{"channel":"book","type":"update","data":[]}');
        }
      };
      start(r);
      await r.srv.done;
      await allDelivered(r);
      for (const p of [BTC, ETH]) assertExactlyTheFile(r.rec[p]);
      const btc = r.rec[BTC].bad.map((b) => b.reason);
      const eth = r.rec[ETH].bad.map((b) => b.reason);
      assert.equal(btc.length, 3, btc.join("\n"));
      assert.match(btc[0], /^frame: not JSON \(.+\): "\{not json"$/);
      assert.equal(btc[1], 'trade frame data[0].price: expected a positive number (got "abc")');
      assert.equal(btc[2], 'frame.channel: unknown channel "book"');
      assert.equal(r.rec[BTC].bad[0].raw, "{not json");
      assert.match(r.rec[BTC].bad[1].raw, /"price":"abc"/);
      // The bad BTC record is BTC's problem only; the frame-level ones go to every subscriber.
      assert.deepEqual(eth, [btc[0], btc[2]]);

      // A frame with one bad record and one good one: the bad one is reported, the good one delivered.
      const lastBtc = EXPECTED[BTC].at(-1)!;
      const extra = { ...RECORDS.filter((x) => x.symbol === BTC).at(-1)!, trade_id: lastBtc.trade_id + 1, timestamp: "2024-08-09T00:05:06.000000Z" };
      r.srv.injectRaw(JSON.stringify({ channel: "trade", type: "update", data: [{ ...extra, trade_id: extra.trade_id - 5, side: "sideways" }, extra] }));
      await check(() => r.rec[BTC].count === EXPECTED[BTC].length + 1, 5000, "the good record of a partly bad frame");
      assert.equal(r.rec[BTC].bad.at(-1)!.reason, 'trade frame data[0].side: expected "buy" or "sell" (got "sideways")');
      assertExactlyTheFile(r.rec[BTC], [...EXPECTED[BTC], { ...lastBtc, trade_id: extra.trade_id, ts_ms: Date.UTC(2024, 7, 9, 0, 5, 6) }]);
      // Each bad frame or record is counted once, however many subscribers heard of it.
      assert.equal(r.feed.stats().badFrames, 4);
    } finally {
      await teardown(r);
    }
  });
});

describe("kraken rest backfill", { timeout: 30_000 }, () => {
  // Everything released at once (no WebSocket client needed); REST only serves released trades.
  async function restServer(): Promise<KrakenReplayServer> {
    const srv = await startKrakenReplayServer({ trades: RECORDS, speed: 1e9, startWhen: "listening" });
    await srv.done;
    return srv;
  }
  const cursorOf = (t: Trade) => ({ trade_id: t.trade_id, ts_ms: t.ts_ms });

  test("kraken rest backfill - pages through `last` with a small count, across 735 trades sharing one millisecond", async () => {
    const srv = await restServer();
    try {
      const all = EXPECTED[BTC];
      const got: Trade[] = [];
      const urls: string[] = [];
      const r = await backfillTrades({ restUrl: srv.restUrl, pair: BTC, since: cursorOf(all[99]), count: 250, minIntervalMs: 0, onRequest: (u) => urls.push(u) }, async (ts) => {
        got.push(...ts);
      });
      assert.deepEqual(got, all.slice(100));
      assert.equal(r.delivered, all.length - 100);
      assert.deepEqual(r.last, cursorOf(all.at(-1)!));
      assert.ok(r.pages >= Math.ceil((all.length - 100) / 250), `pages ${r.pages}`);
      assert.equal(r.requests, r.pages);
      assert.match(urls[0], /\/0\/public\/Trades\?pair=XBTUSDT&since=\d{19}&count=250$/);
      const sinces = urls.map((u) => BigInt(new URL(u).searchParams.get("since")!));
      for (let i = 1; i < sinces.length; i++) assert.ok(sinces[i] > sinces[i - 1], "the cursor must advance every page");
      // First run: no cursor, no history.
      const none = await backfillTrades({ restUrl: srv.restUrl, pair: BTC, since: null }, async () => assert.fail("nothing to deliver"));
      assert.deepEqual(none, { pages: 0, requests: 0, delivered: 0, last: null, cursor: null });
    } finally {
      await srv.close();
    }
  });

  test("kraken rest backfill - a crash mid-backfill resumes from the last delivered trade", async () => {
    const srv = await restServer();
    try {
      const all = EXPECTED[ETH];
      const got: Trade[] = [];
      let pages = 0;
      await assert.rejects(
        backfillTrades({ restUrl: srv.restUrl, pair: ETH, since: cursorOf(all[0]), count: 1000, minIntervalMs: 0 }, async (ts) => {
          if (++pages === 4) throw new Error("crash");
          got.push(...ts);
        }),
        /crash/,
      );
      assert.equal(got.length, 3000 - 1);
      await backfillTrades({ restUrl: srv.restUrl, pair: ETH, since: cursorOf(got.at(-1)!), count: 1000, minIntervalMs: 0 }, async (ts) => {
        got.push(...ts);
      });
      assert.deepEqual(got, all.slice(1));
    } finally {
      await srv.close();
    }
  });

  test("kraken rest backfill - requests are spaced by the rate limit (virtual clock)", async () => {
    const srv = await restServer();
    try {
      let now = 0;
      const stamps: number[] = [];
      const r = await backfillTrades(
        {
          restUrl: srv.restUrl, pair: ETH, since: cursorOf(EXPECTED[ETH][0]), count: 1000, minIntervalMs: 1000,
          now: () => now, sleep: async (ms) => void (now += ms), onRequest: () => stamps.push(now),
        },
        async () => {},
      );
      assert.equal(stamps.length, r.requests);
      assert.equal(r.requests, Math.ceil(EXPECTED[ETH].length / 1000));
      for (let i = 1; i < stamps.length; i++) assert.ok(stamps[i] - stamps[i - 1] >= 1000, `requests ${i - 1} and ${i} only ${stamps[i] - stamps[i - 1]} ms apart`);
      assert.equal(srv.stats().restRequests, r.requests);
    } finally {
      await srv.close();
    }
  });

  test("kraken rest backfill - HTTP 429 and EAPI:Rate limit exceeded are retried with backoff; permanent errors are not", async () => {
    const srv = await restServer();
    try {
      const all = EXPECTED[ETH];
      const slept: number[] = [];
      const opts = { restUrl: srv.restUrl, pair: ETH, since: cursorOf(all[14_000]), minIntervalMs: 0, random: () => 0.5, sleep: async (ms: number) => void slept.push(ms) };
      srv.failRest(2, { status: 429 });
      srv.failRest(1, { krakenError: "EAPI:Rate limit exceeded" });
      const got: Trade[] = [];
      const r = await backfillTrades(opts, async (ts) => void got.push(...ts));
      assert.deepEqual(got, all.slice(14_001));
      assert.equal(r.requests, r.pages + 3);
      assert.deepEqual(slept, [1000, 2000, 4000]);

      srv.failRest(3, { status: 503 });
      await assert.rejects(backfillTrades({ ...opts, maxTries: 3 }, async () => {}), (err: unknown) => {
        assert.ok(err instanceof BackfillError);
        assert.equal(err.code, "TF_KRAKEN_BACKFILL_FAILED");
        assert.equal(err.tries, 3);
        assert.match(err.message, /^backfill ETH\/USDT: GET http:\/\/127\.0\.0\.1:\d+\/0\/public\/Trades\?pair=ETHUSDT.* failed 3 times, giving up; last error: HTTP 503$/);
        return true;
      });

      const before = srv.stats().restRequests;
      await assert.rejects(backfillTrades({ ...opts, pair: "XRP/USD" }, async () => {}), /permanent error: Kraken error: EQuery:Unknown asset pair/);
      assert.equal(srv.stats().restRequests, before + 1, "a permanent error is not retried");
    } finally {
      await srv.close();
    }
  });
});

describe("kraken feed - shutdown", { timeout: 30_000 }, () => {
  test("kraken feed - after close() of feed and server no socket, server or timer of ours is left", async () => {
    const ours = ["TCPSocketWrap", "TCPServerWrap", "Timeout", "Immediate"];
    const count = () => {
      const c: Record<string, number> = {};
      for (const k of process.getActiveResourcesInfo()) if (ours.includes(k)) c[k] = (c[k] ?? 0) + 1;
      return c;
    };
    // Handles of earlier tests may still be finishing their close; start from a quiet process.
    await check(() => !process.getActiveResourcesInfo().some((k) => k.startsWith("TCP")), 5000, "sockets of earlier tests closed");
    const baseline = count();
    const r = await rig({}, { heartbeatTimeoutMs: 400, pingIntervalMs: 100 });
    start(r);
    // Close mid-stream, with a backfill and a reconnect timer possibly pending.
    await check(() => r.rec[BTC].count > 1000, 10_000, "some trades");
    r.srv.dropConnections();
    await teardown(r);
    await assert.rejects(r.srv.done, /closed before every trade was sent/);
    const delivered = r.rec[BTC].count;
    await check(() => JSON.stringify(count()) === JSON.stringify(baseline), 2000, `no leftover handles (baseline ${JSON.stringify(baseline)}, now ${JSON.stringify(count())})`);
    assert.equal(r.rec[BTC].count, delivered, "nothing is delivered after close()");
    assert.throws(() => r.feed.subscribe(ETH, new Recorder(ETH).sub), /the feed is closed/);
  });
});
