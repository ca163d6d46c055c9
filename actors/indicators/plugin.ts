// The indicators stage as the CLI sees it: one per-pair stream actor.
import type { Plugin } from "../../supervisor/plugin.js";
import { indicatorsActor, INDICATORS_STAGE } from "./actor.js";

export const indicatorsPlugin: Plugin = {
  name: INDICATORS_STAGE,
  stages: [{ stage: INDICATORS_STAGE, create: () => indicatorsActor() }],
};
