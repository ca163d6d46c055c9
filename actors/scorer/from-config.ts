// Builds the headline scorer a process uses from its config: the bundled classifier always (it is
// the fallback), Ollama when news.ollama.host (OLLAMA_HOST) is set.
import type { Config } from "../../supervisor/config.js";
import { HeadlineClassifier } from "./classifier.js";
import { coinMatcher } from "./coins.js";
import { HeadlineScorer } from "./headline-scorer.js";
import { DEFAULT_OLLAMA_OPTIONS, OllamaScorer } from "./ollama-scorer.js";

export type ScorerHandle = { scorer: HeadlineScorer; classifier: HeadlineClassifier; ollama: OllamaScorer | null; close(): Promise<void> };

export async function headlineScorerFromConfig(config: Config): Promise<ScorerHandle> {
  const classifier = await HeadlineClassifier.load();
  const o = config.news.ollama;
  const ollama = o.host
    ? new OllamaScorer({ ...DEFAULT_OLLAMA_OPTIONS, host: o.host, model: o.model, timeoutMs: o.timeoutMs, retries: o.retries })
    : null;
  const scorer = new HeadlineScorer({ coins: coinMatcher(config.news.coins), classifier, ollama });
  return { scorer, classifier, ollama, close: () => classifier.close() };
}
