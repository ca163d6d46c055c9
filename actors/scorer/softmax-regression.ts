// Multinomial logistic regression (softmax) on sparse rows, trained with full-batch Adam on the
// class-weighted cross-entropy plus an L2 penalty. Full batch and a fixed iteration count make it
// deterministic: the same data and options give the same weights, bit for bit.
import type { SparseVec } from "./features.js";

export type LinearModel = {
  dim: number;
  classes: number;
  /** row-major [dim, classes], float32 as exported */
  W: Float32Array;
  b: Float32Array;
};

export type TrainOptions = {
  classes: number;
  l2: number;
  iterations: number;
  learningRate: number;
  /** Per-class loss weights (e.g. balanced: n / (classes · n_c)); 1 when absent. */
  classWeights?: number[];
};

export function balancedWeights(y: number[], classes: number): number[] {
  const n = new Array(classes).fill(0);
  for (const c of y) n[c]++;
  return n.map((k) => (k === 0 ? 0 : y.length / (classes * k)));
}

export function trainSoftmax(X: SparseVec[], y: number[], dim: number, o: TrainOptions): LinearModel {
  const C = o.classes;
  const W = new Float64Array(dim * C);
  const b = new Float64Array(C);
  const gW = new Float64Array(dim * C);
  const gb = new Float64Array(C);
  const mW = new Float64Array(dim * C), vW = new Float64Array(dim * C);
  const mb = new Float64Array(C), vb = new Float64Array(C);
  const cw = o.classWeights ?? new Array(C).fill(1);
  let wsum = 0;
  for (const c of y) wsum += cw[c];
  const z = new Float64Array(C);
  const beta1 = 0.9, beta2 = 0.999, eps = 1e-8;
  for (let it = 1; it <= o.iterations; it++) {
    gW.fill(0);
    gb.fill(0);
    for (let i = 0; i < X.length; i++) {
      const r = X[i];
      logits(W, b, r, C, z);
      softmaxInPlace(z);
      const w = cw[y[i]] / wsum;
      for (let c = 0; c < C; c++) {
        const g = (z[c] - (c === y[i] ? 1 : 0)) * w;
        gb[c] += g;
        for (let k = 0; k < r.idx.length; k++) gW[r.idx[k] * C + c] += g * r.val[k];
      }
    }
    for (let j = 0; j < W.length; j++) gW[j] += o.l2 * W[j];
    const lr = o.learningRate * Math.sqrt(1 - beta2 ** it) / (1 - beta1 ** it);
    for (let j = 0; j < W.length; j++) {
      mW[j] = beta1 * mW[j] + (1 - beta1) * gW[j];
      vW[j] = beta2 * vW[j] + (1 - beta2) * gW[j] * gW[j];
      W[j] -= lr * mW[j] / (Math.sqrt(vW[j]) + eps);
    }
    for (let c = 0; c < C; c++) {
      mb[c] = beta1 * mb[c] + (1 - beta1) * gb[c];
      vb[c] = beta2 * vb[c] + (1 - beta2) * gb[c] * gb[c];
      b[c] -= lr * mb[c] / (Math.sqrt(vb[c]) + eps);
    }
  }
  return { dim, classes: C, W: Float32Array.from(W), b: Float32Array.from(b) };
}

function logits(W: ArrayLike<number>, b: ArrayLike<number>, r: SparseVec, C: number, out: Float64Array): void {
  for (let c = 0; c < C; c++) out[c] = b[c];
  for (let k = 0; k < r.idx.length; k++) {
    const base = r.idx[k] * C;
    const x = r.val[k];
    for (let c = 0; c < C; c++) out[c] += W[base + c] * x;
  }
}

function softmaxInPlace(z: Float64Array): void {
  let m = -Infinity;
  for (const x of z) if (x > m) m = x;
  let s = 0;
  for (let c = 0; c < z.length; c++) { z[c] = Math.exp(z[c] - m); s += z[c]; }
  for (let c = 0; c < z.length; c++) z[c] /= s;
}

/** Class probabilities of one row, in process (the reference the ONNX run is compared with). */
export function predictProba(m: LinearModel, r: SparseVec): number[] {
  const z = new Float64Array(m.classes);
  logits(m.W, m.b, r, m.classes, z);
  softmaxInPlace(z);
  return Array.from(z);
}

export function argmax(p: ArrayLike<number>): number {
  let best = 0;
  for (let c = 1; c < p.length; c++) if (p[c] > p[best]) best = c;
  return best;
}

export type Metrics = { accuracy: number; macroF1: number; f1: number[]; n: number };

export function metrics(yTrue: number[], yPred: number[], classes: number): Metrics {
  const tp = new Array(classes).fill(0), fp = new Array(classes).fill(0), fn = new Array(classes).fill(0);
  let ok = 0;
  for (let i = 0; i < yTrue.length; i++) {
    if (yTrue[i] === yPred[i]) { ok++; tp[yTrue[i]]++; } else { fp[yPred[i]]++; fn[yTrue[i]]++; }
  }
  const f1 = tp.map((t, c) => (2 * t + fp[c] + fn[c] === 0 ? 0 : (2 * t) / (2 * t + fp[c] + fn[c])));
  return { accuracy: ok / yTrue.length, macroF1: f1.reduce((a, x) => a + x, 0) / classes, f1, n: yTrue.length };
}
