// `tickflow sentiment score` through the real CLI, as a user runs it: no NATS anywhere.
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { join } from "node:path";
import { ROOT } from "../harness/data.js";

const BIN = join(ROOT, "bin", "tickflow.js");
const run = (args: string[], input = "") => spawnSync(process.execPath, [BIN, ...args], { cwd: ROOT, input, encoding: "utf8", env: { ...process.env, NATS_URL: "nats://127.0.0.1:1", OLLAMA_HOST: "" } });

test("cli - sentiment score --stdin needs no NATS (the one-headline form is in test/unit/sentiment-cli); bad usage exits 2 with a message", () => {
  const many = run(["sentiment", "score", "--stdin"], "Bitcoin hits a record high\nDogecoin slumps 20%\n");
  assert.equal(many.status, 0, many.stderr);
  const lines = many.stdout.trimEnd().split("\n").map((l) => JSON.parse(l));
  assert.deepEqual(lines.map((l) => [l.headline, l.signal, l.coins.map((c: { coin: string }) => c.coin).join()]), [
    ["Bitcoin hits a record high", "bullish", "BTC"],
    ["Dogecoin slumps 20%", "bearish", "DOGE"],
  ]);
  const bad = run(["sentiment", "score"]);
  assert.equal(bad.status, 2);
  assert.match(bad.stderr, /give a headline in quotes, or --stdin/);
});
