// Message shapes: the public contract of DESIGN.md §2. One TypeBox schema per message gives the
// TypeScript type, the runtime validator (compiled once) and, later, the gateway's route schemas.
// Fields may be added; the named ones are never renamed. Every message carries `v`, its schema version.
import { Type, type Static, type TSchema } from "@sinclair/typebox";
import { TypeCompiler, type TypeCheck } from "@sinclair/typebox/compiler";

export const SCHEMA_VERSION = 1;

const Finite = (opts: object = {}) => Type.Number({ ...opts });
const Price = () => Type.Number({ exclusiveMinimum: 0 });
const Millis = () => Type.Integer({ minimum: 0 });

/** A pair id in Kraken v2 form, `BASE/QUOTE` (e.g. `BTC/USD`). */
export const PairId = Type.String({ pattern: "^[A-Z0-9]{1,16}/[A-Z0-9]{1,16}$" });

/** One executed trade, as the trades stage publishes it on `md.trades.<pair>`. */
export const TradeSchema = Type.Object({
  v: Type.Literal(SCHEMA_VERSION),
  pair: PairId,
  trade_id: Type.Integer({ minimum: 0 }),
  price: Price(),
  qty: Type.Number({ minimum: 0 }),
  side: Type.Union([Type.Literal("buy"), Type.Literal("sell")]),
  ord_type: Type.Union([Type.Literal("market"), Type.Literal("limit")]),
  ts_ms: Millis(),
});
export type Trade = Static<typeof TradeSchema>;

/**
 * An event-time watermark, published in-band on `md.trades.<pair>` by the trades stage: "no trade
 * with ts_ms < this will follow". In-band (same subject as the trades) so that downstream window
 * closing depends only on the stream's content and a replay is deterministic. `eos` marks the end
 * of a bounded input (a replay run with --once): every open window may close.
 */
export const WatermarkSchema = Type.Object({
  v: Type.Literal(SCHEMA_VERSION),
  kind: Type.Literal("watermark"),
  pair: PairId,
  ts_ms: Millis(),
  eos: Type.Boolean(),
  /** The last trade published before this watermark: where a new owner of the source resumes. */
  last_trade_id: Type.Union([Type.Integer({ minimum: 0 }), Type.Null()]),
  last_trade_ts: Type.Union([Millis(), Type.Null()]),
});
export type Watermark = Static<typeof WatermarkSchema>;

/** A closed OHLCV candle on `md.candles.<tf>.<pair>`. `flat` marks a window with no trades. */
export const CandleSchema = Type.Object({
  v: Type.Literal(SCHEMA_VERSION),
  pair: PairId,
  tf: Type.String({ pattern: "^[0-9]+[smhd]$" }),
  window_start_ms: Millis(),
  window_end_ms: Millis(),
  open: Price(),
  high: Price(),
  low: Price(),
  close: Price(),
  volume: Type.Number({ minimum: 0 }),
  vwap: Price(),
  trades: Type.Integer({ minimum: 0 }),
  flat: Type.Boolean(),
});
export type Candle = Static<typeof CandleSchema>;

/** A candle plus indicator values (`name_period`, null while warming up) on `md.indicators.<tf>.<pair>`. */
export const IndicatorsSchema = Type.Composite([
  CandleSchema,
  Type.Object({ values: Type.Record(Type.String(), Type.Union([Finite(), Type.Null()])) }),
]);
export type Indicators = Static<typeof IndicatorsSchema>;

/**
 * A message a stage could not use, on `dlq.<stage>.<key>`, with the original bytes. `pair` is the
 * actor's pair; an actor keyed otherwise (a news source) puts its key there too, and in `key`.
 */
export const DeadLetterSchema = Type.Object({
  v: Type.Literal(SCHEMA_VERSION),
  stage: Type.String(),
  pair: Type.String(),
  key: Type.Optional(Type.String()),
  reason: Type.String(),
  subject: Type.String(),
  seq: Type.Union([Type.Integer({ minimum: 0 }), Type.Null()]),
  ts_ms: Millis(),
  payload: Type.Uint8Array(),
});
export type DeadLetter = Static<typeof DeadLetterSchema>;

/** A compiled validator with a readable first error: "price: Expected number > 0 (got -1)". */
export interface Validator<T> {
  check(value: unknown): value is T;
  /** null when valid, else a one-line description of the first problem, naming the field. */
  explain(value: unknown): string | null;
}

/**
 * `fastCheck`: a check that accepts exactly what the schema accepts, cheaper than the compiled
 * one, used to pass valid values; the compiled schema still words what is wrong with the others.
 */
export function validator<S extends TSchema>(schema: S, fastCheck?: (value: unknown) => boolean): Validator<Static<S>> {
  const compiled: TypeCheck<S> = TypeCompiler.Compile(schema);
  const ok = fastCheck ?? ((value: unknown) => compiled.Check(value));
  return {
    check: (value: unknown): value is Static<S> => ok(value),
    explain(value: unknown): string | null {
      if (ok(value)) return null;
      const first = compiled.Errors(value).First();
      if (!first) return "invalid value";
      const field = first.path.replace(/^\//, "").replace(/\//g, ".") || "(message)";
      return `${field}: ${first.message} (got ${preview(first.value)})`;
    },
  };
}

function preview(value: unknown): string {
  if (value === undefined) return "nothing";
  if (value instanceof Uint8Array) return `${value.length} bytes`;
  const s = JSON.stringify(value);
  return s === undefined ? String(value) : s.length > 60 ? `${s.slice(0, 57)}...` : s;
}

export const TradeCheck = validator(TradeSchema);
export const WatermarkCheck = validator(WatermarkSchema);
export const CandleCheck = validator(CandleSchema);
// Indicators: the candle's fields by the compiled schema, the values (a record of about 24 numbers)
// by hand. The compiled record check made an array per entry (Object.entries) and tested a regex
// on every key: 4 µs a message, read by the predictor and the trainer of every pair every minute.
const candleWithValuesObject = TypeCompiler.Compile(Type.Composite([CandleSchema, Type.Object({ values: Type.Object({}) })]));
/** Every own value a finite number or null (what `Record(String, Union([Number, Null]))` accepts of an object). */
export function indicatorValuesOk(values: object): boolean {
  if (values instanceof Date || values instanceof Uint8Array) return false;
  for (const k in values) {
    if (!Object.hasOwn(values, k)) continue;
    const x = (values as Record<string, unknown>)[k];
    if (x !== null && !Number.isFinite(x)) return false;
  }
  return true;
}
export const IndicatorsCheck = validator(IndicatorsSchema, (v) => candleWithValuesObject.Check(v) && indicatorValuesOk((v as { values: object }).values));
export const DeadLetterCheck = validator(DeadLetterSchema);
