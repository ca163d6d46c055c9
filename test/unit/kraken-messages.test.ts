// Pure parts of the Kraken plumbing: wire parsing (WS v2 frames, REST Trades pages), time
// conversion, REST pair names, and the retry maths (backoff, rate limiter on a virtual clock).
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import {
  BadFrameError,
  backoffDelay,
  KrakenApiError,
  parseRestTrades,
  parseTradeRecord,
  parseWsFrame,
  RateLimiter,
  restPairName,
  restTimeToMs,
  rfc3339ToMs,
  rfc3339ToNs,
  sinceFromCursor,
} from "../../actors/trades/mod.js";
import { ErrorCode } from "../../protocol/errors.js";

/** Asserts a BadFrameError whose message (what and where) matches. */
function throwsBad(fn: () => unknown, re: RegExp): void {
  assert.throws(fn, (err: unknown) => {
    assert.ok(err instanceof BadFrameError, `expected a BadFrameError, got ${String(err)}`);
    assert.match(err.message, re);
    return true;
  });
}

const REC = {
  symbol: "BTC/USDT",
  side: "sell",
  price: 61837.63,
  qty: 0.02,
  ord_type: "market",
  trade_id: 3735683259,
  timestamp: "2024-08-08T23:54:15.342000Z",
};

describe("kraken-messages - trade records", () => {
  test("a v2 record becomes a Trade with ts_ms floored to the millisecond", () => {
    assert.deepEqual(parseTradeRecord(REC, "r"), {
      v: 1, pair: "BTC/USDT", trade_id: 3735683259, price: 61837.63, qty: 0.02, side: "sell", ord_type: "market", ts_ms: Date.UTC(2024, 7, 8, 23, 54, 15, 342),
    });
    assert.equal(parseTradeRecord({ ...REC, timestamp: "2024-08-08T23:54:15.342999Z" }, "r").ts_ms % 1000, 342);
    assert.equal(parseTradeRecord({ ...REC, timestamp: "2024-08-08T23:54:15Z" }, "r").ts_ms % 1000, 0);
  });

  test("a bad field throws BadFrameError naming what and where", () => {
    assert.throws(() => parseTradeRecord({ ...REC, price: "abc" }, "trade frame data[3]"), (err: unknown) => {
      assert.ok(err instanceof BadFrameError);
      assert.equal(err.name, "BadFrameError");
      assert.equal(err.code, ErrorCode.BadMessage);
      assert.equal(err.where, "trade frame data[3].price");
      assert.equal(err.message, 'trade frame data[3].price: expected a positive number (got "abc")');
      return true;
    });
    const cases: [Record<string, unknown>, RegExp][] = [
      [{ ...REC, price: 0 }, /\.price: expected a positive number \(got 0\)/],
      [{ ...REC, qty: -1 }, /\.qty: expected a number >= 0/],
      [{ ...REC, side: "b" }, /\.side: expected "buy" or "sell" \(got "b"\)/],
      [{ ...REC, ord_type: "stop" }, /\.ord_type: /],
      [{ ...REC, trade_id: 1.5 }, /\.trade_id: expected a whole number/],
      [{ ...REC, timestamp: "2024-02-30T00:00:00Z" }, /\.timestamp: expected an RFC 3339 time/],
      [{ ...REC, timestamp: 1723161255 }, /\.timestamp: /],
      [{ ...REC, symbol: "btc-usdt" }, /^r: pair: /],
    ];
    for (const [rec, re] of cases) throwsBad(() => parseTradeRecord(rec, "r"), re);
    throwsBad(() => parseTradeRecord(null, "r"), /^r: expected a trade object \(got null\)/);
  });

  test("RFC 3339 with offsets and nanoseconds", () => {
    assert.equal(rfc3339ToMs("2024-08-09T01:54:15.342Z"), rfc3339ToMs("2024-08-09T03:54:15.342+02:00"));
    assert.equal(rfc3339ToMs("2022-12-25T09:30:59.123456789Z"), Date.UTC(2022, 11, 25, 9, 30, 59, 123));
    assert.equal(rfc3339ToMs("2022-12-25 09:30:59Z"), null);
  });

  test("RFC 3339 to milliseconds: the shortcut for a second already seen gives what the full parse gives", () => {
    // The full parse: nanoseconds, floored to milliseconds.
    const full = (t: string) => {
      const ns = rfc3339ToNs(t);
      if (ns === null) return null;
      const q = ns / 1_000_000n;
      return Number(ns < 0n && q * 1_000_000n !== ns ? q - 1n : q);
    };
    let seed = 7;
    const rand = (n: number) => ((seed = (seed * 1103515245 + 12345) % 2147483648) % n);
    const pad = (v: number, w: number) => String(v).padStart(w, "0");
    const seconds = ["2024-08-09T01:54:15", "1969-12-31T23:59:59", "2024-02-29T23:59:59", "2023-02-28T00:00:00"];
    for (let k = 0; k < 40; k++) {
      const ms = Date.UTC(1960 + rand(80), rand(12), 1 + rand(28), rand(24), rand(60), rand(60));
      seconds.push(new Date(ms).toISOString().slice(0, 19));
    }
    const tails = (): string[] => {
      const out = ["Z", ".Z", ".1Z", ".12Z", ".123Z", ".1234Z", ".999999999Z", ".0000000001Z", ".12a4Z", ".123", "+02:00", ".5+02:00", ". 5Z", ".-5Z", "ZZ"];
      for (let i = 0; i < 10; i++) {
        const digits = 1 + rand(9);
        out.push(`.${pad(rand(10 ** Math.min(digits, 9)), digits)}Z`);
      }
      return out;
    };
    let checked = 0;
    for (const second of seconds) {
      // The same second several times in a row (the shortcut), and after another one.
      for (const tail of [...tails(), ...tails()]) {
        const t = second + tail;
        assert.equal(rfc3339ToMs(t), full(t), t);
        checked++;
      }
    }
    for (const bad of ["2024-02-30T00:00:00Z", "2024-02-30T00:00:00.5Z", "2024-08-09T24:00:00Z", "2024-08-09T01:54:15"]) {
      rfc3339ToMs("2024-08-09T01:54:15.1Z");
      assert.equal(rfc3339ToMs(bad), null, bad);
    }
    assert.ok(checked > 1000);
  });

  test("REST float seconds floor to the same millisecond despite binary rounding", () => {
    assert.equal(restTimeToMs(1723161255.342), 1723161255342); // stored as …341999…
    assert.equal(restTimeToMs(1688669597.8277369), 1688669597827);
    assert.equal(restTimeToMs(1723161255.342999), 1723161255342);
  });
});

