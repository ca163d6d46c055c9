// Scores one headline per coin: Ollama when configured, else (or when it fails) the bundled
// classifier, and says which one answered and why a fallback happened. A headline that names no
// coin is scored for MARKET.
import { SCHEMA_VERSION } from "../../protocol/messages.js";
import type { NewsItem, ScoredItem, SignalLabel } from "../../protocol/news.js";
import type { HeadlineClassifier } from "./classifier.js";
import { baseCoin, extractCoins, type CoinMatcher } from "./coins.js";
import { LlmInvalidAnswerError, LlmUnavailableError, type CoinScore, type OllamaScorer } from "./ollama-scorer.js";

export const MARKET = "MARKET";

export type HeadlineInput = { title: string; body?: string; coins_hint?: string[] };

export type ScoreOutcome = {
  /** `ollama:<model>` or `classifier:<version>`. */
  scorer: string;
  /** Why the classifier answered although Ollama is configured. */
  fallback?: string;
  coins: CoinScore[];
  /** The headline as a whole: the label with the largest summed confidence over its coins. */
  overall: { signal: SignalLabel; confidence: number };
  /** Set when Ollama's answer stayed invalid: the answer and why, for the dead-letter subject. */
  invalidAnswer?: { reason: string; answer: string };
};

export class HeadlineScorer {
  constructor(private readonly d: { coins: CoinMatcher; classifier: HeadlineClassifier; ollama?: OllamaScorer | null }) {}

  /** The coins of a headline: named in title or body, plus the source's own tags that the coin map knows. */
  coinsOf(h: HeadlineInput): string[] {
    const named = extractCoins(`${h.title}\n${h.body ?? ""}`, this.d.coins);
    for (const hint of h.coins_hint ?? []) {
      const c = baseCoin(`${hint}/X`, this.d.coins);
      if (this.d.coins.coins[c] && !named.includes(c)) named.push(c);
    }
    return named.length ? named : [MARKET];
  }

  async score(h: HeadlineInput): Promise<ScoreOutcome> {
    return (await this.scoreMany([h]))[0];
  }

  /** Scores several headlines; the classifier runs them as one batch. */
  async scoreMany(hs: HeadlineInput[]): Promise<ScoreOutcome[]> {
    const out: (ScoreOutcome | null)[] = hs.map(() => null);
    const fallbacks: { i: number; fallback?: string; invalidAnswer?: ScoreOutcome["invalidAnswer"] }[] = [];
    for (const [i, h] of hs.entries()) {
      if (!this.d.ollama) { fallbacks.push({ i }); continue; }
      try {
        const coins = await this.d.ollama.score({ title: h.title, body: h.body ?? "", coins: this.coinsOf(h) });
        out[i] = { scorer: `ollama:${this.d.ollama.model}`, coins, overall: overall(coins) };
      } catch (err) {
        if (err instanceof LlmInvalidAnswerError) fallbacks.push({ i, fallback: err.message, invalidAnswer: { reason: err.message, answer: err.answer } });
        else if (err instanceof LlmUnavailableError) fallbacks.push({ i, fallback: err.message });
        else throw err;
      }
    }
    if (fallbacks.length) {
      const res = await this.d.classifier.classify(fallbacks.map((f) => `${hs[f.i].title}`));
      fallbacks.forEach((f, k) => {
        const r = res[k];
        const reason = `classifier: p(bullish) ${r.probs.bullish.toFixed(2)}, p(bearish) ${r.probs.bearish.toFixed(2)}, p(neutral) ${r.probs.neutral.toFixed(2)}`;
        const coins = this.coinsOf(hs[f.i]).map((coin) => ({ coin, signal: r.signal, confidence: round(r.confidence), reason }));
        out[f.i] = {
          scorer: `classifier:${this.d.classifier.version}`, coins, overall: overall(coins),
          ...(f.fallback ? { fallback: f.fallback } : {}), ...(f.invalidAnswer ? { invalidAnswer: f.invalidAnswer } : {}),
        };
      });
    }
    return out as ScoreOutcome[];
  }
}

function round(x: number): number {
  return Math.round(x * 1e6) / 1e6;
}

export function overall(coins: CoinScore[]): { signal: SignalLabel; confidence: number } {
  const sum: Record<SignalLabel, number> = { bullish: 0, bearish: 0, neutral: 0 };
  for (const c of coins) sum[c.signal] += c.confidence;
  const signal = (["bullish", "bearish", "neutral"] as SignalLabel[]).reduce((a, b) => (sum[b] > sum[a] ? b : a), "neutral" as SignalLabel);
  return { signal, confidence: round(sum[signal] / coins.length) };
}

/** One scored message per coin for a news item (`news.scored.<COIN>`, msg id `<item id>:<COIN>`). */
export function scoredItems(item: NewsItem, o: ScoreOutcome): ScoredItem[] {
  return o.coins.map((c) => ({
    v: SCHEMA_VERSION, id: item.id, source: item.source, ts_ms: item.ts_ms, title: item.title,
    coin: c.coin, signal: c.signal, confidence: c.confidence, reason: c.reason, scorer: o.scorer,
    ...(o.fallback ? { fallback: o.fallback } : {}),
  }));
}
