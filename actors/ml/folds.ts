// Expanding-window walk-forward folds with an embargo. Fold k tests on one block of the later
// part of the series and trains on every row whose TARGET is known before that block starts:
// a training row at time t has its label at t + H, so rows with t > testStart − embargo are left
// out (embargo ≥ H), and no training label overlaps the test period.

export type Fold = { train: number[]; test: number[]; testStart: number; testEnd: number };

export type FoldOptions = {
  /** Number of test blocks. */
  folds: number;
  /** Share of the rows (from the start) that is only ever trained on. */
  initialTrainFraction: number;
  /** Milliseconds between the last training row and the first test row; at least the horizon. */
  embargoMs: number;
  /** Folds whose training part has fewer rows than this are skipped. */
  minTrainRows: number;
};

export function walkForwardFolds(ts: number[], o: FoldOptions): Fold[] {
  const n = ts.length;
  if (o.folds < 1) throw new RangeError(`folds must be ≥ 1 (got ${o.folds})`);
  const first = Math.floor(n * o.initialTrainFraction);
  const size = Math.floor((n - first) / o.folds);
  if (size < 1) return [];
  const out: Fold[] = [];
  for (let k = 0; k < o.folds; k++) {
    const a = first + k * size;
    const b = k === o.folds - 1 ? n : a + size;
    const train = trainBefore(ts, ts[a], o.embargoMs);
    if (train.length < o.minTrainRows) continue;
    const test: number[] = [];
    for (let i = a; i < b; i++) test.push(i);
    out.push({ train, test, testStart: ts[a], testEnd: ts[b - 1] });
  }
  return out;
}

/** Indices of rows at least `embargoMs` before `startTs` (ts sorted ascending). */
export function trainBefore(ts: number[], startTs: number, embargoMs: number): number[] {
  const out: number[] = [];
  for (let i = 0; i < ts.length && ts[i] <= startTs - embargoMs; i++) out.push(i);
  return out;
}

/** Splits a training set into an inner-train and a validation tail (for hyper-parameters), with the same embargo. */
export function innerSplit(ts: number[], idx: number[], validFraction: number, embargoMs: number): { fit: number[]; valid: number[] } {
  const v0 = Math.floor(idx.length * (1 - validFraction));
  const valid = idx.slice(v0);
  if (valid.length === 0) return { fit: idx, valid: [] };
  const startTs = ts[valid[0]];
  const fit = idx.filter((i) => ts[i] <= startTs - embargoMs);
  return { fit, valid };
}
