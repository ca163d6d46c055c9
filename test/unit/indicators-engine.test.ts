import { test } from "node:test";
import assert from "node:assert/strict";
import { decode, encode } from "@msgpack/msgpack";
import { ADX, ATR, BollingerBands, EMA, MACD, OBV, RSI, SMA, Stochastic } from "technicalindicators";
import {
  createIndicatorState,
  DEFAULT_INDICATORS,
  updateIndicators,
  validateIndicatorConfig,
  type Bar,
  type IndicatorConfig,
  type IndicatorState,
  type IndicatorValues,
} from "../../actors/indicators/engine.js";
import { CANDLE_FILE, readCandlesCsv } from "../harness/data.js";

const BARS: Bar[] = readCandlesCsv(CANDLE_FILE).map(({ open, high, low, close, volume }) => ({ open, high, low, close, volume }));

type Series = (number | null)[];
/** Expected values per output name, one per bar (null where technicalindicators has none). */
type Expected = Record<string, Series>;

function run(cfg: IndicatorConfig, bars: Bar[]): IndicatorValues[] {
  const s = createIndicatorState(cfg);
  return bars.map((b) => updateIndicators(s, b));
}

/** A batch result aligned so that its last element is the last bar; undefined/missing → null. */
function alignEnd<T>(n: number, batch: T[], pick: (r: T) => number | undefined): Series {
  assert.ok(batch.length <= n, `batch longer than its input (${batch.length} > ${n})`);
  const out: Series = new Array(n - batch.length).fill(null);
  for (const r of batch) {
    const v = pick(r);
    out.push(v === undefined ? null : v);
  }
  return out;
}

/** What technicalindicators returns in batch mode over `bars`, for every output of `cfg`. */
function batchExpected(cfg: IndicatorConfig, bars: Bar[]): { want: Expected; batchLength: Record<string, number> } {
  const n = bars.length;
  const values = bars.map((b) => b.close);
  const high = bars.map((b) => b.high);
  const low = bars.map((b) => b.low);
  const close = values;
  const volume = bars.map((b) => b.volume);
  const want: Expected = {};
  const batchLength: Record<string, number> = {};
  const put = <T>(name: string, batch: T[], pick: (r: T) => number | undefined) => {
    want[name] = alignEnd(n, batch, pick);
    batchLength[name] = batch.length;
  };
  const num = (v: number) => v;
  for (const period of cfg.sma) put(`sma_${period}`, SMA.calculate({ period, values }), num);
  for (const period of cfg.ema) put(`ema_${period}`, EMA.calculate({ period, values }), num);
  for (const period of cfg.rsi) put(`rsi_${period}`, RSI.calculate({ period, values }), num);
  if (cfg.macd) {
    const r = MACD.calculate({
      values,
      fastPeriod: cfg.macd.fast,
      slowPeriod: cfg.macd.slow,
      signalPeriod: cfg.macd.signal,
      SimpleMAOscillator: false,
      SimpleMASignal: false,
    });
    put("macd", r, (x) => x.MACD);
    put("macd_signal", r, (x) => x.signal);
    put("macd_hist", r, (x) => x.histogram);
  }
  if (cfg.bb) {
    const r = BollingerBands.calculate({ period: cfg.bb.period, stdDev: cfg.bb.stddev, values });
    put("bb_upper", r, (x) => x.upper);
    put("bb_middle", r, (x) => x.middle);
    put("bb_lower", r, (x) => x.lower);
  }
  for (const period of cfg.atr) put(`atr_${period}`, ATR.calculate({ high, low, close, period }), num);
  if (cfg.obv) put("obv", OBV.calculate({ close, volume }), num);
  if (cfg.stoch) {
    const r = Stochastic.calculate({ high, low, close, period: cfg.stoch.period, signalPeriod: cfg.stoch.signal });
    put("stoch_k", r, (x) => x.k);
    put("stoch_d", r, (x) => x.d);
  }
  for (const period of cfg.adx) {
    const r = ADX.calculate({ high, low, close, period });
    put(`adx_${period}`, r, (x) => x.adx);
    put(`pdi_${period}`, r, (x) => x.pdi);
    put(`mdi_${period}`, r, (x) => x.mdi);
  }
  return { want, batchLength };
}

