// The sink's tables: which stream feeds each, its columns and primary key, how a message becomes
// a row, and the SQL for both dialects. Pure: no I/O, unit-tested on its own.
//
// Every table has a natural primary key taken from the message (never the stream sequence), so a
// replay, a redelivery or a second sink replica writes the same row again: upsert, not a duplicate.
import { BadInputError } from "../../protocol/errors.js";

export type Dialect = "risingwave" | "postgres";
type ColType = "varchar" | "bigint" | "integer" | "double precision" | "boolean" | "jsonb";
type Col = { name: string; type: ColType; get(m: Record<string, unknown>): unknown; nullable?: boolean };

export type TableDef = {
  name: string;
  stream: string;
  /** The consumer's filter: one subject tree within the stream. */
  filter: string;
  pk: string[];
  cols: Col[];
};

const f = (name: string, type: ColType, nullable = false): Col => ({ name, type, get: (m) => m[name], nullable });

const candleCols: Col[] = [
  f("pair", "varchar"), f("tf", "varchar"), f("window_start_ms", "bigint"), f("window_end_ms", "bigint"),
  f("open", "double precision"), f("high", "double precision"), f("low", "double precision"), f("close", "double precision"),
  f("volume", "double precision"), f("vwap", "double precision"), f("trades", "integer"), f("flat", "boolean"),
];
const predictionCols: Col[] = [
  f("pair", "varchar"), f("horizon_s", "integer"), f("ts_ms", "bigint"), f("target_ts_ms", "bigint"), f("base_price", "double precision"),
  f("predicted_return", "double precision"), f("predicted_price", "double precision"), f("model", "varchar"),
  { name: "model_version", type: "varchar", get: (m) => (m.model_version === undefined || m.model_version === null ? null : String(m.model_version)), nullable: true },
];

export const TABLES: TableDef[] = [
  { name: "candles", stream: "CANDLES", filter: "md.candles.>", pk: ["pair", "tf", "window_start_ms"], cols: candleCols },
  {
    name: "indicators", stream: "INDICATORS", filter: "md.indicators.>", pk: ["pair", "tf", "window_start_ms"],
    cols: [...candleCols, { name: "values", type: "jsonb", get: (m) => JSON.stringify(m.values ?? {}) }],
  },
  {
    name: "sentiment", stream: "SENTIMENT", filter: "md.sentiment.>", pk: ["pair", "ts_ms"],
    cols: [f("pair", "varchar"), f("coin", "varchar"), f("ts_ms", "bigint"), f("score", "double precision"), f("items", "integer"), f("half_life_s", "double precision")],
  },
  { name: "predictions", stream: "PREDICTIONS", filter: "ml.predictions.>", pk: ["pair", "horizon_s", "ts_ms"], cols: predictionCols },
  {
    name: "outcomes", stream: "PREDICTIONS", filter: "ml.outcomes.>", pk: ["pair", "horizon_s", "ts_ms"],
    cols: [...predictionCols, f("actual_price", "double precision"), f("actual_return", "double precision"),
      f("abs_error", "double precision"), f("baseline_abs_error", "double precision")],
  },
];

export function tableNamed(name: string): TableDef {
  const t = TABLES.find((x) => x.name === name);
  if (!t) throw new Error(`no sink table "${name}" (tables: ${TABLES.map((x) => x.name).join(", ")})`);
  return t;
}

const q = (id: string) => `"${id}"`;

/** CREATE SCHEMA / TABLE statements, safe to run again. */
export function ddl(dialect: Dialect, schema: string): string[] {
  const out = [`CREATE SCHEMA IF NOT EXISTS ${q(schema)}`];
  for (const t of TABLES) {
    const cols = [...t.cols.map((c) => `${q(c.name)} ${c.type}${c.nullable || dialect === "risingwave" ? "" : " NOT NULL"}`), `${q("seq")} bigint`];
    // RisingWave: a table with a primary key overwrites the row on an insert with an existing key
    // (its default ON CONFLICT behaviour), which is the upsert we need.
    out.push(`CREATE TABLE IF NOT EXISTS ${q(schema)}.${q(t.name)} (${cols.join(", ")}, PRIMARY KEY (${t.pk.map(q).join(", ")}))`);
  }
  return out;
}

/** A row in column order (plus the stream sequence), or BadInputError naming the field. */
export function toRow(t: TableDef, data: unknown, seq: number, where: string): unknown[] {
  if (!data || typeof data !== "object" || Array.isArray(data)) throw new BadInputError(`${where}: not an object`);
  const m = data as Record<string, unknown>;
  const row = t.cols.map((c) => {
    const v = c.get(m);
    if (v === undefined || v === null) {
      if (c.nullable) return null;
      throw new BadInputError(`${where}: field ${c.name} is missing`);
    }
    if (c.type === "varchar" && typeof v !== "string") throw new BadInputError(`${where}: field ${c.name} is not a string (got ${JSON.stringify(v)})`);
    if ((c.type === "bigint" || c.type === "integer" || c.type === "double precision") && (typeof v !== "number" || !Number.isFinite(v))) {
      throw new BadInputError(`${where}: field ${c.name} is not a finite number (got ${JSON.stringify(v)})`);
    }
    if ((c.type === "bigint" || c.type === "integer") && !Number.isInteger(v)) throw new BadInputError(`${where}: field ${c.name} is not a whole number (got ${v})`);
    if (c.type === "boolean" && typeof v !== "boolean") throw new BadInputError(`${where}: field ${c.name} is not true/false`);
    return v;
  });
  row.push(seq);
  return row;
}

export function pkOf(t: TableDef, row: unknown[]): string {
  return t.pk.map((k) => String(row[t.cols.findIndex((c) => c.name === k)])).join("\u0000");
}

/** One multi-row upsert statement with numbered parameters. Rows must have distinct keys. */
export function upsertSql(dialect: Dialect, schema: string, t: TableDef, rows: number): string {
  const names = [...t.cols.map((c) => c.name), "seq"];
  const width = names.length;
  const casts = [...t.cols.map((c) => (c.type === "jsonb" ? "::jsonb" : "")), ""];
  const values: string[] = [];
  for (let r = 0; r < rows; r++) values.push(`(${names.map((_, i) => `$${r * width + i + 1}${casts[i]}`).join(", ")})`);
  const head = `INSERT INTO ${q(schema)}.${q(t.name)} (${names.map(q).join(", ")}) VALUES ${values.join(", ")}`;
  if (dialect === "risingwave") return head;
  const set = names.filter((n) => !t.pk.includes(n)).map((n) => `${q(n)} = EXCLUDED.${q(n)}`);
  return `${head} ON CONFLICT (${t.pk.map(q).join(", ")}) DO UPDATE SET ${set.join(", ")}`;
}
