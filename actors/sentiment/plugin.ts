// The news-and-sentiment plugin: stages news (one poller per source, keyed by source), scorer (a
// pool of competing consumers) and sentiment (per pair, joined inputs); the `sentiment` command
// (scoring without NATS); and `up --news FILE…`, which replays recorded headlines alongside trades.
import { resolve } from "node:path";
import type { Plugin } from "../../supervisor/plugin.js";
import { checkNewsConfig, NEWS_REPLAY_KEY, NEWS_STAGE, newsActor, type NewsReplaySetup } from "../news/actor.js";
import { readRecordedHeadlines, replayOrder } from "../news/recorded.js";
import { SCORER_STAGE, scorerActor } from "../scorer/actor.js";
import { sentimentCommand } from "../scorer/cli.js";
import { SENTIMENT_STAGE, sentimentActor } from "./actor.js";
import { waitNewsDrained } from "./drained.js";

function parseNewsSpeed(s: string | undefined, usage: (m: string) => never): number | "max" {
  if (s === undefined || s === "max") return "max";
  const n = Number(s);
  if (!Number.isFinite(n) || n <= 0) usage(`--news-speed must be a positive number or "max" (got "${s}")`);
  return n;
}

export const sentimentPlugin: Plugin = {
  name: "sentiment",
  stages: [
    {
      stage: NEWS_STAGE,
      keyedBy: "own",
      create(ctx) {
        checkNewsConfig(ctx.config);
        return newsActor((ctx.shared.get(NEWS_REPLAY_KEY) as NewsReplaySetup | undefined) ?? null);
      },
    },
    { stage: SCORER_STAGE, keyedBy: "pool", create: () => scorerActor },
    { stage: SENTIMENT_STAGE, create: (ctx) => sentimentActor(ctx.config) },
  ],
  commands: [sentimentCommand],
  options: {
    stdin: { type: "boolean" },
    "ollama-host": { type: "string" },
    "ollama-model": { type: "string" },
    news: { type: "string", multiple: true },
    "news-speed": { type: "string" },
  },
  upHelp: [
    "      --news FILE… replays recorded headlines (../shared/data/news format, .csv or .csv.gz) with",
    "      their timestamps as the news source `replay`; --news-speed N|max (default max) paces them.",
  ].join("\n"),
  configure(flags, config) {
    if (typeof flags["ollama-host"] === "string") config.news.ollama.host = flags["ollama-host"];
    if (typeof flags["ollama-model"] === "string") config.news.ollama.model = flags["ollama-model"];
  },
  async up(ctx) {
    const files = (ctx.flags.news as string[] | undefined)?.map((f) => resolve(f));
    if (!files?.length) return;
    const speed = parseNewsSpeed(ctx.flags["news-speed"] as string | undefined, ctx.usage);
    const read = files.map((f) => readRecordedHeadlines(f));
    for (const r of read) for (const b of r.bad) ctx.log.warn(`news replay: ${b.reason}`);
    const items = replayOrder(read);
    ctx.shared.set(NEWS_REPLAY_KEY, { items, speed } satisfies NewsReplaySetup);
    return {
      note: `news: replay of ${items.length} headlines from ${files.length} file(s) at speed ${speed}`,
      drained: (sup) => waitNewsDrained(sup, ctx.js, items.length),
    };
  },
};