const TOL = 1e-9;

/** Compares one output series; returns the largest |a-b| seen. `exact`: the library rounds, so must be ===. */
function compareSeries(name: string, got: IndicatorValues[], want: Series, exact = false, label = name): number {
  assert.equal(got.length, want.length, `${label}: series length`);
  let maxDiff = 0;
  for (let i = 0; i < want.length; i++) {
    const a = got[i][name];
    const b = want[i];
    assert.ok(a !== undefined, `${label}: missing from the output at bar ${i}`);
    if (b === null || a === null) {
      assert.equal(a, b, `${label} at bar ${i}: got ${a}, technicalindicators ${b}`);
      continue;
    }
    assert.ok(Number.isFinite(a), `${label} at bar ${i}: not finite (${a})`);
    const d = Math.abs(a - b);
    if (exact) assert.ok(a === b, `${label} at bar ${i}: got ${a}, technicalindicators ${b}`);
    else assert.ok(d <= TOL * Math.max(1, Math.abs(b)), `${label} at bar ${i}: got ${a}, technicalindicators ${b} (diff ${d})`);
    if (d > maxDiff) maxDiff = d;
  }
  return maxDiff;
}

function leadingNulls(got: IndicatorValues[], name: string): number {
  let i = 0;
  while (i < got.length && got[i][name] === null) i++;
  return i;
}

// The real-data run is shared by the per-indicator tests: computed once, lazily.
let real: { got: IndicatorValues[]; want: Expected; batchLength: Record<string, number> } | undefined;
function realRun() {
  real ??= { got: run(DEFAULT_INDICATORS, BARS), ...batchExpected(DEFAULT_INDICATORS, BARS) };
  return real;
}

function checkReal(t: { diagnostic(m: string): void }, names: string[], exact = false, warmupFromBatchLength = true) {
  const { got, want, batchLength } = realRun();
  assert.equal(BARS.length, 3000);
  for (const name of names) {
    assert.ok(name in want, `no batch series for ${name}`);
    // Every bar of the batch's warm-up is null and nothing after it (the batch has no gaps on this data).
    if (warmupFromBatchLength) assert.equal(leadingNulls(got, name), BARS.length - batchLength[name], `${name}: warm-up length`);
    const d = compareSeries(name, got, want[name], exact);
    t.diagnostic(`${name}: warm-up ${leadingNulls(got, name)} bars, max |diff| vs batch ${d}`);
  }
}

test("indicators - sma equals technicalindicators batch", (t) => {
  checkReal(t, DEFAULT_INDICATORS.sma.map((p) => `sma_${p}`));
});

test("indicators - ema equals technicalindicators batch", (t) => {
  checkReal(t, DEFAULT_INDICATORS.ema.map((p) => `ema_${p}`));
});

test("indicators - rsi equals technicalindicators batch", (t) => {
  checkReal(t, DEFAULT_INDICATORS.rsi.map((p) => `rsi_${p}`), true);
});

test("indicators - macd equals technicalindicators batch", (t) => {
  checkReal(t, ["macd"]);
  // The batch emits {MACD, signal: undefined} objects while the signal EMA warms up.
  checkReal(t, ["macd_signal", "macd_hist"], false, false);
  const { got } = realRun();
  const { slow, signal } = DEFAULT_INDICATORS.macd!;
  assert.equal(leadingNulls(got, "macd"), slow - 1);
  assert.equal(leadingNulls(got, "macd_signal"), slow - 1 + signal - 1);
  assert.equal(leadingNulls(got, "macd_hist"), slow - 1 + signal - 1);
});

test("indicators - bollinger bands equal technicalindicators batch", (t) => {
  checkReal(t, ["bb_upper", "bb_middle", "bb_lower"]);
});

test("indicators - atr equals technicalindicators batch", (t) => {
  checkReal(t, DEFAULT_INDICATORS.atr.map((p) => `atr_${p}`));
});

test("indicators - obv equals technicalindicators batch", (t) => {
  checkReal(t, ["obv"]);
});

