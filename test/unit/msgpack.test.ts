// protocol/msgpack.ts must write exactly the bytes @msgpack/msgpack writes and read exactly the
// values it reads: other readers of the streams (the sink, `tickflow tail`, a user's own consumer)
// see no difference. Compared here on every kind of value at every size boundary of the format,
// on the messages of a real run (candles, indicators, predictions, checkpoints), on random values,
// and on malformed input, where both must throw the same error.
import { test } from "node:test";
import assert from "node:assert/strict";
import { Decoder, Encoder } from "@msgpack/msgpack";
import { createIndicatorState, DEFAULT_INDICATORS, updateIndicators } from "../../actors/indicators/engine.js";
import { decodeMsgpack, encodeMsgpack } from "../../protocol/msgpack.js";
import { CANDLE_FILE, readCandlesCsv } from "../harness/data.js";

const libEncoder = new Encoder({ ignoreUndefined: true });
const libDecoder = new Decoder();

/** Same value, same key order at every level (deepStrictEqual does not compare key order). */
function assertSameValue(actual: unknown, expected: unknown, where: string): void {
  assert.deepStrictEqual(actual, expected, where);
  const order = (v: unknown): unknown =>
    v && typeof v === "object" && !(v instanceof Uint8Array) ? (Array.isArray(v) ? v.map(order) : Object.entries(v).map(([k, x]) => [k, order(x)])) : v;
  assert.deepStrictEqual(order(actual), order(expected), `${where}: key order`);
}

function assertSameBytes(value: unknown, where: string): Uint8Array {
  const ours = encodeMsgpack(value);
  const theirs = libEncoder.encode(value);
  assert.equal(Buffer.from(ours).toString("hex"), Buffer.from(theirs).toString("hex"), `${where}: bytes`);
  return theirs;
}

/** Encodes with both and decodes with both: the same bytes, and the same value back. */
function roundTrip(value: unknown, where: string): void {
  const bytes = assertSameBytes(value, where);
  assertSameValue(decodeMsgpack(bytes), libDecoder.decode(bytes), `${where}: decoded`);
}

const ascii = (n: number): string => "abcdefghijklmnopqrstuvwxyz0123456789".repeat(Math.ceil(n / 36)).slice(0, n);

test("msgpack: numbers at every boundary of the format, as the library writes and reads them", () => {
  const edges = [0, 2 ** 7, 2 ** 8, 2 ** 16, 2 ** 32, 2 ** 53];
  const numbers = [-0, NaN, Infinity, -Infinity, 0.5, -0.5, 1e-300, 1.7976931348623157e308, 5e-324, Math.PI, 62881.111035728674];
  for (const e of edges) for (const d of [-2, -1, 0, 1]) numbers.push(e + d, -(e + d));
  for (const e of [0x20, 0x21, 0x80, 0x81, 0x8000, 0x8001, 0x80000000, 0x80000001]) numbers.push(-e, -e + 1);
  numbers.push(Number.MAX_SAFE_INTEGER, Number.MIN_SAFE_INTEGER, 1723163580000, -1723163580000, 2 ** 31 - 1, -(2 ** 31), 4294967295.5);
  for (const n of numbers) roundTrip(n, `number ${n}`);
  // and as map values, where the hot path meets them
  roundTrip(Object.fromEntries(numbers.map((n, i) => [`k${i}`, n])), "numbers in a map");
});

test("msgpack: strings, bytes, arrays and maps at every size boundary", () => {
  for (const n of [0, 1, 24, 25, 31, 32, 255, 256, 65535, 65536]) {
    roundTrip(ascii(n), `ASCII string of ${n}`);
    roundTrip(new Uint8Array(n).map((_, i) => i * 7), `bytes of ${n}`);
  }
  for (const n of [0, 15, 16, 65535, 65536]) {
    roundTrip(Array.from({ length: n }, (_, i) => i), `array of ${n}`);
    roundTrip(Object.fromEntries(Array.from({ length: n }, (_, i) => [`key${i}`, i])), `map of ${n}`);
  }
  // keys: long ones (str8 and str16 headers), and the map sizes where a cached shape stops
  for (const n of [31, 32, 200, 300]) roundTrip({ [ascii(n)]: 1, b: 2 }, `key of ${n} bytes`);
  for (const n of [63, 64, 65]) roundTrip(Object.fromEntries(Array.from({ length: n }, (_, i) => [`k${i}`, i / 3])), `map of ${n} keys`);
});

