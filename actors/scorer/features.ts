// Text → features for the bundled classifier, shared by training (scripts/train-sentiment.ts) and
// inference, so both see exactly the same numbers. Words are lower-cased; URLs, cashtags, numbers
// and percentages become placeholder tokens (a model must not learn that "$BYND" is bearish, and
// "+5%" vs "-5%" is kept as a sign); terms are words and adjacent word pairs; the value of a term is
// (1 + ln tf) · idf, and each vector is scaled to unit length (sublinear TF-IDF, L2).

export type Vocabulary = {
  /** term → column */
  index: Map<string, number>;
  /** inverse document frequency per column: ln((1 + n) / (1 + df)) + 1 */
  idf: Float64Array;
};

export type SparseVec = { idx: number[]; val: number[] };

const URL_RE = /https?:\/\/\S+|www\.\S+/g;
const TOKEN_RE = /\$[a-z][a-z0-9.]*|[+-]?\d[\d,.]*%?|[a-z][a-z'’]*[a-z]|[a-z]|[!?]/g;

/** The tokens of one text. */
export function tokenize(text: string): string[] {
  const t = text.toLowerCase().replace(URL_RE, " ");
  const raw = t.match(TOKEN_RE) ?? [];
  const out: string[] = [];
  for (const w of raw) {
    const c = w.charCodeAt(0);
    if (c === 36 /* $ */) out.push("<cashtag>");
    else if (c === 43 /* + */ || c === 45 /* - */) out.push(w.endsWith("%") ? (c === 43 ? "<pct+>" : "<pct->") : "<num>");
    else if (c >= 48 && c <= 57) out.push(w.endsWith("%") ? "<pct>" : "<num>");
    else out.push(w.replace(/[’']s$/, "").replace(/’/g, "'"));
  }
  return out;
}

/** Unigrams and bigrams of a token list. */
export function terms(tokens: string[]): string[] {
  const out = tokens.slice();
  for (let i = 0; i + 1 < tokens.length; i++) out.push(`${tokens[i]} ${tokens[i + 1]}`);
  return out;
}

/** Builds the vocabulary from training texts: terms in at least `minDf` documents, columns in sorted term order. */
export function buildVocabulary(texts: string[], minDf: number): Vocabulary {
  const df = new Map<string, number>();
  for (const t of texts) for (const term of new Set(terms(tokenize(t)))) df.set(term, (df.get(term) ?? 0) + 1);
  const kept = [...df.entries()].filter(([, n]) => n >= minDf).map(([k]) => k).sort();
  const n = texts.length;
  return vocabularyFrom(kept, kept.map((k) => Math.log((1 + n) / (1 + (df.get(k) as number))) + 1));
}

export function vocabularyFrom(termList: string[], idf: ArrayLike<number>): Vocabulary {
  if (termList.length !== idf.length) throw new Error(`vocabulary: ${termList.length} terms but ${idf.length} idf values`);
  return { index: new Map(termList.map((t, i) => [t, i])), idf: Float64Array.from(idf) };
}

/** The sparse TF-IDF vector of one text (columns ascending). */
export function featurize(text: string, v: Vocabulary): SparseVec {
  const tf = new Map<number, number>();
  for (const term of terms(tokenize(text))) {
    const j = v.index.get(term);
    if (j !== undefined) tf.set(j, (tf.get(j) ?? 0) + 1);
  }
  const idx = [...tf.keys()].sort((a, b) => a - b);
  const val = idx.map((j) => (1 + Math.log(tf.get(j) as number)) * v.idf[j]);
  let norm = 0;
  for (const x of val) norm += x * x;
  norm = Math.sqrt(norm);
  if (norm > 0) for (let k = 0; k < val.length; k++) val[k] /= norm;
  return { idx, val };
}

/** Writes sparse rows into a dense row-major float32 matrix (the ONNX model's input). */
export function toDense(rows: SparseVec[], dim: number): Float32Array {
  const out = new Float32Array(rows.length * dim);
  rows.forEach((r, i) => { for (let k = 0; k < r.idx.length; k++) out[i * dim + r.idx[k]] = r.val[k]; });
  return out;
}
