// Market data: pairs, candles, indicators, sentiment, the live stream.
import type { FastifyInstance } from "fastify";
import { pairToToken } from "../protocol/pairs.js";
import { subjects } from "../protocol/subjects.js";
import { timeframeMs } from "../protocol/timeframes.js";
import { latestKeys } from "../supervisor/latest.js";
import { knownPair, latestOr404, timeParam, type GatewayContext } from "./context.js";
import { badParam } from "./errors.js";
import { readHistory } from "./history.js";
import {
  CandlesReply, errorResponses, IndicatorsReply, PairParam, PairsReply, SentimentSchema, SeriesQuery, StreamQuery,
} from "./schemas.js";
import { streamHandler } from "./sse.js";
import { Type, type Static } from "@sinclair/typebox";

export function marketRoutes(app: FastifyInstance, ctx: GatewayContext): void {
  app.get("/v1/pairs", {
    schema: { tags: ["market"], summary: "Pairs Tickflow follows (tf_pairs)", response: { 200: PairsReply } },
  }, async () => {
    const pairs = [...ctx.pairs.map.values()].map((v) => ({ pair: v.pair, token: pairToToken(v.pair) }));
    pairs.sort((a, b) => a.pair.localeCompare(b.pair));
    return { pairs };
  });

  const series = (kind: "candles" | "indicators") => async (req: { params: Static<typeof PairParam>; query: Static<typeof SeriesQuery> }) => {
    const { pair } = knownPair(ctx, req.params.pair);
    const q = req.query;
    const tf = q.tf ?? "1m";
    if (!ctx.config.timeframes.includes(tf)) throw badParam("querystring.tf", `"${tf}" is not a timeframe Tickflow computes (${ctx.config.timeframes.join(", ")})`);
    const limit = q.limit ?? 500;
    if (limit > ctx.config.gateway.maxHistory) throw badParam("querystring.limit", `must be at most ${ctx.config.gateway.maxHistory}`);
    const from = timeParam(q.from, "querystring.from");
    const to = timeParam(q.to, "querystring.to");
    if (from !== undefined && to !== undefined && from > to) throw badParam("querystring.from", "is after querystring.to");
    const items = await readHistory(ctx.js, ctx.jsm, {
      stream: kind === "candles" ? "CANDLES" : "INDICATORS",
      subject: kind === "candles" ? subjects.candles(tf, pair) : subjects.indicators(tf, pair),
      tsOf: (d) => (d as { window_start_ms: number }).window_start_ms, from, to, limit, stepMs: timeframeMs(tf),
    });
    return { pair, tf, [kind]: items.map((i) => i.data) };
  };

  app.get<{ Params: Static<typeof PairParam>; Querystring: Static<typeof SeriesQuery> }>("/v1/candles/:pair", {
    schema: {
      tags: ["market"], summary: "Closed candles by event time (window start), oldest first; without `from`, the last `limit`",
      params: PairParam, querystring: SeriesQuery, response: { 200: CandlesReply, ...errorResponses },
    },
  }, series("candles"));

  app.get<{ Params: Static<typeof PairParam>; Querystring: Static<typeof SeriesQuery> }>("/v1/indicators/:pair", {
    schema: {
      tags: ["market"], summary: "Candles with indicator values by event time, oldest first",
      params: PairParam, querystring: SeriesQuery, response: { 200: IndicatorsReply, ...errorResponses },
    },
  }, series("indicators"));

  app.get<{ Params: Static<typeof PairParam> }>("/v1/sentiment/:pair", {
    schema: {
      tags: ["market"], summary: "The newest sentiment signal of the pair", params: PairParam,
      response: { 200: Type.Object({ pair: Type.String(), sentiment: SentimentSchema }), ...errorResponses },
    },
  }, async (req) => {
    const { pair } = knownPair(ctx, req.params.pair);
    return { pair, sentiment: latestOr404(ctx, latestKeys.sentiment(pair), `sentiment for ${pair}`).data };
  });

  app.get<{ Querystring: Static<typeof StreamQuery> }>("/v1/stream", {
    schema: {
      tags: ["market"],
      summary: "Server-Sent Events: candle, indicators, sentiment, prediction, outcome (and reset). Event ids are resume positions: reconnect with Last-Event-ID to miss nothing.",
      querystring: StreamQuery,
    },
  }, async (req, reply) => {
    const pairs = req.query.pairs.split(",").map((s) => s.trim()).filter(Boolean).map((p) => knownPair(ctx, p, "querystring.pairs").pair);
    if (pairs.length === 0) throw badParam("querystring.pairs", "names no pair");
    await streamHandler({ hub: ctx.hub, latest: () => ctx.latest.map }, req, reply, [...new Set(pairs)]);
  });
}
