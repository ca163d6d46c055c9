// `tickflow up --replay … --news … --once`, as a user runs it: recorded trades and recorded
// headlines through every stage; md.sentiment.<pair> holds the pair's signals at its 1m candle
// closes (each close that applied news or changed the value; actors/sentiment/pair-sentiment.ts)
// and `tickflow status` lists the news, scorer and sentiment actors.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { readRecordedHeadlines } from "../../actors/news/recorded.js";
import type { SentimentSignal } from "../../protocol/news.js";
import { subjects } from "../../protocol/subjects.js";
import { BTC_FILE, ROOT } from "../harness/data.js";
import { cleanup, readAll, setup, type Env } from "../harness/nats.js";
import { FAST_LEASES, tickflowOk } from "../harness/procs.js";

const NEWS = `${ROOT}/data/news/cryptonews-2022-06-20-to-07-05-slice.csv.gz`;
let env: Env;
let nats: string[];
before(async () => {
  env = await setup();
  nats = ["--nats", env.server.url];
});
after(async () => {
  await cleanup(env);
});

test("cli - up --replay --news --once: sentiment signals at 1m candle closes on md.sentiment.<pair>; status lists news and sentiment", async () => {
  await tickflowOk(["up", ...nats, "--replay", BTC_FILE, "--news", NEWS, "--speed", "max", "--once"], FAST_LEASES, 240_000);
  const candles = await readAll(env.js, "CANDLES", subjects.candles("1m", "BTC/USDT"));
  const signals = (await readAll(env.js, "SENTIMENT", subjects.sentiment("BTC/USDT"))).map((m) => m.data as SentimentSignal);
  assert.equal(candles.length, 12);
  // The headlines are from 2022 and the trades from 2024: every item has decayed to weight 0 by
  // the close that applies it, so the signals say only how many items each close applied. Which
  // close applies an item depends on how the two inputs interleaved (the journal records it), so
  // the check is the rule itself: signals at candle closes, in order; each applied news, or is
  // the one step back to "nothing new" after a close that did; and the news reached the pair.
  const ends = candles.map((c) => c.data.window_end_ms);
  let at = -1;
  let prevSaid = false;
  for (const s of signals) {
    const i = ends.indexOf(s.ts_ms);
    assert.ok(i > at, `signal at ${s.ts_ms} is at a later candle close than the one before`);
    at = i;
    const says = s.items > 0 || s.weight !== 0 || s.score !== 0;
    assert.ok(says || prevSaid, `signal at ${s.ts_ms}: all zero, and the one before was too (${JSON.stringify(s)})`);
    prevSaid = says;
    assert.deepEqual([s.pair, s.coin, s.half_life_s], ["BTC/USDT", "BTC", 3600]);
  }
  assert.ok(signals.reduce((n, s) => n + s.items, 0) > 0, "the pair's signals applied news items");
  const news = await readAll(env.js, "NEWS", subjects.newsRaw("replay"));
  const distinct = new Set(readRecordedHeadlines(NEWS).items.map((h) => h.nativeId)).size;
  assert.equal(news.length, distinct, "every recorded headline once (an article recorded twice is one item)");
  const scored = (await env.jsm.streams.info("SENTIMENT", { subjects_filter: "news.scored.>" })).state.subjects ?? {};
  assert.ok((scored["news.scored.BTC"] ?? 0) > 50, `BTC items scored: ${JSON.stringify(scored)}`);
  const status = JSON.parse(await tickflowOk(["status", "--json", ...nats], FAST_LEASES));
  const keys = status.actors.map((a: { stage: string; key: string }) => `${a.stage}:${a.key}`);
  for (const k of ["news:replay", "sentiment:BTC/USDT"]) assert.ok(keys.includes(k), `${k} in ${keys.join(", ")}`);
});
