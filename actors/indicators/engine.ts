// Streaming technical indicators for one (pair, timeframe): one closed candle in, this candle's values out.
//
// Every value equals what technicalindicators@3.1.0 returns in batch mode over the same candle series
// (its last element = the latest candle), bit for bit: the recurrences below replicate that library's
// formulas, evaluation order and quirks (see the notes at each indicator). We cannot keep the library's
// own `nextValue` objects because they are generators, and the state here is checkpointed to KV and
// restored after a crash: it must be plain data (numbers, arrays, null, plain objects; never
// NaN/Infinity) so that a restored copy continues exactly where the original left off, with no new
// warm-up.
//
// Deliberate deviations from the library, only where it would produce NaN and then stay NaN forever
// (NaN is neither a valid message value nor serializable state):
//  - ADX: +DI/−DI are 0 when the smoothed true range is 0, and DX is 0 when +DI + −DI is 0 (the
//    library divides 0 by 0). Happens only if every candle since the start had no range / no
//    directional move, e.g. a new, illiquid pair whose first candles are flat.
//  - Stochastic: %K is 0 when it is not finite (the library maps only NaN to 0; ±Infinity needs a
//    candle whose close lies outside [low, high]).
//  - Bars with a non-finite field are refused (RangeError) before the state is touched.
// The library's quirks for zero prices (e.g. its linked-list iteration stops at a 0 value) are not
// replicated: candle prices are > 0 (protocol/messages.ts).

export type IndicatorConfig = {
  sma: number[];
  ema: number[];
  rsi: number[];
  macd: { fast: number; slow: number; signal: number } | null;
  bb: { period: number; stddev: number } | null;
  atr: number[];
  obv: boolean;
  stoch: { period: number; signal: number } | null;
  adx: number[];
};

export type Bar = { open: number; high: number; low: number; close: number; volume: number };

/** Upper bound on any period: keeps the checkpointed state (ring buffers) bounded. */
export const MAX_PERIOD = 10_000;

export const DEFAULT_INDICATORS: IndicatorConfig = deepFreeze({
  sma: [7, 14, 21, 60],
  ema: [7, 14, 21, 60],
  rsi: [7, 14, 21],
  macd: { fast: 12, slow: 26, signal: 9 },
  bb: { period: 20, stddev: 2 },
  atr: [14],
  obv: true,
  stoch: { period: 14, signal: 3 },
  adx: [14],
});

/**
 * technicalindicators' EMA / WEMA: SMA of the first `period` inputs as the seed, then
 * `(x - prev) * alpha + prev`. `sum` is only meaningful until `value` is set.
 */
type EmaState = { sum: number; value: number | null };

type RsiState = { gainSum: number; lossSum: number; avgGain: number | null; avgLoss: number | null };

type AdxState = {
  /** Wilder-smoothed TR, +DM, −DM: plain sums during the first `period` inputs, then `s - s/period + x`. */
  tr: number;
  pdm: number;
  mdm: number;
  dx: EmaState;
};

export type IndicatorState = {
  v: 1;
  /** The config this state was created with: a restored state is self-describing. */
  cfg: IndicatorConfig;
  /** Bars applied so far; also the write position of every ring buffer below (n % length). */
  n: number;
  prevHigh: number | null;
  prevLow: number | null;
  prevClose: number | null;
  /** Ring of the last `closes.length` closes (max of the SMA and BB periods), for the moving windows. */
  closes: number[];
  /** Running window sums, parallel to cfg.sma. */
  sma: number[];
  ema: EmaState[];
  rsi: RsiState[];
  macd: {
    fast: EmaState;
    slow: EmaState;
    signal: EmaState;
    /** Inputs fed to the signal EMA so far (the library skips a bar when an oscillator EMA is 0). */
    signalN: number;
    macd: number | null;
    signalValue: number | null;
  } | null;
  /** upper/middle/lower: the last emitted bands (the library repeats them when the mean is 0). */
  bb: { sum: number; upper: number | null; middle: number | null; lower: number | null } | null;
  /** Parallel to cfg.atr; fed the true range from the second bar on. */
  atr: EmaState[];
  obv: { last: number | null; value: number } | null;
  stoch: {
    highs: number[];
    lows: number[];
    /** The library's maintained window extremes: high starts at 0, low at +Infinity (stored as null). */
    hi: number;
    lo: number | null;
    /** Ring and running sum of the last `signal` %K values, for %D. */
    ks: number[];
    kSum: number;
  } | null;
  adx: AdxState[];
};

export type IndicatorValues = Record<string, number | null>;

