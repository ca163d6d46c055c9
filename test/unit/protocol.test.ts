import { test } from "node:test";
import assert from "node:assert/strict";
import { decode, encode } from "../../protocol/codec.js";
import { TypeCompiler } from "@sinclair/typebox/compiler";
import { IndicatorsCheck, IndicatorsSchema, TradeCheck } from "../../protocol/messages.js";
import { normalizePair, pairToToken, tokenToPair } from "../../protocol/pairs.js";
import { parseSubject, subjects } from "../../protocol/subjects.js";
import { timeframeMs } from "../../protocol/timeframes.js";

test("protocol - pair ids map to subject tokens and back", () => {
  assert.equal(pairToToken("BTC/USD"), "BTC-USD");
  assert.equal(tokenToPair("ETH-USDT"), "ETH/USDT");
  assert.equal(normalizePair(" btc-usd "), "BTC/USD");
  assert.throws(() => pairToToken("BTC.USD"), /not BASE\/QUOTE/);
  assert.throws(() => normalizePair("BTC"), /not a pair/);
});

test("protocol - subjects are built and parsed", () => {
  assert.equal(subjects.candles("1m", "BTC/USD"), "md.candles.1m.BTC-USD");
  assert.equal(subjects.candlesAllTf("BTC/USD"), "md.candles.*.BTC-USD");
  assert.deepEqual(parseSubject("md.indicators.5m.ETH-USD"), { kind: "indicators", tf: "5m", pair: "ETH/USD" });
  assert.deepEqual(parseSubject("dlq.candles.ETH-USD"), { kind: "dlq", stage: "candles", pair: "ETH/USD" });
  assert.throws(() => parseSubject("md.candles.1x.BTC-USD"), /subject "md.candles.1x.BTC-USD": "1x" is not a timeframe/);
  assert.throws(() => parseSubject("foo.bar"), /not a Tickflow subject/);
});

test("protocol - timeframes", () => {
  assert.equal(timeframeMs("1m"), 60_000);
  assert.equal(timeframeMs("1h"), 3_600_000);
  assert.throws(() => timeframeMs("0m"), /timeframe "0m"/);
});

test("protocol - codec round-trips msgpack and JSON, and sniffs a payload without Content-Type", () => {
  const v = { v: 1, pair: "BTC/USD", price: 61837.63, qty: 9e-5, payload: new Uint8Array([1, 2, 255]) };
  for (const c of ["msgpack", "json"] as const) {
    const bytes = encode(v, c);
    assert.deepEqual(decode(bytes, c === "json" ? "application/json" : "application/msgpack"), v);
    assert.deepEqual(decode(bytes, null), v, `${c} sniffed`);
    // Another writer's spelling: parameters, case, spaces, and msgpack's older media type.
    const variants = c === "json" ? ["Application/JSON; charset=utf-8", " application/json "] : ["application/msgpack; v=1", "APPLICATION/X-MSGPACK"];
    for (const ct of variants) assert.deepEqual(decode(bytes, ct), v, `${c} as "${ct}"`);
  }
  assert.match(new TextDecoder().decode(encode(v, "json")), /"\$bytes":"AQL\/"/);
  assert.throws(() => decode(new TextEncoder().encode("{nope"), "application/json"), /not valid json/);
  assert.throws(() => decode(new Uint8Array([1]), "text/plain"), /unsupported Content-Type/);
});

test("protocol - msgpack output is byte-identical for the same value (determinism under replay)", () => {
  const a = encode({ v: 1, x: 1.5, y: [1, 2], z: null }, "msgpack");
  const b = encode({ v: 1, x: 1.5, y: [1, 2], z: null }, "msgpack");
  assert.deepEqual(Buffer.from(a), Buffer.from(b));
});

test("protocol - validators name the bad field and value", () => {
  const t = { v: 1, pair: "BTC/USD", trade_id: 1, price: -3, qty: 1, side: "buy", ord_type: "market", ts_ms: 1 };
  assert.match(TradeCheck.explain(t)!, /^price: .* \(got -3\)$/);
  assert.match(TradeCheck.explain({ ...t, price: 1, side: "up" })!, /^side: /);
  assert.equal(TradeCheck.explain({ ...t, price: 1 }), null);
});

test("protocol - the indicators check accepts exactly what the indicators schema accepts", () => {
  const full = TypeCompiler.Compile(IndicatorsSchema);
  const candle = { v: 1, pair: "BTC/USD", tf: "1m", window_start_ms: 60_000, window_end_ms: 120_000, open: 1, high: 2, low: 0.5, close: 1.5, volume: 3, vwap: 1.2, trades: 4, flat: false };
  const inherited = Object.create({ sneaky: "x" }) as Record<string, unknown>;
  inherited.rsi_14 = 50;
  const cases: unknown[] = [
    { ...candle, values: { sma_20: 1.5, rsi_14: null, macd: -0.2 } },
    { ...candle, values: {} },
    { ...candle, values: inherited },
    { ...candle, values: { sma_20: Number.NaN } },
    { ...candle, values: { sma_20: Infinity } },
    { ...candle, values: { sma_20: "1.5" } },
    { ...candle, values: { sma_20: undefined } },
    { ...candle, values: { nested: { a: 1 } } },
    { ...candle, values: [1, 2] },
    { ...candle, values: new Date(0) },
    { ...candle, values: new Uint8Array(2) },
    { ...candle, values: null },
    { ...candle },
    { ...candle, extra: "kept", values: { a: 1 } },
    { ...candle, high: -1, values: { a: 1 } },
    { ...candle, pair: "btc-usd", values: { a: 1 } },
    null, 42, "candle",
  ];
  for (const c of cases) {
    assert.equal(IndicatorsCheck.check(c), full.Check(c), `check of ${JSON.stringify(c)}`);
    assert.equal(IndicatorsCheck.explain(c) === null, full.Check(c), `explain of ${JSON.stringify(c)}`);
  }
  assert.match(IndicatorsCheck.explain({ ...candle, values: { sma_20: "1.5" } })!, /values\.sma_20/);
});