describe("kraken-messages - WebSocket v2 frames", () => {
  test("control frames", () => {
    assert.deepEqual(parseWsFrame('{"channel":"heartbeat"}'), { kind: "heartbeat" });
    assert.deepEqual(
      parseWsFrame('{"channel":"status","data":[{"api_version":"v2","connection_id":13834774380200032777,"system":"online","version":"2.0.0"}],"type":"update"}'),
      { kind: "status", system: "online", version: "2.0.0" },
    );
    assert.deepEqual(parseWsFrame('{"method":"pong","req_id":101,"time_in":"2023-09-24T14:10:23.799685Z","time_out":"2023-09-24T14:10:23.799703Z"}'), { kind: "pong", reqId: 101 });
    assert.deepEqual(
      parseWsFrame('{"method":"subscribe","result":{"channel":"trade","snapshot":true,"symbol":"BTC/USD"},"success":true,"time_in":"x","time_out":"y","req_id":7}'),
      { kind: "ack", method: "subscribe", success: true, symbol: "BTC/USD", error: null, reqId: 7 },
    );
    assert.deepEqual(
      parseWsFrame('{"error":"Currency pair not supported XBT/USD","method":"subscribe","success":false,"symbol":"XBT/USD","time_in":"x","time_out":"y"}'),
      { kind: "ack", method: "subscribe", success: false, symbol: "XBT/USD", error: "Currency pair not supported XBT/USD", reqId: null },
    );
    assert.deepEqual(parseWsFrame('{"error":"Malformed request","method":"error","success":false}'), { kind: "error", method: "error", error: "Malformed request", reqId: null });
  });

  test("a trade frame with one bad record keeps the others", () => {
    const f = parseWsFrame(JSON.stringify({ channel: "trade", type: "update", data: [REC, { ...REC, trade_id: REC.trade_id + 1, price: "abc" }, { ...REC, trade_id: REC.trade_id + 2 }] }));
    assert.equal(f.kind, "trade");
    if (f.kind !== "trade") return;
    assert.equal(f.type, "update");
    assert.deepEqual(f.trades.map((t) => t.trade_id), [REC.trade_id, REC.trade_id + 2]);
    assert.equal(f.bad.length, 1);
    assert.equal(f.bad[0].symbol, "BTC/USDT");
    assert.equal(f.bad[0].error.message, 'trade frame data[1].price: expected a positive number (got "abc")');
    assert.match(f.bad[0].raw, /"price":"abc"/);
  });

  test("frame-level problems throw with what and where", () => {
    throwsBad(() => parseWsFrame("{not json"), /^frame: not JSON \(.+\): "\{not json"$/);
    throwsBad(() => parseWsFrame('{"channel":"book","type":"update","data":[]}'), /^frame\.channel: unknown channel "book"$/);
    throwsBad(() => parseWsFrame('{"channel":"trade","type":"update"}'), /^trade frame\.data: expected an array of trades \(got nothing\)$/);
    throwsBad(() => parseWsFrame('{"channel":"trade","type":"delta","data":[]}'), /^trade frame\.type: /);
    throwsBad(() => parseWsFrame("[1,2]"), /^frame: expected a JSON object/);
  });
});

