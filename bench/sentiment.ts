// Sentiment bench: headlines scored per second by the bundled classifier (featurize in TypeScript +
// ONNX run), one at a time (as a scorer worker handles items) and in batches (as `sentiment score
// --stdin` does), next to the lexicon baseline scoring the same headlines in the same run (the
// reference: the cheapest scorer there is). Input: the recorded headlines in ../shared/data/news.
import { HeadlineClassifier } from "../actors/scorer/classifier.js";
import { lexiconScore } from "../actors/scorer/lexicon.js";
import { existsSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { readRecordedHeadlines } from "../actors/news/recorded.js";
import { signalLatency, type LatencyResult } from "./sentiment-latency.js";

/** The whole recorded file when this machine has it, else the slice shipped in data/news. */
export const SHARED_NEWS = existsSync("/work/shared/data/news/cryptonews-2021-10-to-2022-07.csv.gz")
  ? "/work/shared/data/news/cryptonews-2021-10-to-2022-07.csv.gz"
  : fileURLToPath(new URL("../data/news/cryptonews-2022-06-20-to-07-05-slice.csv.gz", import.meta.url));

export type SentimentBench = {
  headlines: number;
  lexiconPerSec: number;
  classifierSinglePerSec: number;
  classifierBatchPerSec: number;
  batchSize: number;
  /** classifier rates ÷ lexicon rate */
  singleVsLexicon: number;
  batchVsLexicon: number;
  latency?: LatencyResult;
};

function rate(n: number, ms: number): number {
  return (n / ms) * 1000;
}

export async function classifierBench(file = SHARED_NEWS, batchSize = 256, log: (s: string) => void = () => {}): Promise<SentimentBench> {
  const titles = readRecordedHeadlines(file).items.map((i) => i.title);
  const clf = await HeadlineClassifier.load();
  try {
    await clf.classify(titles.slice(0, 512)); // warm-up: JIT and ONNX session
    let sink = 0;
    let t = performance.now();
    for (const h of titles) sink += lexiconScore(h).compound;
    const lexMs = performance.now() - t;
    t = performance.now();
    for (const h of titles) sink += (await clf.classify([h]))[0].confidence;
    const singleMs = performance.now() - t;
    t = performance.now();
    for (let i = 0; i < titles.length; i += batchSize) for (const r of await clf.classify(titles.slice(i, i + batchSize))) sink += r.confidence;
    const batchMs = performance.now() - t;
    if (!Number.isFinite(sink)) throw new Error("bench: non-finite scores");
    const lex = rate(titles.length, lexMs);
    const single = rate(titles.length, singleMs);
    const batch = rate(titles.length, batchMs);
    log(`sentiment: ${titles.length} headlines: lexicon ${Math.round(lex)}/s, classifier ${Math.round(single)}/s one at a time, ${Math.round(batch)}/s in batches of ${batchSize}`);
    return { headlines: titles.length, lexiconPerSec: lex, classifierSinglePerSec: single, classifierBatchPerSec: batch, batchSize, singleVsLexicon: single / lex, batchVsLexicon: batch / lex };
  } finally {
    await clf.close();
  }
}

export function formatSentiment(s: SentimentBench): string {
  const lines = [
    `sentiment classifier (${s.headlines} recorded headlines; reference: lexicon baseline ${Math.round(s.lexiconPerSec)} headlines/s)`,
    `  one at a time      ${Math.round(s.classifierSinglePerSec)} headlines/s  (${s.singleVsLexicon.toFixed(3)} × lexicon)`,
    `  batches of ${String(s.batchSize).padEnd(6)}  ${Math.round(s.classifierBatchPerSec)} headlines/s  (${s.batchVsLexicon.toFixed(3)} × lexicon)`,
  ];
  if (s.latency) {
    const l = s.latency;
    lines.push(`sentiment signal latency (candle publish → md.sentiment.<pair> delivered; ${l.pairs} pairs, ${l.candles} candles)`);
    lines.push(`  p50 ${l.p50Ms.toFixed(1)} ms, p95 ${l.p95Ms.toFixed(1)} ms, max ${l.maxMs.toFixed(1)} ms; reference (one JetStream publish → delivery, same run) p50 ${l.refP50Ms.toFixed(1)} ms, p95 ${l.refP95Ms.toFixed(1)} ms: ${(l.p50Ms / l.refP50Ms).toFixed(1)} × at p50`);
  }
  return lines.join("\n") + "\n";
}

/** The bench part `sentiment` of bench/run.ts: classifier throughput, then signal latency. */
export async function sentimentBench(log: (s: string) => void): Promise<SentimentBench> {
  const b = await classifierBench(SHARED_NEWS, 256, log);
  return { ...b, latency: await signalLatency(30, log) };
}
