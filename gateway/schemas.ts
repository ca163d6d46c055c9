// Route schemas: TypeBox, so one definition gives the validator, the serializer and the OpenAPI
// document. Message shapes come from protocol/messages.ts where they exist; predictions and
// outcomes are described by their DESIGN.md fields (other fields pass through).
import { Type } from "@sinclair/typebox";
import { CandleSchema, IndicatorsSchema } from "../protocol/messages.js";

export const ErrorBodySchema = Type.Object({
  error: Type.String({ description: "stable code from protocol/errors.ts, e.g. TF_BAD_ARGS" }),
  message: Type.String(),
}, { $id: "ErrorBody" });

export const PairParam = Type.Object({
  pair: Type.String({ description: "BTC-USD or BTC%2FUSD", minLength: 3, maxLength: 40 }),
});

/** Event time: milliseconds since the epoch, or an ISO 8601 date-time. */
const TimeParam = (what: string) => Type.String({ description: `${what}: ms since epoch or ISO 8601`, maxLength: 40 });
const Horizon = Type.String({ pattern: "^[0-9]{1,5}[smhd]$", description: "prediction horizon, e.g. 5m" });

export const SeriesQuery = Type.Object({
  tf: Type.Optional(Type.String({ pattern: "^[0-9]{1,5}[smhd]$", default: "1m", description: "candle timeframe" })),
  from: Type.Optional(TimeParam("first window start (inclusive)")),
  to: Type.Optional(TimeParam("last window start (inclusive)")),
  limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 100_000, default: 500 })),
}, { additionalProperties: false });

export const HorizonQuery = Type.Object({ horizon: Type.Optional(Horizon) }, { additionalProperties: false });

export const PredictionHistoryQuery = Type.Object({
  horizon: Type.Optional(Horizon),
  from: Type.Optional(TimeParam("first prediction time (inclusive)")),
  to: Type.Optional(TimeParam("last prediction time (inclusive)")),
  limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 100_000, default: 500 })),
}, { additionalProperties: false });

export const AccuracyQuery = Type.Object({
  horizon: Type.Optional(Horizon),
  n: Type.Optional(Type.Integer({ minimum: 1, maximum: 10_000, default: 500, description: "most recent outcomes to score" })),
}, { additionalProperties: false });

export const StreamQuery = Type.Object({
  pairs: Type.String({ minLength: 3, maxLength: 2000, description: "comma-separated pairs, e.g. BTC-USD,ETH-USD" }),
  lastEventId: Type.Optional(Type.String({ maxLength: 200, description: "resume position (same as the Last-Event-ID header)" })),
}, { additionalProperties: false });

export const LegacyPredictionQuery = Type.Object({ pair: Type.String({ minLength: 3, maxLength: 40 }) }, { additionalProperties: false });

export const PredictionSchema = Type.Object({
  v: Type.Integer(),
  pair: Type.String(),
  horizon_s: Type.Number(),
  ts_ms: Type.Number(),
  target_ts_ms: Type.Number(),
  base_price: Type.Number(),
  predicted_return: Type.Number(),
  predicted_price: Type.Number(),
  model: Type.String(),
  model_version: Type.Union([Type.String(), Type.Number()]),
}, { additionalProperties: true });

export const SentimentSchema = Type.Object({
  v: Type.Integer(), pair: Type.String(), coin: Type.String(), ts_ms: Type.Number(), score: Type.Number(),
  items: Type.Number(), half_life_s: Type.Number(),
}, { additionalProperties: true });

export const CandlesReply = Type.Object({ pair: Type.String(), tf: Type.String(), candles: Type.Array(CandleSchema) });
export const IndicatorsReply = Type.Object({ pair: Type.String(), tf: Type.String(), indicators: Type.Array(IndicatorsSchema) });
export const PredictionReply = Type.Object({ pair: Type.String(), horizon: Type.String(), prediction: PredictionSchema });
export const PredictionHistoryReply = Type.Object({
  pair: Type.String(), horizon: Type.String(),
  predictions: Type.Array(PredictionSchema),
  outcomes: Type.Array(Type.Object({}, { additionalProperties: true })),
});
export const LegacyPredictionReply = Type.Object({ pair: Type.String(), predicted_price: Type.Number(), ts_ms: Type.Number() });
export const PairsReply = Type.Object({ pairs: Type.Array(Type.Object({ pair: Type.String(), token: Type.String() })) });

export const errorResponses = {
  400: ErrorBodySchema, 404: ErrorBodySchema, 503: ErrorBodySchema,
};