describe("kraken-messages - REST Trades", () => {
  // The example of https://docs.kraken.com/api/docs/rest-api/get-recent-trades/
  const DOC = {
    error: [],
    result: {
      XXBTZUSD: [
        ["30243.40000", "0.34507674", 1688669597.8277369, "b", "m", "", 61044952],
        ["30243.30000", "0.00376960", 1688669598.2804112, "s", "l", "", 61044953],
      ],
      last: "1688671969993150842",
    },
  };

  test("the documented example parses, whatever the pair key is called", () => {
    const page = parseRestTrades(DOC, "BTC/USD");
    assert.equal(page.key, "XXBTZUSD");
    assert.equal(page.last, "1688671969993150842");
    assert.equal(page.rows, 2);
    assert.deepEqual(page.trades[0], { v: 1, pair: "BTC/USD", trade_id: 61044952, price: 30243.4, qty: 0.34507674, side: "buy", ord_type: "market", ts_ms: 1688669597827 });
    assert.deepEqual([page.trades[1].side, page.trades[1].ord_type], ["sell", "limit"]);
  });

  test("Kraken errors become KrakenApiError, retryable only when transient", () => {
    assert.throws(() => parseRestTrades({ error: ["EAPI:Rate limit exceeded"] }, "BTC/USD"), (e: unknown) => e instanceof KrakenApiError && e.retryable && e.code === "TF_KRAKEN_API");
    assert.throws(() => parseRestTrades({ error: ["EService:Unavailable"] }, "BTC/USD"), (e: unknown) => e instanceof KrakenApiError && e.retryable);
    assert.throws(() => parseRestTrades({ error: ["EQuery:Unknown asset pair"] }, "BTC/USD"), (e: unknown) => e instanceof KrakenApiError && !e.retryable);
  });

  test("a bad row is skipped and reported; a bad shape throws", () => {
    const body = structuredClone(DOC) as { result: { XXBTZUSD: unknown[][] } };
    body.result.XXBTZUSD[0][0] = "abc";
    const page = parseRestTrades(body, "BTC/USD");
    assert.deepEqual(page.trades.map((t) => t.trade_id), [61044953]);
    assert.equal(page.rows, 2);
    assert.equal(page.bad[0].error.message, 'Trades response result.XXBTZUSD[0][0] (price): expected a decimal string (got "abc")');
    throwsBad(() => parseRestTrades({ error: [], result: { last: 5, X: [] } }, "BTC/USD"), /result\.last: expected a string of digits/);
    throwsBad(() => parseRestTrades({ error: [], result: { last: "1" } }, "BTC/USD"), /expected exactly one trade list/);
    // Rows from before Kraken added trade_id cannot be deduplicated: reported, not delivered.
    const old = parseRestTrades({ error: [], result: { last: "1", X: [["1", "1", 1, "b", "m", ""]] } }, "BTC/USD");
    assert.equal(old.trades.length, 0);
    assert.match(old.bad[0].error.message, /^Trades response result\.X\[0\]: expected \[price, volume, time, side, ord_type, misc, trade_id\]/);
  });

  test("REST pair names: no slash, XBT for BTC, XDG for DOGE", () => {
    assert.equal(restPairName("BTC/USD"), "XBTUSD");
    assert.equal(restPairName("BTC/USDT"), "XBTUSDT");
    assert.equal(restPairName("ETH/USDT"), "ETHUSDT");
    assert.equal(restPairName("DOGE/USD"), "XDGUSD");
    assert.equal(restPairName("ETH/BTC"), "ETHXBT");
  });

  test("the since cursor of a trade is one nanosecond before its millisecond, exactly", () => {
    assert.equal(sinceFromCursor({ trade_id: 1, ts_ms: 1723161255342 }), "1723161255341999999");
    assert.equal(sinceFromCursor({ trade_id: 1, ts_ms: 0 }), "0");
  });
});

describe("retry maths", () => {
  const policy = { initialMs: 100, maxMs: 5000, factor: 2, jitter: 0.2 };

  test("backoffDelay grows exponentially and is capped", () => {
    const mid = () => 0.5; // no jitter
    assert.deepEqual([0, 1, 2, 3, 4, 5, 6, 50, 5000].map((a) => backoffDelay(a, policy, mid)), [100, 200, 400, 800, 1600, 3200, 5000, 5000, 5000]);
  });

  test("backoffDelay jitter stays within ±jitter and under the cap", () => {
    assert.equal(backoffDelay(2, policy, () => 0), 320);
    assert.equal(backoffDelay(2, policy, () => 1), 480);
    assert.equal(backoffDelay(10, policy, () => 1), 5000);
    assert.equal(backoffDelay(10, policy, () => 0), 4000);
    for (let i = 0; i < 200; i++) {
      const d = backoffDelay(i % 12, policy);
      assert.ok(d >= 0 && d <= policy.maxMs, `delay ${d}`);
    }
  });

  test("RateLimiter spaces takers on a virtual clock, in arrival order", async () => {
    let now = 0;
    const limiter = new RateLimiter({ ratePerSec: 2, burst: 2, now: () => now, sleep: async (ms) => void (now += ms) });
    const times: number[] = [];
    await Promise.all(Array.from({ length: 6 }, () => limiter.take().then(() => times.push(now))));
    // Two saved-up tokens go at once, then one every 500 ms.
    assert.deepEqual(times, [0, 0, 500, 1000, 1500, 2000]);
    assert.equal(RateLimiter.everyMs(0), null);
  });
});
