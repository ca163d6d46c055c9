// Public entry of the predictor stage.
export { predictorPlugin } from "./plugin.js";
export { predictorActor, predictorInputs, PREDICTOR_STAGE } from "./actor.js";
export { ModelCache } from "./model-cache.js";
export { OnnxModel } from "./onnx-runner.js";
export type { Prediction, Outcome, PredictorState, ModelRef } from "./core.js";
