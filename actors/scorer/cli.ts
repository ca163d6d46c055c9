// `tickflow sentiment score "headline"` and `tickflow sentiment score --stdin`: scoring without NATS.
import { createInterface } from "node:readline";
import type { CommandDef } from "../../supervisor/plugin.js";
import type { Config } from "../../supervisor/config.js";
import { headlineScorerFromConfig } from "./from-config.js";
import type { ScoreOutcome } from "./headline-scorer.js";

export const SENTIMENT_HELP = [
  "  sentiment score \"HEADLINE\" [--ollama-host URL] [--ollama-model NAME]",
  "      Scores a headline per coin it names (MARKET when none) and says which scorer answered:",
  "      Ollama when OLLAMA_HOST / --ollama-host is set (falling back to the bundled classifier if it",
  "      fails, and saying why), else the bundled classifier. Needs no NATS.",
  "  sentiment score --stdin",
  "      One headline per input line; one JSON line per input line: {headline, signal, confidence,",
  "      coins: [{coin, signal, confidence, reason}], scorer[, fallback]}.",
].join("\n");

export type ScoreIo = { write(s: string): void; input: NodeJS.ReadableStream };

/** Batch size for --stdin: the classifier scores this many lines per ONNX run. */
const BATCH = 256;

export async function runSentimentScore(args: string[], stdin: boolean, config: Config, io: ScoreIo, usage: (m: string) => never): Promise<void> {
  if (args[0] !== "score") usage(`sentiment: unknown subcommand "${args[0] ?? ""}" (expected: sentiment score "HEADLINE" | sentiment score --stdin)`);
  const text = args.slice(1).join(" ").trim();
  if (stdin && text) usage("sentiment score: give a headline or --stdin, not both");
  if (!stdin && !text) usage('sentiment score: give a headline in quotes, or --stdin for one headline per line');
  const h = await headlineScorerFromConfig(config);
  try {
    if (!stdin) {
      const o = await h.scorer.score({ title: text });
      io.write(formatOutcome(o));
      return;
    }
    const rl = createInterface({ input: io.input, crlfDelay: Infinity });
    let batch: string[] = [];
    const flush = async () => {
      const lines = batch;
      batch = [];
      const scorable = lines.filter((l) => l.trim() !== "");
      const res = await h.scorer.scoreMany(scorable.map((title) => ({ title: title.trim() })));
      let k = 0;
      for (const l of lines) {
        if (l.trim() === "") io.write(JSON.stringify({ headline: l, error: "empty line: nothing to score" }) + "\n");
        else io.write(JSON.stringify(outcomeJson(l.trim(), res[k++])) + "\n");
      }
    };
    for await (const line of rl) {
      batch.push(line);
      if (batch.length >= BATCH) await flush();
    }
    if (batch.length) await flush();
  } finally {
    await h.close();
  }
}

export function outcomeJson(headline: string, o: ScoreOutcome): Record<string, unknown> {
  return {
    headline, signal: o.overall.signal, confidence: o.overall.confidence,
    coins: o.coins, scorer: o.scorer, ...(o.fallback ? { fallback: o.fallback } : {}),
  };
}

function formatOutcome(o: ScoreOutcome): string {
  const lines = [`scorer: ${o.scorer}${o.fallback ? ` (fallback: ${o.fallback})` : ""}`, `overall: ${o.overall.signal} ${o.overall.confidence.toFixed(2)}`];
  const w = Math.max(4, ...o.coins.map((c) => c.coin.length));
  lines.push(`${"COIN".padEnd(w)}  SIGNAL   CONF  REASON`);
  for (const c of o.coins) lines.push(`${c.coin.padEnd(w)}  ${c.signal.padEnd(7)}  ${c.confidence.toFixed(2)}  ${c.reason}`);
  return lines.join("\n") + "\n";
}

export const sentimentCommand: CommandDef = {
  name: "sentiment",
  help: SENTIMENT_HELP,
  // --ollama-host / --ollama-model reach ctx.config through the plugin's `configure`.
  async run(ctx) {
    await runSentimentScore(ctx.args, ctx.flags.stdin === true, ctx.config, { write: (s) => process.stdout.write(s), input: process.stdin }, ctx.usage);
  },
};