test("indicators - stochastic equals technicalindicators batch", (t) => {
  checkReal(t, ["stoch_k"]);
  checkReal(t, ["stoch_d"], false, false);
  const { got } = realRun();
  const { period, signal } = DEFAULT_INDICATORS.stoch!;
  assert.equal(leadingNulls(got, "stoch_d"), period - 1 + signal - 1);
});

test("indicators - adx, +di, -di equal technicalindicators batch", (t) => {
  checkReal(t, DEFAULT_INDICATORS.adx.flatMap((p) => [`adx_${p}`, `pdi_${p}`, `mdi_${p}`]));
});

test("indicators - on this data every value is bit-identical to the batch (same formulas, same order)", () => {
  const { got, want } = realRun();
  let compared = 0;
  for (const [name, series] of Object.entries(want)) {
    series.forEach((b, i) => {
      assert.ok(got[i][name] === b, `${name} at bar ${i}: got ${got[i][name]}, technicalindicators ${b}`);
      if (b !== null) compared++;
    });
  }
  assert.ok(compared > 50_000, `only ${compared} values compared`);
});

test("indicators - the default config emits exactly the DESIGN output names", () => {
  const { got } = realRun();
  const names = [
    "sma_7", "sma_14", "sma_21", "sma_60", "ema_7", "ema_14", "ema_21", "ema_60", "rsi_7", "rsi_14", "rsi_21",
    "macd", "macd_signal", "macd_hist", "bb_upper", "bb_middle", "bb_lower", "atr_14", "obv", "stoch_k", "stoch_d",
    "adx_14", "pdi_14", "mdi_14",
  ];
  assert.deepEqual(Object.keys(got[0]).sort(), [...names].sort());
  assert.deepEqual(Object.keys(got[got.length - 1]).sort(), [...names].sort());
  assert.ok(Object.values(got[got.length - 1]).every((v) => typeof v === "number" && Number.isFinite(v)), "all warmed up by the last bar");
});

const ALL_OUTPUTS = (want: Expected) => Object.keys(want);

test("indicators - warm-up boundaries: every short prefix equals the batch over that prefix", () => {
  // Batch over each prefix (not one batch aligned at the end): checks that the engine's value at a
  // bar depends only on the bars up to it, and the first value of each indicator lands on the batch's.
  const got = run(DEFAULT_INDICATORS, BARS.slice(0, 90));
  for (let m = 1; m <= 90; m++) {
    const { want } = batchExpected(DEFAULT_INDICATORS, BARS.slice(0, m));
    const prefix = got.slice(0, m);
    for (const name of ALL_OUTPUTS(want)) compareSeries(name, prefix, want[name], name.startsWith("rsi_"), `${name} (prefix of ${m} bars)`);
  }
});

test("indicators - custom periods (and disabled indicators) equal technicalindicators batch", () => {
  const cfg: IndicatorConfig = {
    sma: [3, 50],
    ema: [2, 33],
    rsi: [2, 5],
    macd: { fast: 3, slow: 8, signal: 1 },
    bb: { period: 5, stddev: 1.5 },
    atr: [2, 30],
    obv: false,
    stoch: { period: 5, signal: 1 },
    adx: [2, 9],
  };
  const bars = BARS.slice(0, 800);
  const got = run(cfg, bars);
  const { want } = batchExpected(cfg, bars);
  for (const name of ALL_OUTPUTS(want)) compareSeries(name, got, want[name], name.startsWith("rsi_"));
  assert.deepEqual(Object.keys(got[0]).sort(), ALL_OUTPUTS(want).sort());

  const none: IndicatorConfig = { sma: [], ema: [], rsi: [], macd: null, bb: null, atr: [], obv: false, stoch: null, adx: [] };
  assert.deepEqual(run(none, bars.slice(0, 3)), [{}, {}, {}]);
});

