// The trainer stage's contribution to the CLI: `tickflow train`, `tickflow models`, and the
// per-pair trainer actor (stage `trainer`).
import type { Plugin } from "../../supervisor/plugin.js";
import { trainerActor, TRAINER_STAGE } from "./actor.js";
import { modelsCommand, trainCommand } from "./commands.js";

export const trainerPlugin: Plugin = {
  name: "trainer",
  stages: [{ stage: TRAINER_STAGE, create: () => trainerActor() }],
  commands: [trainCommand(), modelsCommand()],
  options: {
    pair: { type: "string" },
    candles: { type: "string" },
    from: { type: "string" },
    to: { type: "string" },
    horizon: { type: "string" },
  },
};
