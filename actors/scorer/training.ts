// Training of the bundled classifier, pure (no files): labelled CSV parsing, a deterministic
// stratified split, hyper-parameter choice on a validation part of the training split only, and the
// final fit. scripts/train-sentiment.ts does the I/O.
import { mulberry32 } from "../ml/prng.js";
import { linearSoftmaxOnnx } from "./onnx-export.js";
import { buildVocabulary, featurize, type Vocabulary } from "./features.js";
import { lexiconScore } from "./lexicon.js";
import { argmax, balancedWeights, metrics, predictProba, trainSoftmax, type LinearModel, type Metrics } from "./softmax-regression.js";

/** Class order of the model's output (also the order of the training labels 0, 1, 2). */
export const CLASSES = ["bearish", "bullish", "neutral"] as const;

export type Labelled = { text: string; label: number };

/** RFC 4180 CSV (quoted fields may hold commas, quotes as "" and newlines). */
export function parseCsv(text: string, sep = ","): string[][] {
  const rows: string[][] = [];
  let row: string[] = [];
  let cur = "";
  let q = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (q) {
      if (c === '"') {
        if (text[i + 1] === '"') { cur += '"'; i++; } else q = false;
      } else cur += c;
    } else if (c === '"' && cur === "") q = true;
    else if (c === sep) { row.push(cur); cur = ""; }
    else if (c === "\n" || c === "\r") {
      if (c === "\r" && text[i + 1] === "\n") i++;
      row.push(cur); cur = "";
      if (row.length > 1 || row[0] !== "") rows.push(row);
      row = [];
    } else cur += c;
  }
  if (cur !== "" || row.length) { row.push(cur); rows.push(row); }
  return rows;
}

/** `text,label` rows with label 0 = bearish, 1 = bullish, 2 = neutral (twitter-financial-news-sentiment). */
export function parseLabelled(csv: string, file: string): Labelled[] {
  const rows = parseCsv(csv);
  const h = rows[0]?.map((x) => x.trim().toLowerCase()) ?? [];
  const ti = h.indexOf("text"), li = h.indexOf("label");
  if (ti < 0 || li < 0) throw new Error(`${file}:1: expected a header with "text" and "label"`);
  return rows.slice(1).map((r, i) => {
    const label = Number(r[li]);
    if (!(label === 0 || label === 1 || label === 2)) throw new Error(`${file}: data row ${i + 1}: label "${r[li]}" is not 0, 1 or 2`);
    return { text: r[ti], label };
  });
}

/** A small seeded PRNG (mulberry32, shared with the trainer): the split depends only on the seed. */
export const rng = mulberry32;

const normalise = (t: string) => t.toLowerCase().replace(/https?:\/\/\S+/g, "").replace(/\s+/g, " ").trim();

/**
 * Stratified split with `frac` of each class held out. Rows with the same normalised text go to the
 * same side (the data set repeats some tweets; a copy on each side would flatter the score).
 */
export function stratifiedSplit(data: Labelled[], frac: number, seed: number): { train: Labelled[]; test: Labelled[] } {
  const r = rng(seed);
  const groups = new Map<string, Labelled[]>();
  for (const d of data) {
    const k = normalise(d.text);
    const g = groups.get(k) ?? [];
    g.push(d);
    groups.set(k, g);
  }
  const byClass: Labelled[][][] = [[], [], []];
  for (const g of groups.values()) byClass[g[0].label].push(g);
  const train: Labelled[] = [], test: Labelled[] = [];
  for (const gs of byClass) {
    for (let i = gs.length - 1; i > 0; i--) {
      const j = Math.floor(r() * (i + 1));
      [gs[i], gs[j]] = [gs[j], gs[i]];
    }
    const nTest = Math.round(gs.length * frac);
    gs.forEach((g, i) => (i < nTest ? test : train).push(...g));
  }
  return { train, test };
}

export type FitOptions = { minDf: number; l2: number; balanced: boolean; iterations: number; learningRate: number };
export type Fitted = { vocab: Vocabulary; terms: string[]; model: LinearModel; options: FitOptions };

export function fit(train: Labelled[], o: FitOptions): Fitted {
  const vocab = buildVocabulary(train.map((d) => d.text), o.minDf);
  const X = train.map((d) => featurize(d.text, vocab));
  const y = train.map((d) => d.label);
  const model = trainSoftmax(X, y, vocab.idf.length, {
    classes: CLASSES.length, l2: o.l2, iterations: o.iterations, learningRate: o.learningRate,
    classWeights: o.balanced ? balancedWeights(y, CLASSES.length) : undefined,
  });
  const terms = new Array<string>(vocab.index.size);
  for (const [t, i] of vocab.index) terms[i] = t;
  return { vocab, terms, model, options: o };
}

export function evaluate(f: Fitted, data: Labelled[]): Metrics {
  return metrics(data.map((d) => d.label), data.map((d) => argmax(predictProba(f.model, featurize(d.text, f.vocab)))), CLASSES.length);
}

/** The lexicon baseline on the same rows (its labels mapped to the same class order). */
export function evaluateLexicon(data: Labelled[]): Metrics {
  return metrics(data.map((d) => d.label), data.map((d) => CLASSES.indexOf(lexiconScore(d.text).signal)), CLASSES.length);
}

/** Picks the options with the best macro-F1 on a validation part of `train` (never on the test split). */
export function selectOptions(train: Labelled[], grid: FitOptions[], seed: number): { best: FitOptions; tried: { options: FitOptions; val: Metrics }[] } {
  const { train: t, test: v } = stratifiedSplit(train, 0.15, seed + 1);
  const tried = grid.map((options) => ({ options, val: evaluate(fit(t, options), v) }));
  const best = tried.reduce((a, b) => (b.val.macroF1 > a.val.macroF1 ? b : a));
  return { best: best.options, tried };
}

/** The two committed files of a fitted model: model.onnx and vocab.json. */
export function modelFiles(f: Fitted, version: string, extra: Record<string, unknown> = {}): { onnx: Uint8Array; vocabJson: string } {
  const doc = `headline sentiment (${CLASSES.join(", ")}); TF-IDF word+bigram; softmax regression; ${version}`;
  return {
    onnx: linearSoftmaxOnnx(f.model, doc),
    // idf at 8 significant digits: the file stays small, and inference uses exactly these values.
    vocabJson: JSON.stringify({ version, classes: CLASSES, ...extra, options: f.options, terms: f.terms, idf: Array.from(f.vocab.idf, (x) => Number(x.toPrecision(8))) }) + "\n",
  };
}
