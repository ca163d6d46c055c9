// Trains the bundled headline-sentiment classifier and writes it to actors/scorer/model/
// (vocab.json + model.onnx). Prints accuracy and macro-F1 on a held-out split, next to the lexicon
// baseline on the same rows. Deterministic for a seed.
//   npx tsx scripts/train-sentiment.ts ../shared/data/sentiment/twitter-financial-news-train.csv [--seed 7] [--out DIR] [--test-frac 0.15] [--dry-run]
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { fileURLToPath } from "node:url";
import { CLASSES, evaluate, evaluateLexicon, fit, modelFiles, parseLabelled, selectOptions, stratifiedSplit, type FitOptions } from "../actors/scorer/training.js";
import type { Metrics } from "../actors/scorer/softmax-regression.js";
import { MODEL_VERSION_PREFIX } from "../actors/scorer/classifier.js";

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: { seed: { type: "string" }, out: { type: "string" }, "test-frac": { type: "string" }, "dry-run": { type: "boolean" } },
});
if (positionals.length !== 1) {
  console.error("usage: tsx scripts/train-sentiment.ts LABELLED.csv [--seed N] [--out DIR] [--test-frac F] [--dry-run]");
  process.exit(2);
}
const file = positionals[0];
const seed = Number(values.seed ?? 7);
const testFrac = Number(values["test-frac"] ?? 0.15);
const out = values.out ?? fileURLToPath(new URL("../actors/scorer/model/", import.meta.url));

const data = parseLabelled(readFileSync(file, "utf8"), file);
const { train, test } = stratifiedSplit(data, testFrac, seed);
const count = (d: { label: number }[]) => CLASSES.map((c, i) => `${c} ${d.filter((x) => x.label === i).length}`).join(", ");
console.log(`data: ${file}: ${data.length} rows; train ${train.length} (${count(train)}), held-out ${test.length} (${count(test)}); seed ${seed}`);

const base = { iterations: 300, learningRate: 0.05 };
const grid: FitOptions[] = [];
for (const minDf of [2]) for (const l2 of [1e-5, 3e-5, 1e-4]) for (const balanced of [false, true]) grid.push({ ...base, minDf, l2, balanced });
const t0 = performance.now();
const sel = selectOptions(train, grid, seed);
for (const t of sel.tried) console.log(`  validation: l2 ${t.options.l2}, ${t.options.balanced ? "balanced" : "unweighted"}: macro-F1 ${t.val.macroF1.toFixed(4)}, accuracy ${t.val.accuracy.toFixed(4)}`);
const f = fit(train, sel.best);
const fmt = (m: Metrics) => `accuracy ${m.accuracy.toFixed(4)}  macro-F1 ${m.macroF1.toFixed(4)}  (F1 ${CLASSES.map((c, i) => `${c} ${m.f1[i].toFixed(3)}`).join(", ")})`;
const cm = evaluate(f, test);
const lm = evaluateLexicon(test);
console.log(`chosen: ${JSON.stringify(sel.best)}; ${f.terms.length} terms; trained in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
console.log(`held-out (${test.length} rows):`);
console.log(`  classifier  ${fmt(cm)}`);
console.log(`  lexicon     ${fmt(lm)}`);

if (!values["dry-run"]) {
  // The shipped model is refit on every row with the chosen options; the figures above are of the
  // split model, which never saw the held-out rows.
  const full = fit(data, sel.best);
  const version = `${MODEL_VERSION_PREFIX}-s${seed}-${full.terms.length}`;
  mkdirSync(out, { recursive: true });
  const files = modelFiles(full, version, { trained_on: file.split("/").pop(), rows: data.length, held_out: { rows: test.length, seed, classifier: cm, lexicon: lm } });
  writeFileSync(join(out, "model.onnx"), files.onnx);
  writeFileSync(join(out, "vocab.json"), files.vocabJson);
  console.log(`wrote ${join(out, "model.onnx")} and vocab.json (${version}; final fit on all ${data.length} rows)`);
}
