// The candidate models: persistence (a zero return: "the price stays where it is"), ridge
// regression (closed form on standardized features) and gradient-boosted regression trees.
// A fitted model is plain data: it is what the registry records, what the ONNX exporter reads,
// and what `predict` evaluates in process. Tree thresholds and inputs are compared in float32,
// as ONNX Runtime compares them, so the in-process and ONNX predictions take the same branches.
import { mulberry32 } from "./prng.js";

export type ModelKind = "persistence" | "ridge" | "gbt";

export type RidgeParams = { alpha: number };
export type GbtParams = { trees: number; depth: number; learningRate: number; minLeaf: number; subsample: number; bins: number; seed: number };

export type LinearModel = { kind: "ridge"; params: RidgeParams; mean: number[]; std: number[]; weights: number[]; bias: number };
export type TreeNode = { feature: number; threshold: number; left: number; right: number } | { leaf: number };
export type TreeModel = { kind: "gbt"; params: GbtParams; base: number; trees: TreeNode[][] };
export type PersistenceModel = { kind: "persistence"; params: Record<string, never> };
export type FittedModel = PersistenceModel | LinearModel | TreeModel;

export function predict(m: FittedModel, x: number[]): number {
  switch (m.kind) {
    case "persistence":
      return 0;
    case "ridge": {
      let s = m.bias;
      for (let j = 0; j < x.length; j++) s += m.weights[j] * ((x[j] - m.mean[j]) / m.std[j]);
      return s;
    }
    case "gbt": {
      let s = m.base;
      const xf = x.map(Math.fround);
      for (const t of m.trees) {
        let i = 0;
        for (;;) {
          const nd = t[i];
          if ("leaf" in nd) {
            s += nd.leaf;
            break;
          }
          i = xf[nd.feature] <= nd.threshold ? nd.left : nd.right;
        }
      }
      return s;
    }
  }
}

export function predictAll(m: FittedModel, X: number[][]): number[] {
  return X.map((x) => predict(m, x));
}

/** Ridge on standardized features with an unpenalized intercept; alpha scales with the row count. */
export function fitRidge(X: number[][], y: number[], params: RidgeParams): LinearModel {
  const n = X.length;
  const f = X[0]?.length ?? 0;
  if (n === 0) throw new RangeError("ridge: no rows to fit");
  const mean = new Array<number>(f).fill(0);
  const std = new Array<number>(f).fill(0);
  for (const r of X) for (let j = 0; j < f; j++) mean[j] += r[j];
  for (let j = 0; j < f; j++) mean[j] /= n;
  for (const r of X) for (let j = 0; j < f; j++) std[j] += (r[j] - mean[j]) ** 2;
  for (let j = 0; j < f; j++) std[j] = Math.sqrt(std[j] / n) || 1;
  let ym = 0;
  for (const v of y) ym += v;
  ym /= n;
  // Normal equations (Z'Z + λI) w = Z'(y − ȳ), Z the standardized X.
  const A = Array.from({ length: f }, () => new Array<number>(f).fill(0));
  const b = new Array<number>(f).fill(0);
  const z = new Array<number>(f);
  for (let i = 0; i < n; i++) {
    const r = X[i];
    for (let j = 0; j < f; j++) z[j] = (r[j] - mean[j]) / std[j];
    const yc = y[i] - ym;
    for (let j = 0; j < f; j++) {
      b[j] += z[j] * yc;
      const zj = z[j];
      const Aj = A[j];
      for (let k = 0; k <= j; k++) Aj[k] += zj * z[k];
    }
  }
  const lambda = params.alpha * n;
  for (let j = 0; j < f; j++) {
    for (let k = 0; k < j; k++) A[k][j] = A[j][k];
    A[j][j] += lambda;
  }
  const weights = choleskySolve(A, b);
  return { kind: "ridge", params: { ...params }, mean, std, weights, bias: ym };
}

function choleskySolve(A: number[][], b: number[]): number[] {
  const n = b.length;
  const L = Array.from({ length: n }, () => new Array<number>(n).fill(0));
  for (let i = 0; i < n; i++) {
    for (let j = 0; j <= i; j++) {
      let s = A[i][j];
      for (let k = 0; k < j; k++) s -= L[i][k] * L[j][k];
      if (i === j) {
        if (!(s > 0)) throw new RangeError("ridge: the normal equations are not positive definite");
        L[i][i] = Math.sqrt(s);
      } else L[i][j] = s / L[j][j];
    }
  }
  const t = new Array<number>(n);
  for (let i = 0; i < n; i++) {
    let s = b[i];
    for (let k = 0; k < i; k++) s -= L[i][k] * t[k];
    t[i] = s / L[i][i];
  }
  const w = new Array<number>(n);
  for (let i = n - 1; i >= 0; i--) {
    let s = t[i];
    for (let k = i + 1; k < n; k++) s -= L[k][i] * w[k];
    w[i] = s / L[i][i];
  }
  return w;
}

