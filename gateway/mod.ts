// Public entry of the gateway.
export { buildApp, type BuildAppOptions } from "./app.js";
export { startGateway, type RunningGateway } from "./server.js";
export { gatewayPlugin, gatewayCommand } from "./plugin.js";
export { summarizeOutcomes, type AccuracySummary } from "./accuracy.js";
