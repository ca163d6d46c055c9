// Walk-forward evaluation of the candidate models, with a small hyper-parameter search inside each
// fold's own training data (never on its test block), then a final fit on all rows. Every number
// it reports is out of sample: a fold's test rows are never seen by the model or by the choice of
// its hyper-parameters.
import type { Dataset } from "./dataset.js";
import { innerSplit, walkForwardFolds, type FoldOptions } from "./folds.js";
import { fit, predictAll, type FittedModel, type GbtParams, type ModelKind, type RidgeParams } from "./models.js";
import { dieboldMariano, forecastMetrics, type ForecastMetrics } from "./stats.js";

export type Candidate = { kind: ModelKind; grid: unknown[] };

export type WalkForwardOptions = FoldOptions & {
  /** Share of a training part held out (at its end, after an embargo) to choose hyper-parameters. */
  validFraction: number;
  /** Wall-time budget of one candidate's hyper-parameter search in one fold; the first setting is always tried. */
  searchBudgetMs: number;
  /** Lag of DM's long-run variance: h − 1, with h the horizon in candles. */
  hacLag: number;
  progress?: (msg: string) => void;
  /** Clock for the search budget (tests pass a fake one). */
  now?: () => number;
};

export type FoldResult = {
  fold: number;
  train_rows: number;
  test_rows: number;
  train_to_ms: number;
  test_from_ms: number;
  test_to_ms: number;
  params: unknown;
  /** Settings whose validation score was computed before the budget ran out. */
  searched: number;
  metrics: ForecastMetrics;
};

export type CandidateResult = {
  kind: ModelKind;
  folds: FoldResult[];
  /** Metrics over every fold's test rows together (in time order). */
  overall: ForecastMetrics;
  /** Out-of-sample predictions, aligned with `testRows`. */
  oos: number[];
  testRows: number[];
};

export function defaultCandidates(seed: number): Candidate[] {
  const g = (p: Omit<GbtParams, "seed" | "bins" | "subsample">): GbtParams => ({ ...p, subsample: 0.8, bins: 32, seed });
  return [
    { kind: "persistence", grid: [{}] },
    { kind: "ridge", grid: [1e-3, 1e-2, 1e-1, 1, 1e-4].map((alpha): RidgeParams => ({ alpha })) },
    {
      kind: "gbt",
      grid: [
        g({ trees: 80, depth: 3, learningRate: 0.05, minLeaf: 200 }),
        g({ trees: 150, depth: 2, learningRate: 0.05, minLeaf: 200 }),
        g({ trees: 60, depth: 4, learningRate: 0.05, minLeaf: 400 }),
      ],
    },
  ];
}

/** Chooses a candidate's hyper-parameters on the tail of `idx` (inner validation), within the budget. */
export function searchParams(ds: Dataset, idx: number[], c: Candidate, o: WalkForwardOptions): { params: unknown; searched: number } {
  if (c.grid.length === 1) return { params: c.grid[0], searched: 1 };
  const now = o.now ?? Date.now;
  const t0 = now();
  const { fit: fi, valid } = innerSplit(ds.ts, idx, o.validFraction, o.embargoMs);
  if (valid.length === 0 || fi.length < o.minTrainRows) return { params: c.grid[0], searched: 0 };
  const X = fi.map((i) => ds.X[i]);
  const y = fi.map((i) => ds.y[i]);
  let best = { params: c.grid[0], mae: Infinity };
  let searched = 0;
  for (const p of c.grid) {
    if (searched > 0 && now() - t0 > o.searchBudgetMs) break;
    const m = fit(c.kind, X, y, p);
    let ae = 0;
    for (const i of valid) ae += Math.abs(ds.y[i] - predictAll(m, [ds.X[i]])[0]);
    searched++;
    // Strictly better only: ties keep the earlier (simpler, listed first) setting.
    if (ae / valid.length < best.mae) best = { params: p, mae: ae / valid.length };
  }
  return { params: best.params, searched };
}

export function walkForward(ds: Dataset, candidates: Candidate[], o: WalkForwardOptions): CandidateResult[] {
  const folds = walkForwardFolds(ds.ts, o);
  if (folds.length === 0) throw new RangeError(`walk-forward: ${ds.ts.length} rows are too few for ${o.folds} folds with ≥ ${o.minTrainRows} training rows each`);
  const results: CandidateResult[] = [];
  for (const c of candidates) {
    const r: CandidateResult = { kind: c.kind, folds: [], overall: undefined as never, oos: [], testRows: [] };
    for (const [k, f] of folds.entries()) {
      o.progress?.(`${c.kind}: fold ${k + 1}/${folds.length} (train ${f.train.length} rows, test ${f.test.length})`);
      const { params, searched } = searchParams(ds, f.train, c, o);
      const m = fit(c.kind, f.train.map((i) => ds.X[i]), f.train.map((i) => ds.y[i]), params);
      const actual = f.test.map((i) => ds.y[i]);
      const pred = predictAll(m, f.test.map((i) => ds.X[i]));
      r.folds.push({
        fold: k, train_rows: f.train.length, test_rows: f.test.length, train_to_ms: ds.ts[f.train[f.train.length - 1]],
        test_from_ms: f.testStart, test_to_ms: f.testEnd, params, searched, metrics: forecastMetrics(actual, pred, o.hacLag),
      });
      r.oos.push(...pred);
      r.testRows.push(...f.test);
    }
    r.overall = forecastMetrics(r.testRows.map((i) => ds.y[i]), r.oos, o.hacLag);
    results.push(r);
  }
  return results;
}

/** Hyper-parameters chosen on all rows, then a fit on all rows: the model that would serve. */
export function finalFit(ds: Dataset, c: Candidate, o: WalkForwardOptions): { model: FittedModel; params: unknown } {
  const all = ds.ts.map((_, i) => i);
  const { params } = searchParams(ds, all, c, o);
  return { model: fit(c.kind, ds.X, ds.y, params), params };
}

/** DM p-value of "a is more accurate than b" on the same out-of-sample rows (absolute-error loss). */
export function dmBetween(ds: Dataset, a: CandidateResult, b: CandidateResult, hacLag: number): number | null {
  if (a.testRows.length !== b.testRows.length) throw new RangeError("dmBetween: the candidates were not tested on the same rows");
  const d = a.testRows.map((row, i) => Math.abs(ds.y[row] - a.oos[i]) - Math.abs(ds.y[row] - b.oos[i]));
  return dieboldMariano(d, hacLag)?.pvalue ?? null;
}