/**
 * Gradient boosting with squared loss on histogram bins: each feature is cut at (float32) quantile
 * edges of the training rows, and a split sends x ≤ edge left. Deterministic for a seed: the only
 * randomness is the row subsample of each tree, from mulberry32(seed).
 * Leaf values already include the learning rate, so a prediction is base + Σ leaves.
 */
export function fitGbt(X: number[][], y: number[], params: GbtParams, shouldStop?: () => boolean): TreeModel {
  const n = X.length;
  const f = X[0]?.length ?? 0;
  if (n === 0) throw new RangeError("gbt: no rows to fit");
  const edges: number[][] = [];
  const binned: Uint8Array[] = [];
  for (let j = 0; j < f; j++) {
    const col = new Float64Array(n);
    for (let i = 0; i < n; i++) col[i] = Math.fround(X[i][j]);
    const sorted = Float64Array.from(col).sort();
    const e: number[] = [];
    for (let q = 1; q < params.bins; q++) {
      const v = sorted[Math.min(n - 1, Math.floor((q * n) / params.bins))];
      if (e.length === 0 || v > e[e.length - 1]) e.push(v);
    }
    // An edge equal to the maximum splits nothing off.
    while (e.length && e[e.length - 1] >= sorted[n - 1]) e.pop();
    edges.push(e);
    const b = new Uint8Array(n);
    for (let i = 0; i < n; i++) {
      let lo = 0, hi = e.length;
      const v = col[i];
      while (lo < hi) {
        const mid = (lo + hi) >> 1;
        if (v <= e[mid]) hi = mid;
        else lo = mid + 1;
      }
      b[i] = lo;
    }
    binned.push(b);
  }
  let base = 0;
  for (const v of y) base += v;
  base /= n;
  const pred = new Float64Array(n).fill(base);
  const resid = new Float64Array(n);
  const rng = mulberry32(params.seed);
  const trees: TreeNode[][] = [];
  const nb = params.bins + 1;
  const gs = new Float64Array(nb);
  const cs = new Float64Array(nb);
  for (let t = 0; t < params.trees; t++) {
    if (shouldStop?.()) break;
    for (let i = 0; i < n; i++) resid[i] = y[i] - pred[i];
    const rows: number[] = [];
    for (let i = 0; i < n; i++) if (params.subsample >= 1 || rng() < params.subsample) rows.push(i);
    const tree: TreeNode[] = [];
    // The bin of each split, to walk the tree on the binned rows (b ≤ bin ⇔ fround(x) ≤ edge).
    const splitBin: number[] = [];
    const grow = (idx: number[], depth: number): number => {
      const id = tree.length;
      let sum = 0;
      for (const i of idx) sum += resid[i];
      const leafValue = idx.length ? (sum / idx.length) * params.learningRate : 0;
      tree.push({ leaf: leafValue });
      splitBin.push(-1);
      if (depth >= params.depth || idx.length < 2 * params.minLeaf) return id;
      const total = sum, cnt = idx.length;
      let best = { gain: 1e-18, feature: -1, bin: -1 };
      const parentScore = (total * total) / cnt;
      for (let j = 0; j < f; j++) {
        const e = edges[j];
        if (e.length === 0) continue;
        gs.fill(0);
        cs.fill(0);
        const b = binned[j];
        for (const i of idx) {
          gs[b[i]] += resid[i];
          cs[b[i]]++;
        }
        let gl = 0, cl = 0;
        for (let k = 0; k < e.length; k++) {
          gl += gs[k];
          cl += cs[k];
          const cr = cnt - cl;
          if (cl < params.minLeaf || cr < params.minLeaf) continue;
          const gr = total - gl;
          const gain = (gl * gl) / cl + (gr * gr) / cr - parentScore;
          if (gain > best.gain) best = { gain, feature: j, bin: k };
        }
      }
      if (best.feature < 0) return id;
      const b = binned[best.feature];
      const li: number[] = [], ri: number[] = [];
      for (const i of idx) (b[i] <= best.bin ? li : ri).push(i);
      const left = grow(li, depth + 1);
      const right = grow(ri, depth + 1);
      tree[id] = { feature: best.feature, threshold: edges[best.feature][best.bin], left, right };
      splitBin[id] = best.bin;
      return id;
    };
    grow(rows, 0);
    trees.push(tree);
    for (let i = 0; i < n; i++) {
      let k = 0;
      for (;;) {
        const nd = tree[k];
        if ("leaf" in nd) {
          pred[i] += nd.leaf;
          break;
        }
        k = binned[nd.feature][i] <= splitBin[k] ? nd.left : nd.right;
      }
    }
  }
  return { kind: "gbt", params: { ...params }, base, trees };
}

export function fit(kind: ModelKind, X: number[][], y: number[], params: unknown, shouldStop?: () => boolean): FittedModel {
  if (kind === "persistence") return { kind: "persistence", params: {} };
  if (kind === "ridge") return fitRidge(X, y, params as RidgeParams);
  return fitGbt(X, y, params as GbtParams, shouldStop);
}
