// Scorer stage shell: a pool of competing consumers on news.raw.> (scaled by replicas). Each item
// is scored per coin (Ollama or the bundled classifier, see headline-scorer.ts) and published once
// per coin on news.scored.<COIN> with msg id `<item id>:<COIN>`, so a redelivered item publishes
// nothing new. An Ollama answer that stayed invalid also goes to dlq.scorer.ollama, with the answer.
import { encode } from "../../protocol/codec.js";
import { BadInputError } from "../../protocol/errors.js";
import { NewsItemCheck, type NewsItem } from "../../protocol/news.js";
import { subjects } from "../../protocol/subjects.js";
import type { PoolActorDef } from "../../supervisor/actor.js";
import { deadLetterOutput } from "../../supervisor/actor-cell.js";
import { headlineScorerFromConfig, type ScorerHandle } from "./from-config.js";
import { scoredItems } from "./headline-scorer.js";

export const SCORER_STAGE = "scorer";

export const scorerActor: PoolActorDef<ScorerHandle> = {
  kind: "pool",
  stage: SCORER_STAGE,
  input: () => ({ stream: "NEWS", filter: "news.raw.>" }),
  open: ({ config }) => headlineScorerFromConfig(config),
  close: (h) => h.close(),
  async handle(msg, ctx) {
    const why = NewsItemCheck.explain(msg.data);
    if (why) throw new BadInputError(`news item at ${msg.subject}#${msg.seq}: ${why}`);
    const item = msg.data as NewsItem;
    const o = await ctx.resource.scorer.score(item);
    if (o.invalidAnswer) {
      ctx.emit(deadLetterOutput(SCORER_STAGE, "ollama", `item ${item.id}: ${o.invalidAnswer.reason}`, msg.subject, msg.seq,
        encode({ item: item.id, answer: o.invalidAnswer.answer }, "json")));
    }
    for (const s of scoredItems(item, o)) ctx.emit({ subject: subjects.newsScored(s.coin), msgId: `${s.id}:${s.coin}`, data: s });
  },
  describe: (h) => ({ scorer: h.ollama ? `ollama:${h.ollama.model} (fallback classifier:${h.classifier.version})` : `classifier:${h.classifier.version}` }),
};
