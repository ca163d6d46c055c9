// Ollama paths through a local server speaking /api/chat; the production client is under test.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { HeadlineClassifier } from "../../actors/scorer/classifier.js";
import { coinMatcher } from "../../actors/scorer/coins.js";
import { HeadlineScorer } from "../../actors/scorer/headline-scorer.js";
import { checkAnswer, LlmInvalidAnswerError, LlmUnavailableError, OllamaScorer } from "../../actors/scorer/ollama-scorer.js";
import { FakeOllama } from "../harness/ollama-server.js";

let fake: FakeOllama;
let clf: HeadlineClassifier;
const noSleep = async () => {};
const opts = (over: Partial<ConstructorParameters<typeof OllamaScorer>[0]> = {}) => ({ host: fake.url, model: "llama3.2:3b", timeoutMs: 2000, retries: 2, backoffMs: 1, ...over });

before(async () => {
  fake = await FakeOllama.start();
  clf = await HeadlineClassifier.load();
});
after(async () => {
  await fake.stop();
  await clf.close();
});

test("ollama - a valid structured answer: per-coin scores; the request carries the JSON schema, model and temperature 0", async () => {
  const s = new OllamaScorer(opts(), noSleep);
  fake.next({ kind: "valid", signal: "bearish", confidence: 0.7 });
  const n = fake.requests.length;
  const got = await s.score({ title: "Bitcoin and Ether slide", body: "", coins: ["BTC", "ETH"] });
  assert.deepEqual(got.map((c) => [c.coin, c.signal, c.confidence]), [["BTC", "bearish", 0.7], ["ETH", "bearish", 0.7]]);
  const r = fake.requests[n];
  assert.equal(r.model, "llama3.2:3b");
  assert.equal(r.stream, false);
  assert.equal(r.options?.temperature, 0);
  assert.deepEqual(r.format.properties.coins.items.properties.coin.enum, ["BTC", "ETH"]);
  assert.deepEqual(r.format.properties.coins.items.required, ["coin", "signal", "confidence", "reason"]);
  assert.match(r.messages[1].content, /Coins: BTC, ETH\nHeadline: Bitcoin and Ether slide/);
});

test("ollama - invalid JSON, then a valid answer: retried and accepted", async () => {
  const s = new OllamaScorer(opts(), noSleep);
  const n = fake.requests.length;
  fake.next({ kind: "invalid-json" }, { kind: "valid" });
  const got = await s.score({ title: "Solana rallies", body: "", coins: ["SOL"] });
  assert.equal(got[0].signal, "bullish");
  assert.equal(fake.requests.length - n, 2);
});

test("ollama - answers that stay invalid: LlmInvalidAnswerError with the last answer; the scorer falls back and flags a dead letter", async () => {
  const s = new OllamaScorer(opts({ retries: 1 }), noSleep);
  fake.next({ kind: "wrong-schema" }, { kind: "wrong-schema" });
  await assert.rejects(s.score({ title: "x", body: "", coins: ["BTC"] }), (err: unknown) => {
    assert.ok(err instanceof LlmInvalidAnswerError);
    assert.equal(err.code, "TF_LLM_INVALID_ANSWER");
    assert.match(err.message, /answer still invalid after 2 attempt\(s\): does not match the schema: coins\.0\.(signal|confidence|reason)/);
    assert.match(err.answer, /very good/);
    return true;
  });
  const hs = new HeadlineScorer({ coins: coinMatcher(), classifier: clf, ollama: s });
  fake.next({ kind: "invalid-json" }, { kind: "invalid-json" });
  const o = await hs.score({ title: "Bitcoin plunges as exchange is hacked" });
  assert.match(o.scorer, /^classifier:tfidf-softmax-/);
  assert.match(o.fallback ?? "", /answer still invalid after 2 attempt\(s\): not JSON/);
  assert.match(o.invalidAnswer?.answer ?? "", /"signal": "bull/);
  assert.deepEqual(o.coins.map((c) => [c.coin, c.signal]), [["BTC", "bearish"]]);
});

test("ollama - slow answers time out, HTTP errors and a closed port are 'unavailable'; the classifier answers and says why", async () => {
  const s = new OllamaScorer(opts({ timeoutMs: 150, retries: 1 }), noSleep);
  fake.next({ kind: "slow", delayMs: 5000 }, { kind: "slow", delayMs: 5000 });
  await assert.rejects(s.score({ title: "x", body: "", coins: ["ETH"] }), (err: unknown) => {
    assert.ok(err instanceof LlmUnavailableError);
    assert.match(err.message, /no answer within 150 ms, after 2 attempt\(s\)/);
    return true;
  });
  fake.next({ kind: "slow", delayMs: 5000 }, { kind: "valid", signal: "neutral" });
  assert.equal((await s.score({ title: "x", body: "", coins: ["ETH"] }))[0].signal, "neutral", "a timeout then a good answer");
  fake.next({ kind: "http-error", status: 500 }, { kind: "http-error", status: 500 });
  await assert.rejects(s.score({ title: "x", body: "", coins: ["ETH"] }), /TF_LLM_UNAVAILABLE|failed \(500\)/);
  const closed = new OllamaScorer({ host: "http://127.0.0.1:9", model: "m", timeoutMs: 1000, retries: 0, backoffMs: 1 }, noSleep);
  const hs = new HeadlineScorer({ coins: coinMatcher(), classifier: clf, ollama: closed });
  const o = await hs.score({ title: "Ethereum upgrade goes live, ether jumps 8%" });
  assert.match(o.scorer, /^classifier:/);
  assert.match(o.fallback ?? "", /Ollama http:\/\/127\.0\.0\.1:9 model m: .*after 1 attempt/);
  assert.equal(o.invalidAnswer, undefined);
  assert.deepEqual(o.coins.map((c) => c.coin), ["ETH"]);
});

test("ollama - answers are checked against the coins asked for", () => {
  const ok = JSON.stringify({ coins: [{ coin: "BTC", signal: "bullish", confidence: 0.9, reason: "r" }] });
  assert.equal((checkAnswer(ok, ["BTC"]) as unknown[]).length, 1);
  assert.match(checkAnswer(ok, ["BTC", "ETH"]) as string, /no score for ETH/);
  assert.match(checkAnswer(ok, ["ETH"]) as string, /names coin BTC, which was not asked for/);
  assert.match(checkAnswer('{"coins": []}', ["BTC"]) as string, /schema: coins/);
});

test("headline scorer - without Ollama the classifier answers; no coin named means MARKET; source tags count", async () => {
  const hs = new HeadlineScorer({ coins: coinMatcher(), classifier: clf });
  const o = await hs.score({ title: "Crypto markets crash as liquidations mount" });
  assert.deepEqual(o.coins.map((c) => c.coin), ["MARKET"]);
  assert.equal(o.fallback, undefined);
  assert.equal(o.overall.signal, "bearish");
  const t = await hs.score({ title: "Regulators meet exchange heads", coins_hint: ["XBT", "NOPE"] });
  assert.deepEqual(t.coins.map((c) => c.coin), ["BTC"]);
});
