// Operations: health, readiness, metrics, actors, and the admin routes that change the pairs.
import { timingSafeEqual } from "node:crypto";
import type { FastifyInstance, FastifyRequest } from "fastify";
import { Type, type Static } from "@sinclair/typebox";
import { ErrorCode } from "../protocol/errors.js";
import { pairToToken } from "../protocol/pairs.js";
import { addPairs, removePairs } from "../supervisor/desired-pairs.js";
import { pairParam, type GatewayContext } from "./context.js";
import { ErrorBodySchema, errorResponses, PairParam } from "./schemas.js";
import { httpError } from "./errors.js";
import type { GatewayMetrics } from "./metrics.js";

export function opsRoutes(app: FastifyInstance, ctx: GatewayContext, metrics: GatewayMetrics): void {
  app.get("/health", { schema: { tags: ["ops"], summary: "Liveness: the process answers", response: { 200: Type.Object({ status: Type.String() }) } } },
    async () => ({ status: "ok" }));

  app.get("/ready", {
    schema: {
      tags: ["ops"], summary: "Readiness: NATS connected and tf_latest / tf_pairs loaded",
      response: { 200: Type.Object({ status: Type.String() }), 503: ErrorBodySchema },
    },
  }, async () => {
    if (ctx.nc.isClosed()) throw httpError(ErrorCode.Unavailable, "the NATS connection is closed");
    if (!ctx.latest.ready || !ctx.pairs.ready) throw httpError(ErrorCode.Unavailable, "still loading tf_latest and tf_pairs");
    return { status: "ready" };
  });

  app.get("/metrics", { schema: { tags: ["ops"], summary: "Prometheus metrics", hide: false } }, async (_req, reply) => {
    reply.header("content-type", metrics.registry.contentType);
    return metrics.registry.metrics();
  });

  app.get("/v1/actors", {
    schema: { tags: ["ops"], summary: "Every actor of the cluster and the live members (as `tickflow status --json`)" },
  }, async () => ctx.actors());

  const admin = async (req: FastifyRequest) => {
    const h = req.headers.authorization;
    if (!h || !/^Bearer\s+\S/i.test(h)) throw httpError(ErrorCode.Unauthorized, "admin route: send Authorization: Bearer <token>");
    const want = ctx.config.gateway.adminToken;
    if (!want) throw httpError(ErrorCode.Forbidden, "admin routes are disabled: no admin token is configured (TICKFLOW_ADMIN_TOKEN)");
    const got = Buffer.from(h.replace(/^Bearer\s+/i, "").trim());
    const w = Buffer.from(want);
    if (got.length !== w.length || !timingSafeEqual(got, w)) throw httpError(ErrorCode.Forbidden, "admin route: wrong token");
  };
  const PairChange = Type.Object({ pair: Type.String(), token: Type.String(), status: Type.String() });

  app.put<{ Params: Static<typeof PairParam> }>("/v1/pairs/:pair", {
    onRequest: admin,
    schema: {
      tags: ["admin"], summary: "Follow a pair: its actors start somewhere within a second", params: PairParam,
      security: [{ bearer: [] }], response: { 200: PairChange, 401: ErrorBodySchema, 403: ErrorBodySchema, ...errorResponses },
    },
  }, async (req) => {
    const pair = pairParam(req.params.pair);
    await addPairs(ctx.js, [pair]);
    return { pair, token: pairToToken(pair), status: "added" };
  });

  app.delete<{ Params: Static<typeof PairParam> }>("/v1/pairs/:pair", {
    onRequest: admin,
    schema: {
      tags: ["admin"], summary: "Stop following a pair: its actors stop (its data stays)", params: PairParam,
      security: [{ bearer: [] }], response: { 200: PairChange, 401: ErrorBodySchema, 403: ErrorBodySchema, ...errorResponses },
    },
  }, async (req) => {
    const pair = pairParam(req.params.pair);
    if (!ctx.pairs.map.has(pairToToken(pair))) throw httpError(ErrorCode.NotFound, `unknown pair ${pair}: it is not in tf_pairs`);
    await removePairs(ctx.js, [pair]);
    return { pair, token: pairToToken(pair), status: "removed" };
  });
}
