// Operations: health, readiness, metrics, actors, and the admin routes that change the pairs.
import { timingSafeEqual } from "node:crypto";
import type { FastifyInstance, FastifyRequest } from "fastify";
import { Type, type Static } from "@sinclair/typebox";
import { ErrorCode } from "../protocol/errors.js";
import { pairToToken } from "../protocol/pairs.js";
import { addPairs, removePairs } from "../supervisor/desired-pairs.js";
import { needsAttention, stageCounts } from "../supervisor/actor-summary.js";
import { pairParam, type GatewayContext } from "./context.js";
import { ErrorBodySchema, errorResponses, PairParam } from "./schemas.js";
import { badParam, httpError } from "./errors.js";
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

  // At a thousand pairs the cluster is six thousand actors (2.7 MB of JSON): a reader asks for
  // the ones it shows, and the summary counts them all.
  const ActorsQuery = Type.Object({
    pair: Type.Optional(Type.String({ description: "only this pair's actors (BTC/USD or BTC-USD)" })),
    stage: Type.Optional(Type.String({ description: "only these stages, comma-separated" })),
    problems: Type.Optional(Type.Boolean({ description: "only actors not running, or with restarts or dead letters" })),
    limit: Type.Optional(Type.Integer({ minimum: 1, description: "at most this many actors (`total` says how many matched)" })),
  });
  app.get<{ Querystring: Static<typeof ActorsQuery> }>("/v1/actors", {
    schema: {
      tags: ["ops"], querystring: ActorsQuery,
      summary: "The cluster's actors (as `tickflow status --json`; filtered by pair, stage, problems), the live members, and every stage's actors counted by state",
    },
  }, async (req) => {
    const q = req.query;
    const s = await ctx.actors();
    const stages = [...new Set([...s.members.flatMap((m) => m.stages), ...s.actors.map((a) => a.stage)])];
    const only = q.stage?.split(",").map((x) => x.trim()).filter(Boolean) ?? null;
    for (const st of only ?? []) if (!stages.includes(st)) throw badParam("querystring.stage", `unknown stage "${st}" (stages: ${stages.join(", ")})`);
    const pair = q.pair === undefined ? null : pairParam(q.pair, "querystring.pair");
    const matching = s.actors.filter((a) => (!only || only.includes(a.stage)) && (!pair || a.pair === pair) && (!q.problems || needsAttention(a)));
    return { members: s.members, summary: stageCounts(s.actors), total: matching.length, actors: q.limit ? matching.slice(0, q.limit) : matching };
  });

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
