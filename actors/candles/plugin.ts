// The candles stage as the CLI sees it: one per-pair stream actor.
import type { Plugin } from "../../supervisor/plugin.js";
import { candlesActor, CANDLES_STAGE } from "./actor.js";

export const candlesPlugin: Plugin = {
  name: CANDLES_STAGE,
  stages: [{ stage: CANDLES_STAGE, create: () => candlesActor }],
};
