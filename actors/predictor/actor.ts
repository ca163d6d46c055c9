// Predictor actor shell: three joined inputs of the pair — its 1m indicators (the main input),
// its sentiment signal, and its records in the model registry (KV tf_models, through the bucket's
// stream) — in the order the runtime recorded (journal.ts), into core.ts. The model in force is therefore part of the
// input: a restart from a checkpoint replays the same swaps at the same places and republishes
// byte-identical predictions; nothing is read from KV or the clock while processing.
import { BadInputError } from "../../protocol/errors.js";
import { pairToToken } from "../../protocol/pairs.js";
import { BUCKETS } from "../../protocol/streams.js";
import { subjects } from "../../protocol/subjects.js";
import type { Emit, InputMsg, JoinedInput, StreamActorDef } from "../../supervisor/actor.js";
import type { Config } from "../../supervisor/config.js";
import type { FeatureRow } from "../ml/mod.js";
import { latestKeys } from "../../supervisor/latest.js";
import { summarize } from "./live-stats.js";
import { applyCandle, applyRegistry, applySentiment, createPredictorState, PERSISTENCE, type ModelRunner, type Prediction, type PredictorState } from "./core.js";

export const PREDICTOR_STAGE = "predictor";

export const INPUT = { indicators: "indicators", sentiment: "sentiment", models: "models" } as const;

/** The predictor's inputs for a pair (the runtime's joined-input form: name, stream, filter). */
export function predictorInputs(pair: string, config: Config): JoinedInput[] {
  return [
    { name: INPUT.indicators, stream: "INDICATORS", filter: subjects.indicators(config.ml.timeframe, pair) },
    { name: INPUT.sentiment, stream: "SENTIMENT", filter: subjects.sentiment(pair) },
    // Every horizon's record of the pair (`<TOKEN>.<h>`); runs live under `run.…` and are not matched.
    { name: INPUT.models, stream: `KV_${BUCKETS.models}`, filter: `$KV.${BUCKETS.models}.${pairToToken(pair)}.*` },
  ];
}

function inputOf(msg: InputMsg): string {
  if (msg.input !== "main") return msg.input;
  if (msg.subject.startsWith("md.indicators.")) return INPUT.indicators;
  if (msg.subject.startsWith("md.sentiment.")) return INPUT.sentiment;
  if (msg.subject.startsWith(`$KV.${BUCKETS.models}.`)) return INPUT.models;
  return "unknown";
}

export type PredictorDeps = { config: Config; run: ModelRunner; onRow?: (pair: string, ts: number, row: FeatureRow) => void };

/** The actor definition (a stream actor with joined inputs); receive returns a promise only while a model loads. */
export function predictorActor(deps: PredictorDeps): StreamActorDef<PredictorState> {
  const { config } = deps;
  return {
    kind: "stream",
    stage: PREDICTOR_STAGE,
    input: (pair: string) => predictorInputs(pair, config),
    init: (pair: string): PredictorState => createPredictorState(pair, config.ml.timeframe, config.ml.horizons, config.ml.liveWindow),
    receive(state: PredictorState, msg: InputMsg, emit: Emit): void | Promise<void> {
      const where = `${msg.subject}#${msg.seq}`;
      switch (inputOf(msg)) {
        case INPUT.indicators:
          return applyCandle(state, msg.data, where, deps.run, emit, deps.onRow && ((ts, row) => deps.onRow!(state.pair, ts, row)));
        case INPUT.sentiment:
          applySentiment(state, msg.data, where);
          return;
        case INPUT.models: {
          const op = msg.header("KV-Operation");
          if (op === "DEL" || op === "PURGE" || msg.data === undefined) {
            // The record is gone: persistence serves that horizon (its key names it).
            const h = msg.subject.split(".").pop()!;
            if (state.models[h] && state.models[h].version !== 0) {
              state.models[h] = PERSISTENCE;
              state.counts.swaps++;
            }
            return;
          }
          applyRegistry(state, msg.data, where);
          return;
        }
        default:
          throw new BadInputError(`${where}: not an input of the predictor (indicators, sentiment or tf_models)`);
      }
    },
    // tf_latest: the newest prediction and outcome per horizon (the outcome carries the rolling live accuracy).
    latest: (o) => {
      const d = o.data as Prediction;
      if (o.subject.startsWith("ml.predictions.")) return { key: latestKeys.predictions(d.horizon, d.pair), ts: d.ts_ms };
      if (o.subject.startsWith("ml.outcomes.")) return { key: latestKeys.outcomes(d.horizon, d.pair), ts: d.ts_ms };
      return null;
    },
    describe: (s: PredictorState) => ({
      models: Object.fromEntries(Object.entries(s.models).map(([h, m]) => [h, `${m.name} v${m.version}`])),
      ...s.counts,
      // Rolling live accuracy per horizon, next to persistence's.
      live: Object.fromEntries(Object.entries(s.live).map(([h, l]) => {
        const x = summarize(l);
        return [h, { n: x.live_n, mae: x.live_mae, mae_persistence: x.live_mae_persistence, mae_ratio: x.live_mae_ratio, hit_rate: x.live_hit_rate }];
      })),
    }),
  };
}
