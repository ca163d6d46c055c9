// Public entry of the ML library shared by the trainer and the predictor: features (defined once),
// datasets with timestamp-aligned targets, walk-forward folds, models, statistics, the promotion
// gate and the ONNX export. Pure logic, no NATS.
export { BASE_FEATURES, SENTIMENT_FEATURE, createFeatureState, updateFeatures, vectorOf, sentimentFeature } from "./features.js";
export type { FeatureInput, FeatureRow, FeatureState, SentimentInput } from "./features.js";
export { buildDataset, featureRows, indicatorsOf, readCandleFile, subset } from "./dataset.js";
export type { CandleBar, Dataset } from "./dataset.js";
export { innerSplit, trainBefore, walkForwardFolds } from "./folds.js";
export type { Fold, FoldOptions } from "./folds.js";
export { fit, fitGbt, fitRidge, predict, predictAll } from "./models.js";
export type { FittedModel, GbtParams, LinearModel, ModelKind, RidgeParams, TreeModel } from "./models.js";
export { binomialUpperTail, dieboldMariano, forecastMetrics, normalCdf } from "./stats.js";
export type { ForecastMetrics } from "./stats.js";
export { defaultCandidates, dmBetween, finalFit, searchParams, walkForward } from "./walk-forward.js";
export type { Candidate, CandidateResult, FoldResult, WalkForwardOptions } from "./walk-forward.js";
export { gate, sameParams } from "./gate.js";
export type { GateInput, GateVerdict } from "./gate.js";
