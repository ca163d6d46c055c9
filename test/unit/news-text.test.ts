import { test } from "node:test";
import assert from "node:assert/strict";
import { baseCoin, coinMatcher, DEFAULT_COINS, extractCoins } from "../../actors/scorer/coins.js";
import { lexiconScore } from "../../actors/scorer/lexicon.js";

const m = coinMatcher();

test("coins - tickers, names and cashtags; ambiguous tickers only in upper case", () => {
  assert.deepEqual(extractCoins("Bitcoin Returns Above USD 20K, Ethereum Rallies, CEL Keeps Outperforming", m), ["BTC", "ETH"]);
  assert.deepEqual(extractCoins("XBT and ether slide as $sol jumps", m), ["BTC", "ETH", "SOL"]);
  assert.deepEqual(extractCoins("BTC/USD hits a high; btc dominance", m), ["BTC"]);
  assert.deepEqual(extractCoins("Click the link to see the dot plot from one sol-ar panel", m), []);
  assert.deepEqual(extractCoins("Chainlink (LINK) and Polkadot DOT rise", m), ["LINK", "DOT"]);
  assert.deepEqual(extractCoins("Binance Coin outpaces Shiba Inu", m), ["BNB", "SHIB"]);
  assert.deepEqual(extractCoins("Binance exchange outage", m), []);
  assert.deepEqual(extractCoins("Etherscan and bitcoiners", m), [], "whole words only");
});

test("coins - the map is configurable, and a pair's base maps to its coin", () => {
  const custom = coinMatcher({ ...DEFAULT_COINS, PEPE: ["PEPE", "pepecoin"] });
  assert.deepEqual(extractCoins("Pepecoin and $PEPE", custom), ["PEPE"]);
  assert.deepEqual(extractCoins("Pepecoin", m), []);
  assert.equal(baseCoin("XBT/USD", m), "BTC");
  assert.equal(baseCoin("ETH/USDT", m), "ETH");
  assert.equal(baseCoin("FOO/USD", m), "FOO");
  assert.throws(() => coinMatcher({ btc: ["bitcoin"] }), /upper-case/);
});

test("lexicon - VADER-style compound: valence, negation, boosters, but-clauses", () => {
  const up = lexiconScore("Bitcoin surges to a record high");
  const down = lexiconScore("Ether plunges after exchange hack");
  assert.equal(up.signal, "bullish");
  assert.equal(down.signal, "bearish");
  assert.equal(lexiconScore("SEC schedules a meeting on Tuesday").signal, "neutral");
  assert.equal(lexiconScore("Bitcoin did not crash").signal, "bullish", "negation flips");
  assert.ok(lexiconScore("Bitcoin sharply rises").compound > lexiconScore("Bitcoin rises").compound, "booster");
  assert.equal(lexiconScore("Bitcoin rallied early but crashed by the close").signal, "bearish", "the clause after but weighs more");
  // compound = x / √(x² + 15): one "surges" (valence 3) → 3/√24
  assert.ok(Math.abs(lexiconScore("surges").compound - 3 / Math.sqrt(24)) < 1e-12);
  for (const s of [up, down]) assert.ok(s.compound >= -1 && s.compound <= 1 && s.confidence >= 0 && s.confidence <= 1);
});
