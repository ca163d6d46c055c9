// Public entry of the trainer stage.
export { trainerPlugin } from "./plugin.js";
export { trainerActor, TRAINER_STAGE } from "./actor.js";
export { Registry, recordKey, artifactName } from "./registry.js";
export { runTraining } from "./train-run.js";
export { computeRun } from "./compute-run.js";
export type { RegistryRecord, Champion, ModelVersion, RunSummary, WfMetrics } from "./registry-record.js";