export function createIndicatorState(cfg: IndicatorConfig): IndicatorState {
  const why = validateIndicatorConfig(cfg);
  if (why) throw new Error(why);
  const c: IndicatorConfig = {
    sma: [...cfg.sma],
    ema: [...cfg.ema],
    rsi: [...cfg.rsi],
    macd: cfg.macd && { fast: cfg.macd.fast, slow: cfg.macd.slow, signal: cfg.macd.signal },
    bb: cfg.bb && { period: cfg.bb.period, stddev: cfg.bb.stddev },
    atr: [...cfg.atr],
    obv: cfg.obv,
    stoch: cfg.stoch && { period: cfg.stoch.period, signal: cfg.stoch.signal },
    adx: [...cfg.adx],
  };
  const ema = (): EmaState => ({ sum: 0, value: null });
  const window = Math.max(0, ...c.sma, c.bb ? c.bb.period : 0);
  return {
    v: 1,
    cfg: c,
    n: 0,
    prevHigh: null,
    prevLow: null,
    prevClose: null,
    closes: new Array<number>(window).fill(0),
    sma: c.sma.map(() => 0),
    ema: c.ema.map(ema),
    rsi: c.rsi.map(() => ({ gainSum: 0, lossSum: 0, avgGain: null, avgLoss: null })),
    macd: c.macd && { fast: ema(), slow: ema(), signal: ema(), signalN: 0, macd: null, signalValue: null },
    bb: c.bb && { sum: 0, upper: null, middle: null, lower: null },
    atr: c.atr.map(ema),
    obv: c.obv ? { last: null, value: 0 } : null,
    stoch: c.stoch && {
      highs: new Array<number>(c.stoch.period).fill(0),
      lows: new Array<number>(c.stoch.period).fill(0),
      hi: 0,
      lo: null,
      ks: new Array<number>(c.stoch.signal).fill(0),
      kSum: 0,
    },
    adx: c.adx.map(() => ({ tr: 0, pdm: 0, mdm: 0, dx: ema() })),
  };
}

/**
 * Applies one closed bar: mutates `state` in place and returns this bar's values (null while an
 * indicator warms up). Throws RangeError, leaving the state untouched, if a bar field is not finite.
 */