test("indicators - macd replicates technicalindicators' zero-seed quirks of its signal EMA", () => {
  // MACD -0.5 then +0.5: the signal's SMA seed is exactly 0, which the library's EMA treats as "no
  // value yet" and answers with the recurrence on the same input instead: 0.5 * 2/3, not 0.
  const cfg: IndicatorConfig = { sma: [], ema: [], rsi: [], macd: { fast: 2, slow: 3, signal: 2 }, bb: null, atr: [], obv: false, stoch: null, adx: [] };
  const bars = [1, 4, 1, 6, 5, 9, 2, 2, 2].map((c) => ({ open: c, high: c, low: c, close: c, volume: 1 }));
  const got = run(cfg, bars);
  const { want } = batchExpected(cfg, bars);
  for (const name of ["macd", "macd_signal", "macd_hist"]) compareSeries(name, got, want[name]);
  assert.deepEqual([got[2].macd, got[3].macd, got[3].macd_signal], [-0.5, 0.5, 1 / 3]);
});

/** Deterministic PRNG (mulberry32) so a failure reproduces. */
function rng(seed: number) {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Candles on a 0.5 tick grid: `shape` lists [kind, length] segments. Flat = no trades (h = l = c, volume 0). */
function synthetic(seed: number, shape: [("up" | "down" | "flat" | "walk"), number][]): Bar[] {
  const r = rng(seed);
  const tick = () => Math.round(r() * 6) * 0.5;
  let price = 20_000;
  const bars: Bar[] = [];
  for (const [kind, len] of shape) {
    for (let i = 0; i < len; i++) {
      if (kind === "flat") {
        bars.push({ open: price, high: price, low: price, close: price, volume: 0 });
        continue;
      }
      const open = price;
      const step = kind === "up" ? 0.5 + tick() : kind === "down" ? -0.5 - tick() : tick() - 1.5;
      const close = open + step;
      bars.push({ open, high: Math.max(open, close) + tick(), low: Math.min(open, close) - tick(), close, volume: Math.round(r() * 1e5) / 1e3 });
      price = close;
    }
  }
  return bars;
}

/** Throws unless `v` is plain JSON/msgpack data with finite numbers only. */
function assertPlainData(v: unknown, path = "state"): void {
  if (v === null || typeof v === "boolean" || typeof v === "string") return;
  if (typeof v === "number") {
    assert.ok(Number.isFinite(v), `${path}: ${v} is not finite`);
    return;
  }
  if (Array.isArray(v)) {
    v.forEach((x, i) => assertPlainData(x, `${path}[${i}]`));
    return;
  }
  assert.ok(typeof v === "object" && Object.getPrototypeOf(v) === Object.prototype, `${path}: not a plain object`);
  for (const [k, x] of Object.entries(v as object)) {
    assert.notEqual(x, undefined, `${path}.${k}: undefined`);
    assertPlainData(x, `${path}.${k}`);
  }
}

test("indicators - synthetic runs, flat stretches and no-trade candles equal technicalindicators batch", () => {
  // Rising / falling openings make the first RSI averages 0 (RSI 100 / 0); flat stretches make the
  // stochastic range 0 (the library's NaN → 0) and the Bollinger deviation 0.
  for (const [seed, first] of [[1, "up"], [2, "down"], [3, "walk"]] as const) {
    const bars = synthetic(seed, [[first, 40], ["walk", 200], ["flat", 30], ["up", 25], ["flat", 16], ["down", 40], ["walk", 300]]);
    const s = createIndicatorState(DEFAULT_INDICATORS);
    const got = bars.map((b) => {
      const v = updateIndicators(s, b);
      assertPlainData(s);
      return v;
    });
    const { want } = batchExpected(DEFAULT_INDICATORS, bars);
    for (const name of ALL_OUTPUTS(want)) compareSeries(`${name}`, got, want[name], name.startsWith("rsi_"));
    if (first !== "walk") assert.equal(got[14].rsi_14, first === "up" ? 100 : 0, "the RSI extreme branch was exercised");
    assert.ok(got.some((v) => v.stoch_k === 0 && v.bb_upper === v.bb_lower), "a zero-range window was exercised");
  }
});

test("indicators - a pair that opens with no-trade candles gets a finite ADX where technicalindicators' is NaN forever", () => {
  const bars = synthetic(4, [["flat", 40], ["walk", 300]]);
  const s = createIndicatorState(DEFAULT_INDICATORS);
  const got = bars.map((b) => {
    const v = updateIndicators(s, b);
    assertPlainData(s);
    return v;
  });
  const { want } = batchExpected(DEFAULT_INDICATORS, bars);
  for (const name of ALL_OUTPUTS(want)) {
    if (name === "adx_14") continue;
    // +DI/−DI recover in the library once the true range is > 0; compare them wherever it has a number.
    const w = want[name].map((v, i) => (Number.isNaN(v) ? got[i][name] : v));
    compareSeries(name, got, w, name.startsWith("rsi_"));
  }
  assert.ok(want.pdi_14.slice(27).some((v) => Number.isNaN(v)) && want.pdi_14.slice(-1).every((v) => Number.isFinite(v)));
  // The deliberate deviation: the library divides 0 by 0 and the NaN never leaves its smoothing.
  assert.ok(want.adx_14.slice(27).every((v) => Number.isNaN(v)), "technicalindicators no longer gives NaN here: revisit the ADX guard");
  assert.equal(leadingNulls(got, "adx_14"), 27);
  for (const v of got.slice(27)) {
    for (const k of ["adx_14", "pdi_14", "mdi_14"]) assert.ok(Number.isFinite(v[k]), `${k} = ${v[k]}`);
  }
  assert.equal(got[39].adx_14, 0, "no directional movement yet");
  // Constant prices make MACD exactly 0; the library reports a 0 signal as missing but still its histogram.
  assert.deepEqual([got[39].macd, got[39].macd_signal, got[39].macd_hist], [0, null, 0]);
  assert.ok(got[got.length - 1].adx_14! > 0, "ADX reacts once prices move");
});

test("indicators - restoring a JSON or msgpack checkpoint continues exactly like an uninterrupted run", () => {
  const straight = run(DEFAULT_INDICATORS, BARS);
  const finalStraight = createIndicatorState(DEFAULT_INDICATORS);
  for (const b of BARS) updateIndicators(finalStraight, b);

  const roundTrips: [string, (s: IndicatorState) => IndicatorState][] = [
    ["json", (s) => JSON.parse(JSON.stringify(s)) as IndicatorState],
    ["msgpack", (s) => decode(encode(s)) as IndicatorState],
  ];
  for (const [how, roundTrip] of roundTrips) {
    // 1500 as the brief's mid-run crash; the early ones land inside warm-ups (SMA 60, MACD signal, ADX).
    for (const checkpoints of [[1500], [1, 13, 27, 34, 59, 1500, 2999]]) {
      let s = createIndicatorState(DEFAULT_INDICATORS);
      const got: IndicatorValues[] = [];
      BARS.forEach((b, i) => {
        if (checkpoints.includes(i)) {
          assertPlainData(s);
          const restored = roundTrip(s);
          assert.deepEqual(restored, s, `${how}: round trip at bar ${i} changed the state`);
          s = restored;
        }
        got.push(updateIndicators(s, b));
      });
      for (let i = 0; i < BARS.length; i++) {
        for (const [k, v] of Object.entries(straight[i])) {
          assert.ok(got[i][k] === v, `${how} ${checkpoints}: ${k} at bar ${i}: restored ${got[i][k]}, uninterrupted ${v}`);
        }
        assert.equal(Object.keys(got[i]).length, Object.keys(straight[i]).length);
      }
      assert.deepEqual(s, finalStraight, `${how}: final state`);
    }
  }
});

test("indicators - the state stays bounded: its size does not grow with the number of bars", () => {
  const s = createIndicatorState(DEFAULT_INDICATORS);
  const sizes: number[] = [];
  BARS.forEach((b, i) => {
    updateIndicators(s, b);
    if (i === 100 || i === 2999) sizes.push(encode(s).length);
  });
  // Same shape, same array lengths; only number encodings (int vs float) may vary a little.
  assert.ok(Math.abs(sizes[0] - sizes[1]) < 200, `state grew from ${sizes[0]} to ${sizes[1]} bytes`);
  assert.ok(sizes[1] < 4000, `state is ${sizes[1]} bytes`);
});

test("indicators - a bar with a non-finite field is refused and leaves the state untouched", () => {
  const s = createIndicatorState(DEFAULT_INDICATORS);
  for (const b of BARS.slice(0, 50)) updateIndicators(s, b);
  const before = JSON.parse(JSON.stringify(s));
  for (const field of ["high", "low", "close", "volume"] as const) {
    for (const bad of [NaN, Infinity]) {
      assert.throws(() => updateIndicators(s, { ...BARS[50], [field]: bad }), RangeError);
      assert.deepEqual(s, before);
    }
  }
});

test("indicators - config validation names the bad field", () => {
  assert.equal(validateIndicatorConfig(DEFAULT_INDICATORS), null);
  assert.equal(validateIndicatorConfig({ sma: [], ema: [], rsi: [], macd: null, bb: null, atr: [], obv: false, stoch: null, adx: [] }), null);
  const bad = (patch: Record<string, unknown>) => ({ ...DEFAULT_INDICATORS, ...patch });
  const cases: [unknown, string][] = [
    [null, "indicators: must be an object (got null)"],
    [[1], "indicators: must be an object (got [1])"],
    [bad({ rsi: [14, 0] }), "indicators.rsi[1]: must be an integer >= 2 (got 0)"],
    [bad({ sma: [7, 7.5] }), "indicators.sma[1]: must be an integer >= 2 (got 7.5)"],
    [bad({ ema: [7, "14"] }), 'indicators.ema[1]: must be an integer >= 2 (got "14")'],
    [bad({ atr: [14, 14] }), "indicators.atr[1]: duplicate period 14"],
    [bad({ adx: 14 }), "indicators.adx: must be an array of periods (got 14)"],
    [bad({ sma: [100_000] }), "indicators.sma[0]: must be <= 10000 (got 100000)"],
    [bad({ macd: { fast: 26, slow: 12, signal: 9 } }), "indicators.macd.fast: must be less than indicators.macd.slow (got 26 >= 12)"],
    [bad({ macd: { fast: 12, slow: 26 } }), "indicators.macd.signal: must be an integer >= 1 (got nothing)"],
    [bad({ macd: { fast: 12, slow: 26, signal: 9, kind: "sma" } }), "indicators.macd.kind: unknown field"],
    [bad({ bb: { period: 20, stddev: -2 } }), "indicators.bb.stddev: must be a finite number > 0 (got -2)"],
    [bad({ bb: { period: 1, stddev: 2 } }), "indicators.bb.period: must be an integer >= 2 (got 1)"],
    [bad({ obv: "yes" }), 'indicators.obv: must be a boolean (got "yes")'],
    [bad({ stoch: { period: 14, signal: 0 } }), "indicators.stoch.signal: must be an integer >= 1 (got 0)"],
    [bad({ stoch: [14, 3] }), "indicators.stoch: must be an object or null (got [14,3])"],
    [bad({ wma: [10] }), "indicators.wma: unknown field"],
    [{ ...DEFAULT_INDICATORS, ema: undefined }, "indicators.ema: must be an array of periods (got nothing)"],
  ];
  for (const [cfg, message] of cases) assert.equal(validateIndicatorConfig(cfg), message);
  assert.throws(() => createIndicatorState(bad({ rsi: [0] }) as IndicatorConfig), /indicators\.rsi\[0\]/);
});

test("indicators - the state keeps its own copy of the config", () => {
  const cfg: IndicatorConfig = { ...DEFAULT_INDICATORS, sma: [5] };
  const s = createIndicatorState(cfg);
  cfg.sma.push(9);
  assert.deepEqual(s.cfg.sma, [5]);
  assert.deepEqual(Object.keys(updateIndicators(s, BARS[0])).filter((k) => k.startsWith("sma_")), ["sma_5"]);
  assert.ok(Object.isFrozen(DEFAULT_INDICATORS.sma), "DEFAULT_INDICATORS is shared and must not be mutated");
});

test("indicators: every bar's values have the same names in the same order, warm-up included", () => {
  const state = createIndicatorState(DEFAULT_INDICATORS);
  const orders = BARS.slice(0, 80).map((b) => Object.keys(updateIndicators(state, b)).join(","));
  assert.equal(new Set(orders).size, 1, `orders seen: ${[...new Set(orders)].join(" | ")}`);
  assert.match(orders[0], /macd,macd_signal,macd_hist/);
  assert.match(orders[0], /stoch_k,stoch_d/);
});
