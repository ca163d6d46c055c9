// Predictions (latest, history, and the older API shape), the model registry and live accuracy.
import type { FastifyInstance } from "fastify";
import { Type, type Static } from "@sinclair/typebox";
import { subjects } from "../protocol/subjects.js";
import { latestKeys } from "../supervisor/latest.js";
import { knownPair, latestOr404, pairParam, timeParam, type GatewayContext } from "./context.js";
import { badParam } from "./errors.js";
import { readHistory } from "./history.js";
import {
  AccuracyQuery, errorResponses, HorizonQuery, LegacyPredictionQuery, LegacyPredictionReply, PairParam, PredictionHistoryQuery,
  PredictionHistoryReply, PredictionReply,
} from "./schemas.js";

type Prediction = { ts_ms: number; predicted_price: number };

export function mlRoutes(app: FastifyInstance, ctx: GatewayContext): void {
  const dflt = ctx.config.gateway.defaultHorizon;

  app.get<{ Params: Static<typeof PairParam>; Querystring: Static<typeof HorizonQuery> }>("/v1/predictions/:pair", {
    schema: {
      tags: ["predictions"], summary: "The newest prediction for a horizon (from tf_latest, in memory)",
      params: PairParam, querystring: HorizonQuery, response: { 200: PredictionReply, ...errorResponses },
    },
  }, async (req) => {
    const { pair } = knownPair(ctx, req.params.pair);
    const horizon = req.query.horizon ?? dflt;
    return { pair, horizon, prediction: latestOr404(ctx, latestKeys.predictions(horizon, pair), `${horizon} prediction for ${pair}`).data };
  });

  app.get<{ Params: Static<typeof PairParam>; Querystring: Static<typeof PredictionHistoryQuery> }>("/v1/predictions/:pair/history", {
    schema: {
      tags: ["predictions"], summary: "Predictions and their outcomes by prediction time, oldest first; without `from`, about the last `limit` minutes",
      params: PairParam, querystring: PredictionHistoryQuery, response: { 200: PredictionHistoryReply, ...errorResponses },
    },
  }, async (req) => {
    const { pair } = knownPair(ctx, req.params.pair);
    const q = req.query;
    const horizon = q.horizon ?? dflt;
    const limit = q.limit ?? 500;
    if (limit > ctx.config.gateway.maxHistory) throw badParam("querystring.limit", `must be at most ${ctx.config.gateway.maxHistory}`);
    const from = timeParam(q.from, "querystring.from");
    const to = timeParam(q.to, "querystring.to");
    const tsOf = (d: unknown) => (d as { ts_ms: number }).ts_ms;
    // One prediction per closed 1m candle is the predictor's cadence: `limit` steps of a minute.
    const base = { stream: "PREDICTIONS", tsOf, from, to, limit, stepMs: 60_000 };
    const [p, o] = await Promise.all([
      readHistory(ctx.js, ctx.jsm, { ...base, subject: subjects.predictions(horizon, pair) }),
      readHistory(ctx.js, ctx.jsm, { ...base, subject: subjects.outcomes(horizon, pair) }),
    ]);
    return { pair, horizon, predictions: p.map((i) => i.data), outcomes: o.map((i) => i.data) };
  });

  app.get<{ Params: Static<typeof PairParam> }>("/v1/models/:pair", {
    schema: {
      tags: ["predictions"], summary: "Model registry records of the pair (tf_models keys that name its token)",
      params: PairParam,
      response: { 200: Type.Object({ pair: Type.String(), models: Type.Array(Type.Object({ key: Type.String(), record: Type.Unknown() })) }), ...errorResponses },
    },
  }, async (req) => {
    const { pair, token } = knownPair(ctx, req.params.pair);
    const models = [...ctx.models.map.entries()].filter(([k]) => k.split(".").includes(token)).map(([key, record]) => ({ key, record }));
    models.sort((a, b) => a.key.localeCompare(b.key));
    return { pair, models };
  });

  app.get<{ Params: Static<typeof PairParam>; Querystring: Static<typeof AccuracyQuery> }>("/v1/accuracy/:pair", {
    schema: {
      tags: ["predictions"], summary: "Live accuracy over the most recent outcomes: the model against persistence",
      params: PairParam, querystring: AccuracyQuery,
      response: {
        200: Type.Object({
          pair: Type.String(), horizon: Type.String(),
          n: Type.Integer(), from_ts_ms: Type.Union([Type.Number(), Type.Null()]), to_ts_ms: Type.Union([Type.Number(), Type.Null()]),
          mae: Type.Union([Type.Number(), Type.Null()]), mae_persistence: Type.Union([Type.Number(), Type.Null()]),
          skill: Type.Union([Type.Number(), Type.Null()]), direction_hit_rate: Type.Union([Type.Number(), Type.Null()]),
          models: Type.Array(Type.String()),
        }),
        ...errorResponses,
      },
    },
  }, async (req) => {
    const { pair } = knownPair(ctx, req.params.pair);
    const horizon = req.query.horizon ?? dflt;
    const s = await ctx.accuracy.summary(pair, horizon, req.query.n ?? 500);
    return { pair, horizon, ...s };
  });

  // The older prediction API's shape, for its clients: GET /predictions?pair=BTC/USD.
  app.get<{ Querystring: Static<typeof LegacyPredictionQuery> }>("/predictions", {
    schema: {
      tags: ["predictions"], summary: "Older API shape: {pair, predicted_price, ts_ms} of the default horizon",
      querystring: LegacyPredictionQuery, response: { 200: LegacyPredictionReply, ...errorResponses },
    },
  }, async (req) => {
    pairParam(req.query.pair, "querystring.pair");
    const { pair } = knownPair(ctx, req.query.pair, "querystring.pair");
    const p = latestOr404(ctx, latestKeys.predictions(dflt, pair), `${dflt} prediction for ${pair}`).data as Prediction;
    return { pair, predicted_price: p.predicted_price, ts_ms: p.ts_ms };
  });
}
