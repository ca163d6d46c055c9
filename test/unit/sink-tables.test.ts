// Sink SQL and row mapping, without a database.
import { test } from "node:test";
import assert from "node:assert/strict";
import { BadInputError } from "../../protocol/errors.js";
import { ddl, pkOf, tableNamed, toRow, upsertSql } from "../../actors/sink/tables.js";

const candle = { v: 1, pair: "BTC/USD", tf: "1m", window_start_ms: 60_000, window_end_ms: 120_000, open: 1, high: 2, low: 0.5, close: 1.5, volume: 3, vwap: 1.2, trades: 4, flat: false };

test("sink tables - upsert per dialect: ON CONFLICT DO UPDATE for postgres, plain INSERT into a keyed table for RisingWave", () => {
  const t = tableNamed("candles");
  const pgSql = upsertSql("postgres", "tf", t, 2);
  assert.match(pgSql, /^INSERT INTO "tf"\."candles" \("pair", "tf", "window_start_ms", .*"seq"\) VALUES \(\$1, .*\$13\), \(\$14, .*\$26\) ON CONFLICT \("pair", "tf", "window_start_ms"\) DO UPDATE SET "window_end_ms" = EXCLUDED\."window_end_ms", /);
  assert.doesNotMatch(pgSql, /"pair" = EXCLUDED/);
  assert.doesNotMatch(upsertSql("risingwave", "tf", t, 1), /ON CONFLICT/);
  assert.match(upsertSql("postgres", "tf", tableNamed("indicators"), 1), /\$13::jsonb/);
  const stmts = ddl("postgres", "tf");
  assert.equal(stmts[0], 'CREATE SCHEMA IF NOT EXISTS "tf"');
  assert.ok(stmts.some((s) => /CREATE TABLE IF NOT EXISTS "tf"\."outcomes" \(.*"baseline_abs_error" double precision NOT NULL.*PRIMARY KEY \("pair", "horizon_s", "ts_ms"\)\)/.test(s)));
  assert.ok(ddl("risingwave", "tf").every((s) => !/NOT NULL/.test(s)));
});

test("sink tables - rows in column order with the sequence; the key; bad messages name the field", () => {
  const t = tableNamed("candles");
  const row = toRow(t, candle, 7, "md.candles.1m.BTC-USD#7");
  assert.deepEqual(row, ["BTC/USD", "1m", 60_000, 120_000, 1, 2, 0.5, 1.5, 3, 1.2, 4, false, 7]);
  assert.equal(pkOf(t, row), "BTC/USD\u00001m\u000060000");
  assert.throws(() => toRow(t, { ...candle, close: "x" }, 1, "here"), (e: Error) => e instanceof BadInputError && /here: field close is not a finite number/.test(e.message));
  assert.throws(() => toRow(t, { ...candle, tf: undefined }, 1, "here"), /field tf is missing/);
  assert.throws(() => toRow(t, [1], 1, "here"), /not an object/);
  const p = tableNamed("predictions");
  const pr = { v: 1, pair: "BTC/USD", horizon_s: 300, ts_ms: 1, target_ts_ms: 2, base_price: 1, predicted_return: 0, predicted_price: 1, model: "m", model_version: 3 };
  assert.equal(toRow(p, pr, 1, "x")[8], "3", "model versions are stored as text");
});
