// Forecast-evaluation statistics: error metrics, a binomial test of directional accuracy, and the
// Diebold–Mariano test of equal predictive accuracy. Written out here (no stats library) because
// the formulas are short and the tests check them against known values.

export type ForecastMetrics = {
  n: number;
  /** Mean absolute error of the predicted log return. */
  mae: number;
  rmse: number;
  /** The persistence baseline (predicts a zero return) on the same rows. */
  mae_persistence: number;
  rmse_persistence: number;
  /** mae / mae_persistence: below 1 means better than "the price stays where it is". */
  mae_ratio: number;
  /** Share of rows with a non-zero actual and predicted move where the signs agree. */
  hit_rate: number | null;
  hit_n: number;
  /** One-sided binomial p-value of hit_rate against a coin (0.5). */
  hit_pvalue: number | null;
  /** Diebold–Mariano statistic (negative: the model's absolute errors are smaller). */
  dm_stat: number | null;
  /** One-sided p-value of "the model is more accurate than persistence" (absolute-error loss). */
  dm_pvalue: number | null;
};

/** Metrics of `pred` against `actual` (log returns), with DM's HAC variance at lag `hacLag` (h − 1 for h-step forecasts). */
export function forecastMetrics(actual: number[], pred: number[], hacLag: number): ForecastMetrics {
  const n = actual.length;
  let ae = 0, se = 0, aeP = 0, seP = 0, hits = 0, hitN = 0;
  const d = new Array<number>(n);
  for (let i = 0; i < n; i++) {
    const e = actual[i] - pred[i];
    ae += Math.abs(e);
    se += e * e;
    aeP += Math.abs(actual[i]);
    seP += actual[i] * actual[i];
    d[i] = Math.abs(e) - Math.abs(actual[i]);
    if (actual[i] !== 0 && pred[i] !== 0) {
      hitN++;
      if (actual[i] > 0 === pred[i] > 0) hits++;
    }
  }
  const mae = n ? ae / n : NaN;
  const maeP = n ? aeP / n : NaN;
  const dm = dieboldMariano(d, hacLag);
  return {
    n, mae, rmse: Math.sqrt(se / n), mae_persistence: maeP, rmse_persistence: Math.sqrt(seP / n),
    mae_ratio: maeP > 0 ? mae / maeP : NaN,
    hit_rate: hitN ? hits / hitN : null, hit_n: hitN, hit_pvalue: hitN ? binomialUpperTail(hits, hitN) : null,
    dm_stat: dm?.stat ?? null, dm_pvalue: dm?.pvalue ?? null,
  };
}

/**
 * Diebold–Mariano on a loss differential d (model loss − benchmark loss). Long-run variance:
 * γ0 + 2·Σ_{k=1..lag} γk (the rectangular window of DM 1995, right for h-step forecasts whose
 * errors are MA(h−1)); if that is not positive, Newey–West (Bartlett) weights instead.
 * p-value: one-sided, small when the model's loss is smaller, from the normal distribution.
 * Returns null when the differential is identically zero (nothing to test).
 */
export function dieboldMariano(d: number[], lag: number): { stat: number; pvalue: number } | null {
  const n = d.length;
  if (n < 2) return null;
  let mean = 0;
  for (const x of d) mean += x;
  mean /= n;
  const gamma = (k: number) => {
    let s = 0;
    for (let t = k; t < n; t++) s += (d[t] - mean) * (d[t - k] - mean);
    return s / n;
  };
  const g0 = gamma(0);
  if (g0 === 0) return null;
  const gs: number[] = [];
  for (let k = 1; k <= Math.min(lag, n - 1); k++) gs.push(gamma(k));
  let v = g0 + 2 * gs.reduce((a, b) => a + b, 0);
  if (!(v > 0)) v = g0 + 2 * gs.reduce((a, g, i) => a + (1 - (i + 1) / (lag + 1)) * g, 0);
  if (!(v > 0)) v = g0;
  const stat = mean / Math.sqrt(v / n);
  return { stat, pvalue: normalCdf(stat) };
}

/** P(X ≥ k) for X ~ Binomial(n, 1/2), summed exactly in log space. */
export function binomialUpperTail(k: number, n: number): number {
  if (k <= 0) return 1;
  if (k > n) return 0;
  const ln2n = n * Math.LN2;
  const lnN = logGamma(n + 1);
  // Sum from the largest term down for accuracy.
  let max = -Infinity;
  const terms: number[] = [];
  for (let i = k; i <= n; i++) {
    const t = lnN - logGamma(i + 1) - logGamma(n - i + 1) - ln2n;
    terms.push(t);
    if (t > max) max = t;
  }
  let s = 0;
  for (const t of terms) s += Math.exp(t - max);
  return Math.min(1, Math.exp(max) * s);
}

/** Standard normal CDF, through the erfc approximation of Numerical Recipes (erfcc; fractional error < 1.2e-7). */
export function normalCdf(z: number): number {
  return 0.5 * erfc(-z / Math.SQRT2);
}

function erfc(x: number): number {
  const z = Math.abs(x);
  const t = 1 / (1 + 0.5 * z);
  const r = t * Math.exp(-z * z - 1.26551223 + t * (1.00002368 + t * (0.37409196 + t * (0.09678418 + t * (-0.18628806 +
    t * (0.27886807 + t * (-1.13520398 + t * (1.48851587 + t * (-0.82215223 + t * 0.17087277)))))))));
  return x >= 0 ? r : 2 - r;
}

/** ln Γ(x) for x > 0 (Lanczos, g = 7, n = 9). */
export function logGamma(x: number): number {
  const c = [0.99999999999980993, 676.5203681218851, -1259.1392167224028, 771.32342877765313, -176.61502916214059,
    12.507343278686905, -0.13857109526572012, 9.9843695780195716e-6, 1.5056327351493116e-7];
  if (x < 0.5) return Math.log(Math.PI / Math.sin(Math.PI * x)) - logGamma(1 - x);
  x -= 1;
  let a = c[0];
  const t = x + 7.5;
  for (let i = 1; i < 9; i++) a += c[i] / (x + i);
  return 0.5 * Math.log(2 * Math.PI) + (x + 0.5) * Math.log(t) - t + Math.log(a);
}