test("msgpack: what only the library handles gives the library's bytes and values", () => {
  const values: [string, unknown][] = [
    ["non-ASCII string", "Bitcoin ↑ 5 % — “ETF” news"],
    ["non-ASCII key", { "prix€": 1, pair: "XBT/EUR" }],
    ["lone surrogate", "a\ud800b"],
    ["Date", { at: new Date(1723163580123) }],
    ["other typed array", { xs: new Float32Array([1.5, 2.5]) }],
    ["Buffer", { data: Buffer.from("hello") }],
    ["class instance", { m: new Map([["a", 1]]) }],
    ["null prototype", Object.assign(Object.create(null) as object, { a: 1, b: "x" })],
    ["undefined in a map (skipped)", { a: 1, b: undefined, c: null }],
    ["undefined in an array (nil)", [1, undefined, 3]],
    ["holes", [1, , 3]], // eslint-disable-line no-sparse-arrays
    ["undefined making a 16-key map a fixmap", Object.fromEntries(Array.from({ length: 17 }, (_, i) => [`k${i}`, i < 2 ? undefined : i]))],
    ["integer-like keys", { b: 1, 2: "two", a: 3, 1: "one" }],
    ["nested", { a: { b: { c: [{ d: [1, { e: "f" }] }] } } }],
  ];
  for (const [what, v] of values) roundTrip(v, what);
  assert.throws(() => encodeMsgpack(10n), /Unrecognized object/); // the library's error, not ours
  const deep: unknown[] = [];
  let cur = deep;
  for (let i = 0; i < 120; i++) cur.push((cur = []));
  assert.throws(() => encodeMsgpack(deep), /Too deep/);
});

test("msgpack: an enumerable key added to Object.prototype is written as the library writes it", () => {
  const proto = Object.prototype as Record<string, unknown>;
  proto.injected = 1;
  try {
    roundTrip({ a: 1 }, "with an inherited enumerable key");
  } finally {
    delete proto.injected;
  }
});

test("msgpack: the messages of a run (indicators as the engine makes them, checkpoints), byte for byte", () => {
  const state = createIndicatorState(DEFAULT_INDICATORS);
  const bars = readCandlesCsv(CANDLE_FILE).slice(0, 300);
  let t = 1723163520000;
  for (const b of bars) {
    t += 60_000;
    const candle = { v: 1, pair: "XBT/EUR", tf: "1m", window_start_ms: t - 60_000, window_end_ms: t, ...b, vwap: b.close * 1.0001, trades: 59, flat: false };
    const values = updateIndicators(state, b);
    roundTrip(candle, "candle");
    roundTrip({ ...candle, values }, "indicators");
    roundTrip({ v: 1, pair: "XBT/EUR", horizon: "5m", horizon_s: 300, ts_ms: t, target_ts_ms: t + 300_000, base_price: b.close, predicted_return: 0, predicted_price: b.close, model: "persistence", model_version: 0 }, "prediction");
  }
  roundTrip({ v: 1, seq: 337, state, at: 1723163580000 }, "indicators checkpoint");
});