export function updateIndicators(state: IndicatorState, bar: Bar): IndicatorValues {
  const { high: h, low: l, close: x, volume } = bar;
  if (!(Number.isFinite(h) && Number.isFinite(l) && Number.isFinite(x) && Number.isFinite(volume))) {
    throw new RangeError(`bar has a non-finite field (high ${h}, low ${l}, close ${x}, volume ${volume})`);
  }
  const cfg = state.cfg;
  const keys = keysFor(cfg);
  const n = state.n;
  // Every bar of a config has the same names in the same order: start from the first bar's, so
  // each store below overwrites a field instead of adding one. Added one by one, 24 names left the
  // object in V8's dictionary mode (a hash table) for everyone who read or encoded it after.
  const out: IndicatorValues = keys.template ? { ...keys.template } : {};

  // SMA: running sum `sum - oldest + x`, exactly as the library does (so its float drift is ours too).
  // Oldest closes are read before this bar's close overwrites its ring slot.
  const closes = state.closes;
  const w = closes.length;
  for (let i = 0; i < cfg.sma.length; i++) {
    const p = cfg.sma[i];
    const s = (state.sma[i] = n >= p ? state.sma[i] - closes[(n - p) % w] + x : state.sma[i] + x);
    out[keys.sma[i]] = n >= p - 1 ? s / p : null;
  }
  let bbMean = 0;
  if (state.bb) {
    const p = cfg.bb!.period;
    const bb = state.bb;
    bb.sum = n >= p ? bb.sum - closes[(n - p) % w] + x : bb.sum + x;
    bbMean = n >= p - 1 ? bb.sum / p : 0;
  }
  if (w > 0) closes[n % w] = x;

  for (let i = 0; i < cfg.ema.length; i++) {
    const p = cfg.ema[i];
    out[keys.ema[i]] = emaPush(state.ema[i], p, 2 / (p + 1), x, n, true);
  }

  // RSI: averages seeded with the plain mean of the first `period` changes, then Wilder's
  // `(avg * (p - 1) + x) / p`; the result is rounded with toFixed(2) like the library.
  const pc = state.prevClose;
  for (let i = 0; i < cfg.rsi.length; i++) {
    const p = cfg.rsi[i];
    const r = state.rsi[i];
    let value: number | null = null;
    if (pc !== null) {
      let gain = x - pc;
      gain = gain > 0 ? gain : 0;
      let loss = pc - x;
      loss = loss > 0 ? loss : 0;
      if (r.avgGain === null || r.avgLoss === null) {
        if (gain > 0) r.gainSum = r.gainSum + gain;
        if (loss > 0) r.lossSum = r.lossSum + loss;
        if (n >= p) {
          r.avgGain = r.gainSum / p;
          r.avgLoss = r.lossSum / p;
        }
      } else {
        r.avgGain = (r.avgGain * (p - 1) + gain) / p;
        r.avgLoss = (r.avgLoss * (p - 1) + loss) / p;
      }
      if (r.avgGain !== null && r.avgLoss !== null) value = rsiOf(r.avgGain, r.avgLoss);
    }
    out[keys.rsi[i]] = value;
  }

  // MACD (EMA oscillator and signal): output from the slow period's first value; the library only
  // recomputes MACD and feeds the signal when both oscillator EMAs are truthy, reports a 0 signal
  // as missing, and computes the histogram whenever the signal is defined.
  if (state.macd) {
    const m = state.macd;
    const { fast: fp, slow: sp, signal: gp } = cfg.macd!;
    const fast = emaPush(m.fast, fp, 2 / (fp + 1), x, n, true);
    const slow = emaPush(m.slow, sp, 2 / (sp + 1), x, n, true);
    if (n >= sp - 1) {
      if (fast && slow) {
        m.macd = fast - slow;
        m.signalValue = emaPush(m.signal, gp, 2 / (gp + 1), m.macd, m.signalN, true);
        m.signalN++;
      }
      out.macd = m.macd;
      out.macd_signal = m.signalValue ? m.signalValue : null;
      out.macd_hist = m.macd !== null && m.signalValue !== null ? m.macd - m.signalValue : null;
    } else {
      // One by one, in the order the values above are set: the names' order is every bar's (see `template`).
      out.macd = null;
      out.macd_signal = null;
      out.macd_hist = null;
    }
  }

  // Bollinger: population standard deviation, summed oldest to newest with Math.pow like the library.
  if (state.bb) {
    const p = cfg.bb!.period;
    const bb = state.bb;
    if (bbMean) {
      let sq = 0;
      let j = (n - p + 1) % w;
      for (let k = 0; k < p; k++) {
        sq = sq + Math.pow(closes[j] - bbMean, 2);
        if (++j === w) j = 0;
      }
      const band = Math.sqrt(sq / p) * cfg.bb!.stddev;
      bb.middle = bbMean;
      bb.upper = bbMean + band;
      bb.lower = bbMean - band;
    }
    out.bb_upper = bb.upper;
    out.bb_middle = bb.middle;
    out.bb_lower = bb.lower;
  }

  // True range from the second bar on (the library emits none for the first).
  const tr = pc !== null ? Math.max(h - l, Math.abs(h - pc), Math.abs(l - pc)) : 0;

  // ATR: the library's WEMA (SMA seed, then alpha = 1/period) over the true range.
  for (let i = 0; i < cfg.atr.length; i++) {
    const p = cfg.atr[i];
    out[keys.atr[i]] = pc !== null ? emaPush(state.atr[i], p, 1 / p, tr, n - 1, false) : null;
  }

  // OBV: the first bar only records its close (the library emits nothing for it) unless that
  // close is 0, in which case the library emits 0 right away.
  if (state.obv) {
    const o = state.obv;
    if (o.last === null && x) {
      o.last = x;
      out.obv = null;
    } else {
      if (o.last !== null && o.last < x) o.value = o.value + volume;
      else if (o.last !== null && x < o.last) o.value = o.value - volume;
      o.last = x;
      out.obv = o.value;
    }
  }

  // Stochastic: the library's FixedSizeLinkedList extremes (rescanned only when the value leaving
  // the window was the extreme), %K unrounded, %D = SMA(signal) of %K by running sum.
  if (state.stoch) {
    const s = state.stoch;
    const { period: p, signal: g } = cfg.stoch!;
    const slot = n % p;
    if (n >= p) {
      const oldH = s.highs[slot];
      const oldL = s.lows[slot];
      s.highs[slot] = h;
      s.lows[slot] = l;
      if (oldH === s.hi) s.hi = ringExtreme(s.highs, slot, true);
      if (oldL === s.lo) s.lo = ringExtreme(s.lows, slot, false);
    } else {
      s.highs[slot] = h;
      s.lows[slot] = l;
    }
    if (s.hi <= h) s.hi = h;
    if (s.lo === null || s.lo >= l) s.lo = l;
    if (n >= p - 1) {
      let k = ((x - s.lo) / (s.hi - s.lo)) * 100;
      if (!Number.isFinite(k)) k = 0;
      const j = n - (p - 1);
      const kSlot = j % g;
      s.kSum = j >= g ? s.kSum - s.ks[kSlot] + k : s.kSum + k;
      s.ks[kSlot] = k;
      out.stoch_k = k;
      out.stoch_d = j >= g - 1 ? s.kSum / g : null;
    } else {
      out.stoch_k = null;
      out.stoch_d = null;
    }
  }

  // ADX: Wilder smoothing of TR/+DM/−DM (seeded with the plain sum), DI = DM * 100 / TR,
  // DX = |+DI − −DI| / (+DI + −DI) * 100, ADX = WEMA(period) of DX. The library reports
  // +DI/−DI only alongside ADX, so they stay null until ADX has warmed up too.
  if (cfg.adx.length > 0) {
    let pdm = 0;
    let mdm = 0;
    if (pc !== null) {
      const up = h - state.prevHigh!;
      const down = state.prevLow! - l;
      pdm = up > down && up > 0 ? up : 0;
      mdm = down > up && down > 0 ? down : 0;
    }
    for (let i = 0; i < cfg.adx.length; i++) {
      const p = cfg.adx[i];
      const a = state.adx[i];
      let adx: number | null = null;
      let pdi = 0;
      let mdi = 0;
      if (pc !== null) {
        const j = n - 1;
        if (j <= p - 1) {
          a.tr = a.tr + tr;
          a.pdm = a.pdm + pdm;
          a.mdm = a.mdm + mdm;
        } else {
          a.tr = a.tr - a.tr / p + tr;
          a.pdm = a.pdm - a.pdm / p + pdm;
          a.mdm = a.mdm - a.mdm / p + mdm;
        }
        if (j >= p - 1) {
          if (a.tr !== 0) {
            pdi = (a.pdm * 100) / a.tr;
            mdi = (a.mdm * 100) / a.tr;
          }
          const sum = pdi + mdi;
          const dx = sum !== 0 ? (Math.abs(pdi - mdi) / sum) * 100 : 0;
          adx = emaPush(a.dx, p, 1 / p, dx, j - (p - 1), false);
        }
      }
      out[keys.adx[i]] = adx;
      out[keys.pdi[i]] = adx === null ? null : pdi;
      out[keys.mdi[i]] = adx === null ? null : mdi;
    }
  }

  state.prevHigh = h;
  state.prevLow = l;
  state.prevClose = x;
  state.n = n + 1;
  // JSON.parse makes an object of fast properties, and spreading it copies them as they are.
  keys.template ??= JSON.parse(JSON.stringify(Object.fromEntries(Object.keys(out).map((k) => [k, null])))) as IndicatorValues;
  return out;
}

