// The per-stage lines of `tickflow status`: what a person reads first when there are thousands of actors.
import { test } from "node:test";
import assert from "node:assert/strict";
import { stageSummary } from "../../supervisor/cli.js";

test("status summary - one line per stage: actors by state (most first), restarts and dead letters only when there are any", () => {
  const a = (stage: string, state: string, restarts = 0, deadLetters = 0) => ({ stage, state, restarts, deadLetters });
  const lines = stageSummary([
    a("candles", "running"), a("candles", "running"), a("candles", "failed", 3, 2),
    a("sentiment", "running"), a("sentiment", "stopped", 1),
    a("trades", "running"),
  ]);
  assert.deepEqual(lines, [
    "candles    3 actors: 2 running, 1 failed · 3 restarts · 2 dead letters",
    "sentiment  2 actors: 1 running, 1 stopped · 1 restart",
    "trades     1 actor: 1 running",
  ]);
  assert.deepEqual(stageSummary([]), []);
});
