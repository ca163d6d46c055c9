// The pure parts of keyed actors, pool stages and joined inputs: key and input-name validation,
// lease keys, journal subjects, pool consumer names.
import { test } from "node:test";
import assert from "node:assert/strict";
import { subjects } from "../../protocol/subjects.js";
import { actorKey, checkKeys, isPlainKey, keyToken } from "../../supervisor/actor-key.js";
import { checkJoinedInputs, journalSubject } from "../../supervisor/journal.js";
import { poolConsumerName } from "../../supervisor/pool-cell.js";

test("keyed - keys computed from config are validated with a clear error", () => {
  assert.deepEqual(checkKeys("news", ["cryptopanic", "rss-coindesk", "cryptopanic"]), ["cryptopanic", "rss-coindesk"]);
  assert.throws(() => checkKeys("news", ["CryptoPanic"]), /stage "news": actor key "CryptoPanic" must be lower-case letters/);
  assert.throws(() => checkKeys("news", ["a.b"]), /"a.b"/);
  assert.throws(() => checkKeys("news", [""]), /actor key ""/);
  assert.deepEqual(checkKeys("sentiment", ["BTC/USD"]), ["BTC/USD"], "a pair is a key too");
});

test("keyed - lease keys, dead-letter subjects and journal subjects of pair and plain keys never collide", () => {
  assert.equal(keyToken("BTC/USD"), "BTC-USD");
  assert.equal(keyToken("rss_1"), "rss_1");
  assert.throws(() => keyToken("a b"), /neither a pair/);
  assert.throws(() => keyToken("BTC-USD"), /neither a pair/, "a pair's token is not a key of its own");
  assert.equal(actorKey("news", "cryptopanic"), "news.cryptopanic");
  assert.equal(actorKey("candles", "ETH/USDT"), "candles.ETH-USDT");
  assert.equal(subjects.dlq("news", "cryptopanic"), "dlq.news.cryptopanic");
  assert.equal(subjects.dlq("candles", "ETH/USDT"), "dlq.candles.ETH-USDT");
  assert.equal(journalSubject("predictor", "BTC/USD"), "tf.journal.predictor.BTC-USD");
  assert.ok(isPlainKey("btc-usd") && !isPlainKey("BTC-USD"));
});

test("joined - input names are short unique tokens", () => {
  const ok = [{ name: "indicators", stream: "INDICATORS", filter: "md.indicators.1m.BTC-USD" }, { name: "model", stream: "KV_tf_models", filter: "$KV.tf_models.BTC-USD" }];
  assert.deepEqual(checkJoinedInputs("predictor", ok), ok);
  assert.throws(() => checkJoinedInputs("s", []), /stage "s": input\(\) returned no inputs/);
  assert.throws(() => checkJoinedInputs("s", [{ name: "a", stream: "X", filter: "x" }, { name: "a", stream: "Y", filter: "y" }]), /stage "s": two inputs are named "a"/);
  assert.throws(() => checkJoinedInputs("s", [{ name: "A b", stream: "X", filter: "x" }]), /input name "A b" must be lower-case/);
  // The main input (the first) is read by its subject's last sequence at start: one subject.
  assert.throws(() => checkJoinedInputs("s", [{ name: "c", stream: "X", filter: "md.candles.1m.*" }, { name: "n", stream: "Y", filter: "y.>" }]), /stage "s": the first input \("c", the main one\) must be one subject, not the wildcard md\.candles\.1m\.\*/);
  assert.deepEqual(checkJoinedInputs("s", [{ name: "c", stream: "X", filter: "x" }, { name: "n", stream: "Y", filter: "y.>" }]).length, 2, "other inputs may be wildcards");
});

test("pool - one consumer name per stage, valid as a durable name", () => {
  assert.equal(poolConsumerName("scorer"), "tf_pool_scorer");
  assert.match(poolConsumerName("a.b c"), /^[A-Za-z0-9_-]+$/);
});
