import { test } from "node:test";
import assert from "node:assert/strict";
import { Readable } from "node:stream";
import { runSentimentScore } from "../../actors/scorer/cli.js";
import { DEFAULT_CONFIG, type Config } from "../../supervisor/config.js";
import { FakeOllama } from "../harness/ollama-server.js";

const usage = (m: string): never => { throw new Error(`usage: ${m}`); };
async function run(args: string[], stdin: string | null, config: Config = DEFAULT_CONFIG): Promise<string> {
  let out = "";
  await runSentimentScore(args, stdin !== null, config, { write: (s) => (out += s), input: Readable.from(stdin === null ? [] : [stdin]) }, usage);
  return out;
}

test("sentiment score - one headline: per-coin scores and the scorer, without NATS", async () => {
  const out = await run(["score", "Bitcoin and Ether plunge as liquidations mount"], null);
  assert.match(out, /^scorer: classifier:tfidf-softmax-\S+\noverall: bearish \d\.\d\d\nCOIN\s+SIGNAL\s+CONF\s+REASON\nBTC\s+bearish .*\nETH\s+bearish /);
});

test("sentiment score --stdin - one JSON line per input line, in order, empty lines answered too", async () => {
  const out = await run(["score"], "Solana soars to a record high\n\nSEC sues exchange over unregistered tokens\nShares of Acme flat\n");
  const lines = out.trimEnd().split("\n").map((l) => JSON.parse(l));
  assert.equal(lines.length, 4);
  assert.equal(lines[0].headline, "Solana soars to a record high");
  assert.equal(lines[0].signal, "bullish");
  assert.deepEqual(lines[0].coins.map((c: { coin: string }) => c.coin), ["SOL"]);
  assert.match(lines[1].error, /empty line/);
  assert.equal(lines[2].signal, "bearish");
  assert.deepEqual(lines[3].coins.map((c: { coin: string }) => c.coin), ["MARKET"]);
  for (const l of [lines[0], lines[2], lines[3]]) {
    assert.ok(l.confidence > 0 && l.confidence <= 1);
    assert.match(l.scorer, /^classifier:/);
  }
});

test("sentiment score - with OLLAMA_HOST set, Ollama answers; usage errors are clear", async () => {
  const fake = await FakeOllama.start({ kind: "valid", signal: "neutral", confidence: 0.6 });
  try {
    const cfg = structuredClone(DEFAULT_CONFIG);
    cfg.news.ollama.host = fake.url;
    const l = JSON.parse(await run(["score"], "ETH gas fees unchanged\n", cfg));
    assert.equal(l.scorer, "ollama:llama3.2:3b");
    assert.deepEqual(l.coins, [{ coin: "ETH", signal: "neutral", confidence: 0.6, reason: "ETH news reads neutral" }]);
  } finally {
    await fake.stop();
  }
  await assert.rejects(run(["score"], null), /usage: sentiment score: give a headline/);
  await assert.rejects(run(["rate", "x"], null), /unknown subcommand "rate"/);
});
