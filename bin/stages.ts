// The composition root: every plugin (stage, gateway) this build of `tickflow` knows, one line
// each. The runtime in supervisor/ knows none of them; adding a stage is a folder plus a line here.
import { candlesPlugin } from "../actors/candles/plugin.js";
import { indicatorsPlugin } from "../actors/indicators/plugin.js";
import { sinkPlugin } from "../actors/sink/plugin.js";
import { sentimentPlugin } from "../actors/sentiment/plugin.js";
import { tradesPlugin } from "../actors/trades/plugin.js";
import { predictorPlugin } from "../actors/predictor/plugin.js";
import { trainerPlugin } from "../actors/trainer/plugin.js";
import { gatewayPlugin } from "../gateway/plugin.js";
import type { Plugin } from "../supervisor/plugin.js";

export const plugins: Plugin[] = [
  tradesPlugin,
  candlesPlugin,
  indicatorsPlugin,
  trainerPlugin,
  predictorPlugin,
  sinkPlugin,
  gatewayPlugin,
  sentimentPlugin,
];
