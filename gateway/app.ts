// buildApp: the gateway as a Fastify instance, not listening (tests use inject(); server.ts
// listens). Everything it reads is in memory or a bounded JetStream read; nothing scans a stream.
import Fastify, { LogController, type FastifyBaseLogger, type FastifyInstance } from "fastify";
import swagger from "@fastify/swagger";
import swaggerUi from "@fastify/swagger-ui";
import { jetstream, jetstreamManager } from "@nats-io/jetstream";
import type { NatsConnection } from "@nats-io/transport-node";
import type { Logger } from "pino";
import { openBuckets } from "../protocol/streams.js";
import { parseLatestKey } from "../supervisor/latest.js";
import type { Config } from "../supervisor/config.js";
import type { OutcomeLike } from "./accuracy.js";
import { AccuracyBook, actorsCache, parseAny, parseLatest, parsePairValue, type GatewayContext } from "./context.js";
import { dashboardRoutes } from "./dashboard.js";
import { installErrorHandler } from "./errors.js";
import { KvMirror } from "./kv-mirror.js";
import { LiveHub } from "./live-hub.js";
import { createMetrics } from "./metrics.js";
import { marketRoutes } from "./routes-market.js";
import { mlRoutes } from "./routes-ml.js";
import { opsRoutes } from "./routes-ops.js";

export type BuildAppOptions = {
  nc: NatsConnection;
  config: Config;
  log: Logger;
  /** Serve /docs (OpenAPI UI); the JSON document is always at /docs/json. Default true. */
  docsUi?: boolean;
};

export async function buildApp(o: BuildAppOptions): Promise<FastifyInstance> {
  const js = jetstream(o.nc);
  const jsm = await jetstreamManager(o.nc);
  const kv = await openBuckets(js);
  const log = o.log.child({ component: "gateway" });
  const latest = new KvMirror(kv.latest, parseLatest, log);
  const pairs = new KvMirror(kv.pairs, parsePairValue, log);
  const models = new KvMirror(kv.models, parseAny, log);
  const hub = new LiveHub(js, jsm, log);
  const tokensWithData = new Set<string>();
  latest.onChange((key) => {
    const k = parseLatestKey(key);
    if (k) tokensWithData.add(k.token);
  });
  await Promise.all([latest.start(), pairs.start(), models.start(), hub.start()]);
  const accuracy = new AccuracyBook(js, jsm);
  const ctx: GatewayContext = {
    nc: o.nc, js, jsm, config: o.config, log, latest, pairs, models, hub, tokensWithData, accuracy, actors: actorsCache(o.nc),
  };
  const metrics = createMetrics({ actors: ctx.actors, accuracy: () => accuracy.all(), sseClients: () => hub.clients, perActor: o.config.metrics.perActor });
  hub.onEvent(["prediction", "outcome"], (e) => {
    const horizon = e.subject.split(".")[2];
    const d = e.data as OutcomeLike & { pair: string };
    if (e.kind === "prediction") metrics.predictionsSeen.inc({ pair: d.pair, horizon });
    else {
      metrics.outcomesSeen.inc({ pair: d.pair, horizon });
      accuracy.add(horizon, d.pair, d);
    }
  });

  const app: FastifyInstance = Fastify({
    loggerInstance: log as unknown as FastifyBaseLogger,
    // A log line per request would cost more than most requests; errors are still logged.
    logController: new LogController({ disableRequestLogging: true }),
    // Unknown query parameters are an error (400 naming them), not silently dropped.
    ajv: { customOptions: { removeAdditional: false, coerceTypes: "array", useDefaults: true } },
    // Pairs arrive as BTC%2FUSD too: keep the router from treating the encoded slash as a separator.
    routerOptions: { ignoreTrailingSlash: true },
  });
  installErrorHandler(app);
  await app.register(swagger, {
    openapi: {
      info: { title: "Tickflow gateway", version: "0.1.0", description: "Candles, indicators, sentiment, predictions and actors of a Tickflow cluster." },
      components: { securitySchemes: { bearer: { type: "http", scheme: "bearer" } } },
    },
  });
  opsRoutes(app, ctx, metrics);
  marketRoutes(app, ctx);
  mlRoutes(app, ctx);
  dashboardRoutes(app);
  if (o.docsUi !== false) await app.register(swaggerUi, { routePrefix: "/docs" });
  else app.get("/docs/json", { schema: { hide: true } }, async () => app.swagger());
  app.addHook("onClose", async () => {
    hub.stop();
    latest.stop();
    pairs.stop();
    models.stop();
  });
  await app.ready();
  return app;
}
