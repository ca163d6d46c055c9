// Live accuracy maths, and the history cursor format, without NATS.
import { test } from "node:test";
import assert from "node:assert/strict";
import { summarizeOutcomes } from "../../gateway/accuracy.js";
import { formatCursor, kindOf, parseCursor } from "../../gateway/live-hub.js";

test("accuracy - MAE of model and persistence, skill, direction hit rate", () => {
  const o = (predicted_return: number, actual_return: number, abs_error: number, baseline_abs_error: number, ts_ms: number) =>
    ({ ts_ms, predicted_return, actual_return, abs_error, baseline_abs_error, model: "ridge", model_version: "2" });
  const s = summarizeOutcomes([o(0.01, 0.02, 1, 2, 10), o(-0.01, 0.01, 3, 2, 20), o(0.02, 0, 2, 2, 30)]);
  assert.equal(s.n, 3);
  assert.equal(s.mae, 2);
  assert.equal(s.mae_persistence, 2);
  assert.equal(s.skill, 0);
  // The zero move is not scored for direction: one hit out of two.
  assert.equal(s.direction_hit_rate, 0.5);
  assert.deepEqual([s.from_ts_ms, s.to_ts_ms, s.models], [10, 30, ["ridge@2"]]);
  assert.equal(summarizeOutcomes([o(0.01, 0.01, 1, 4, 1)]).skill, 0.75);
  assert.deepEqual(summarizeOutcomes([]), { n: 0, from_ts_ms: null, to_ts_ms: null, mae: null, mae_persistence: null, skill: null, direction_hit_rate: null, models: [] });
});

test("live hub - cursors round-trip; malformed ones are ignored; subjects map to event kinds", () => {
  assert.deepEqual(parseCursor(formatCursor([12, 0, 3, 99])), [12, 0, 3, 99]);
  for (const bad of ["", "1-2-3", "1-2-3-x", "1-2-3-4-5", "-1-2-3"]) assert.equal(parseCursor(bad), null, bad);
  assert.equal(kindOf("md.candles.1m.BTC-USD"), "candle");
  assert.equal(kindOf("ml.outcomes.5m.BTC-USD"), "outcome");
  assert.equal(kindOf("news.scored"), null);
});