/**
 * Feeds input number `i` (0-based) of an EMA/WEMA. `zeroSeedQuirk`: the library's EMA tests its
 * seed for truthiness, so a seed of exactly 0 is not emitted; it applies the recurrence to the same
 * input instead (WEMA tests `!== undefined` and has no such quirk).
 */
function emaPush(e: EmaState, period: number, alpha: number, x: number, i: number, zeroSeedQuirk: boolean): number | null {
  if (e.value !== null) return (e.value = (x - e.value) * alpha + e.value);
  e.sum = e.sum + x;
  if (i < period - 1) return null;
  const seed = e.sum / period;
  e.value = seed || !zeroSeedQuirk ? seed : (x - seed) * alpha + seed;
  return e.value;
}

function rsiOf(avgGain: number, avgLoss: number): number {
  if (avgLoss === 0) return 100;
  if (avgGain === 0) return 0;
  let rs = avgGain / avgLoss;
  rs = isNaN(rs) ? 0 : rs;
  return parseFloat((100 - 100 / (1 + rs)).toFixed(2));
}

/** Max (or min) of a full ring, scanned oldest to newest like the library; `newest` is the latest slot. */
function ringExtreme(ring: number[], newest: number, max: boolean): number {
  const len = ring.length;
  let j = newest + 1 === len ? 0 : newest + 1;
  let v = ring[j];
  for (let k = 1; k < len; k++) {
    if (++j === len) j = 0;
    const c = ring[j];
    if (max ? v <= c : v >= c) v = c;
  }
  return v;
}

type Keys = { sma: string[]; ema: string[]; rsi: string[]; atr: string[]; adx: string[]; pdi: string[]; mdi: string[]; template?: IndicatorValues };

// Output names built once per config object rather than per bar.
const keyCache = new WeakMap<IndicatorConfig, Keys>();