test("msgpack: random values, and their decoded objects encoded again", () => {
  let seed = 42;
  const rnd = (): number => ((seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) / 2 ** 32);
  const keys = ["v", "pair", "tf", "close", "values", "sma_7", "ts_ms", "x", "flat", "a".repeat(30)];
  const value = (depth: number): unknown => {
    const r = rnd();
    if (depth > 3 || r < 0.35) {
      const k = Math.floor(rnd() * 8);
      if (k === 0) return Math.floor((rnd() - 0.5) * 2 ** (rnd() * 60));
      if (k === 1) return (rnd() - 0.5) * 10 ** Math.floor(rnd() * 20);
      if (k === 2) return ascii(Math.floor(rnd() * 40));
      if (k === 3) return rnd() < 0.5;
      if (k === 4) return null;
      if (k === 5) return new Uint8Array(Math.floor(rnd() * 10));
      if (k === 6) return undefined;
      return Math.floor(rnd() * 300) - 40;
    }
    if (r < 0.5) return Array.from({ length: Math.floor(rnd() * 8) }, () => value(depth + 1));
    const o: Record<string, unknown> = {};
    const n = Math.floor(rnd() * (depth === 0 ? 20 : 8));
    for (let i = 0; i < n; i++) o[keys[Math.floor(rnd() * keys.length)] + (rnd() < 0.3 ? String(i) : "")] = value(depth + 1);
    return o;
  };
  for (let i = 0; i < 3000; i++) {
    const v = value(0);
    roundTrip(v, `random value ${i}`);
    // What the decoder made (objects of a cached shape) must encode to the same bytes again.
    const bytes = libEncoder.encode(v);
    assertSameBytes(decodeMsgpack(bytes), `random value ${i} decoded and encoded again`);
  }
});

test("msgpack: malformed input throws what the library throws, and a good message after it decodes", () => {
  const good = libEncoder.encode({ v: 1, pair: "XBT/EUR", values: { sma_7: 1.5, rsi_14: null }, flat: false });
  const cases: [string, Uint8Array][] = [["empty", new Uint8Array(0)], ["0xc1 (never used)", Uint8Array.of(0xc1)], ["extra bytes", Uint8Array.of(...good, 0x01)]];
  for (let cut = 1; cut < good.length; cut++) cases.push([`cut at ${cut}`, good.subarray(0, cut)]);
  cases.push(["__proto__ key", libEncoder.encode({ ["__proto__"]: 1 })]);
  cases.push(["__proto__ key, encoded by hand", Uint8Array.of(0x81, 0xa9, ...Buffer.from("__proto__"), 0x01)]);
  cases.push(["number key", Uint8Array.of(0x81, 0x01, 0x02)]);
  cases.push(["timestamp extension", libEncoder.encode(new Date(5))]);
  cases.push(["invalid UTF-8", Uint8Array.of(0xa2, 0xc3, 0x28)]);
  for (const [what, bytes] of cases) {
    let expected: unknown;
    let expectedErr: Error | null = null;
    try {
      expected = libDecoder.decode(bytes);
    } catch (err) {
      expectedErr = err as Error;
    }
    if (expectedErr) assert.throws(() => decodeMsgpack(bytes), (err: Error) => err.constructor === expectedErr!.constructor && err.message === expectedErr!.message, what);
    else assertSameValue(decodeMsgpack(bytes), expected, what);
    assertSameValue(decodeMsgpack(good), libDecoder.decode(good), `good message after ${what}`);
  }
});

test("msgpack: a decoded map is a fast object, and bytes are a view of the input as the library's", () => {
  const bytes = libEncoder.encode({ pair: "XBT/EUR", data: Uint8Array.of(1, 2, 3), values: Object.fromEntries(Array.from({ length: 24 }, (_, i) => [`v${i}`, i / 7])) });
  const a = decodeMsgpack(bytes) as { values: Record<string, number>; data: Uint8Array };
  const b = decodeMsgpack(bytes) as typeof a;
  assert.equal(Object.getPrototypeOf(a.values), Object.prototype);
  assert.notEqual(a.values, b.values); // a new object each time
  a.values.v0 = 99; // and one the caller may change
  assert.equal(b.values.v0, 0);
  assert.equal(a.data.buffer, bytes.buffer);
  assert.deepEqual([...a.data], [1, 2, 3]);
});
