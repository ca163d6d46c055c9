// Child process of the gateway bench: the real gateway (buildApp) and a bare Fastify route on
// another port, so the load generator in the parent does not share their event loop.
// Usage: node --import tsx bench/gateway-server.ts NATS_URL  → prints {"gateway": url, "bare": url}
import Fastify from "fastify";
import pino from "pino";
import { connect } from "@nats-io/transport-node";
import { buildApp } from "../gateway/app.js";
import { PredictionReply } from "../gateway/schemas.js";
import { loadConfig } from "../supervisor/config.js";

const nc = await connect({ servers: process.argv[2] });
const app = await buildApp({ nc, config: loadConfig({ env: {} }), log: pino({ level: "warn" }), docsUi: false });
const gateway = await app.listen({ port: 0, host: "127.0.0.1" });
// The reference: the same framework and response schema, a route that returns a constant object
// (the gateway's own answer): what is left between the two is the gateway's work per request.
const sample = (await app.inject("/v1/predictions/BTC-USD")).json();
const bare = Fastify();
bare.get("/v1/predictions/:pair", { schema: { response: { 200: PredictionReply } } }, async () => sample);
const bareUrl = await bare.listen({ port: 0, host: "127.0.0.1" });
process.stdout.write(JSON.stringify({ gateway, bare: bareUrl }) + "\n");
process.on("SIGTERM", async () => {
  await app.close();
  await bare.close();
  await nc.close();
  process.exit(0);
});