function keysFor(cfg: IndicatorConfig): Keys {
  let k = keyCache.get(cfg);
  if (!k) {
    const names = (prefix: string, ps: number[]) => ps.map((p) => `${prefix}_${p}`);
    k = {
      sma: names("sma", cfg.sma),
      ema: names("ema", cfg.ema),
      rsi: names("rsi", cfg.rsi),
      atr: names("atr", cfg.atr),
      adx: names("adx", cfg.adx),
      pdi: names("pdi", cfg.adx),
      mdi: names("mdi", cfg.adx),
    };
    keyCache.set(cfg, k);
  }
  return k;
}

const FIELDS = ["sma", "ema", "rsi", "macd", "bb", "atr", "obv", "stoch", "adx"] as const;

/** null when `x` is a valid IndicatorConfig, else a one-line message naming the first bad field. */
export function validateIndicatorConfig(x: unknown): string | null {
  if (!isPlainObject(x)) return `indicators: must be an object (got ${preview(x)})`;
  for (const k of Object.keys(x)) {
    if (!(FIELDS as readonly string[]).includes(k)) return `indicators.${k}: unknown field`;
  }
  for (const f of ["sma", "ema", "rsi", "atr", "adx"] as const) {
    const why = periodList(`indicators.${f}`, x[f]);
    if (why) return why;
  }
  const macd = x.macd;
  if (macd !== null) {
    const why =
      objectWith("indicators.macd", macd, ["fast", "slow", "signal"]) ??
      period("indicators.macd.fast", (macd as Record<string, unknown>).fast, 1) ??
      period("indicators.macd.slow", (macd as Record<string, unknown>).slow, 2) ??
      period("indicators.macd.signal", (macd as Record<string, unknown>).signal, 1);
    if (why) return why;
    const { fast, slow } = macd as { fast: number; slow: number };
    // The library's MACD emits from the slow EMA's first value and needs the fast one by then.
    if (fast >= slow) return `indicators.macd.fast: must be less than indicators.macd.slow (got ${fast} >= ${slow})`;
  }
  const bb = x.bb;
  if (bb !== null) {
    const why = objectWith("indicators.bb", bb, ["period", "stddev"]) ?? period("indicators.bb.period", (bb as Record<string, unknown>).period, 2);
    if (why) return why;
    const sd = (bb as Record<string, unknown>).stddev;
    if (typeof sd !== "number" || !Number.isFinite(sd) || sd <= 0) return `indicators.bb.stddev: must be a finite number > 0 (got ${preview(sd)})`;
  }
  if (typeof x.obv !== "boolean") return `indicators.obv: must be a boolean (got ${preview(x.obv)})`;
  const stoch = x.stoch;
  if (stoch !== null) {
    const why =
      objectWith("indicators.stoch", stoch, ["period", "signal"]) ??
      period("indicators.stoch.period", (stoch as Record<string, unknown>).period, 2) ??
      period("indicators.stoch.signal", (stoch as Record<string, unknown>).signal, 1);
    if (why) return why;
  }
  return null;
}

function periodList(field: string, v: unknown): string | null {
  if (!Array.isArray(v)) return `${field}: must be an array of periods (got ${preview(v)})`;
  for (let i = 0; i < v.length; i++) {
    const why = period(`${field}[${i}]`, v[i], 2);
    if (why) return why;
    // Two equal periods would write the same output name twice.
    if (v.indexOf(v[i]) !== i) return `${field}[${i}]: duplicate period ${v[i]}`;
  }
  return null;
}

function period(field: string, v: unknown, min: number): string | null {
  if (typeof v !== "number" || !Number.isInteger(v) || v < min) return `${field}: must be an integer >= ${min} (got ${preview(v)})`;
  if (v > MAX_PERIOD) return `${field}: must be <= ${MAX_PERIOD} (got ${v})`;
  return null;
}

function objectWith(field: string, v: unknown, keys: string[]): string | null {
  if (!isPlainObject(v)) return `${field}: must be an object or null (got ${preview(v)})`;
  for (const k of Object.keys(v)) if (!keys.includes(k)) return `${field}.${k}: unknown field`;
  return null;
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  if (typeof v !== "object" || v === null || Array.isArray(v)) return false;
  const proto = Object.getPrototypeOf(v);
  return proto === Object.prototype || proto === null;
}

function preview(v: unknown): string {
  if (v === undefined) return "nothing";
  const s = typeof v === "number" ? String(v) : JSON.stringify(v);
  return s === undefined ? String(v) : s.length > 40 ? `${s.slice(0, 37)}...` : s;
}

function deepFreeze<T>(o: T): T {
  if (typeof o === "object" && o !== null) {
    for (const v of Object.values(o)) deepFreeze(v);
    Object.freeze(o);
  }
  return o;
}
