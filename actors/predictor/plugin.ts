// The predictor stage's contribution: the per-pair predictor actor (stage `predictor`).
import { jetstream, type JetStreamClient } from "@nats-io/jetstream";
import type { Plugin, StageContext } from "../../supervisor/plugin.js";
import { connectNats, resolveNatsUrl } from "../../supervisor/nats.js";
import { Registry } from "../trainer/registry.js";
import { predictorActor, PREDICTOR_STAGE } from "./actor.js";
import { timeframeMs } from "../../protocol/timeframes.js";
import { DEFAULT_MODEL_IDLE_MS, ModelCache } from "./model-cache.js";

/**
 * Artifacts come from the registry's object store, through the process's JetStream client when the
 * stage context carries one, else through one connection of our own per process (opened at the
 * first model load, never per actor).
 */
function registryFetch(ctx: StageContext) {
  let reg: Promise<Registry> | null = null;
  return async (name: string, digest: string) => {
    reg ??= (async () => {
      const given = (ctx as StageContext & { js?: JetStreamClient }).js;
      const js = given ?? jetstream(await connectNats(resolveNatsUrl(undefined, ctx.config.natsUrl, ctx.config.dataDir), "tickflow-predictor-models"));
      return Registry.open(js);
    })();
    reg.catch(() => (reg = null));
    return (await reg).getArtifact(name, digest);
  };
}

export const predictorPlugin: Plugin = {
  name: "predictor",
  // The model fetcher's own connection (when the stage context has no client) goes where --nats says.
  configure(flags, config) {
    if (typeof flags.nats === "string" && !config.natsUrl) config.natsUrl = flags.nats;
  },
  stages: [{
    stage: PREDICTOR_STAGE,
    create: (ctx) => {
      // Idle: longer than a few of the predictor's candles, so only a replaced champion goes idle.
      const cache = new ModelCache(registryFetch(ctx), { idleMs: Math.max(DEFAULT_MODEL_IDLE_MS, 3 * timeframeMs(ctx.config.ml.timeframe)) });
      return predictorActor({ config: ctx.config, run: cache.run });
    },
  }],
};
