// The newcomer's terminal: log format choice and the progress line, without a terminal.
import { test } from "node:test";
import assert from "node:assert/strict";
import { logFormat } from "../../supervisor/log.js";
import { formatDuration, formatProgress } from "../../supervisor/progress.js";

test("log format - pretty on a terminal, JSON when piped, unless LOG_FORMAT says otherwise", () => {
  assert.equal(logFormat("auto", true), "pretty");
  assert.equal(logFormat("auto", false), "json");
  assert.equal(logFormat("json", true), "json");
  assert.equal(logFormat("pretty", false), "pretty");
});

test("progress - done of total, rate and time left", () => {
  assert.equal(formatProgress({ done: 12_345, total: 40_000, unit: "trades" }, 8_000), "12,345 / 40,000 trades (30.9 %) · 8,000 trades/s · 4 s left");
  assert.equal(formatProgress({ done: 0, total: 10, unit: "trades" }, null), "0 / 10 trades (0.0 %)");
  assert.equal(formatProgress({ done: 12, total: 10, unit: "trades" }, 1), "12 / 10 trades (100.0 %) · 1 trades/s · 0 s left");
  assert.equal(formatDuration(125), "2 min 5 s");
  assert.equal(formatDuration(3 * 3600 + 120), "3 h 2 min");
});
