// The news stages on a real nats-server with the runtime: a news poller keyed by source resumes
// from its checkpointed cursor after a crash mid-page; the scorer pool and the per-pair sentiment
// actor turn items into md.sentiment.<pair> equal to the pure computation over the same inputs; and a replay of
// news + trades gives the same md.sentiment.<pair> stream, byte for byte, on two fresh servers.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { candlesActor } from "../../actors/candles/actor.js";
import { newsActor } from "../../actors/news/actor.js";
import { readRecordedHeadlines, replayOrder, type RecordedHeadline } from "../../actors/news/recorded.js";
import { scorerActor } from "../../actors/scorer/actor.js";
import { coinMatcher, extractCoins } from "../../actors/scorer/coins.js";
import { sentimentActor } from "../../actors/sentiment/actor.js";
import { applyCandle, applyScored, createPairSentiment } from "../../actors/sentiment/pair-sentiment.js";
import { encode, publishHeaders } from "../../protocol/codec.js";
import type { Candle } from "../../protocol/messages.js";
import type { NewsItem, ScoredItem, SentimentSignal } from "../../protocol/news.js";
import { subjects } from "../../protocol/subjects.js";
import type { Supervisor } from "../../supervisor/runtime.js";
import { BTC_FILE, readTrades, ROOT } from "../harness/data.js";
import { check, cleanup, readAll, setup, type Env } from "../harness/nats.js";
import { articles, FakeNewsApis } from "../harness/news-servers.js";
import { addPair, publishEos, publishTrades, startSupervisor, testConfig } from "../harness/pipeline.js";

const NEWS_SLICE = `${ROOT}/data/news/cryptonews-2022-06-20-to-07-05-slice.csv.gz`;

let env: Env;
let api: FakeNewsApis;
before(async () => {
  env = await setup();
  api = await FakeNewsApis.start();
});
after(async () => {
  await api.stop();
  await cleanup(env);
});

const count = async (stream: string, subject: string) => (await env.jsm.streams.info(stream, { subjects_filter: subject })).state.subjects?.[subject] ?? 0;

test("news - a poller killed mid-page resumes from its checkpointed cursor: every item once, none re-published", async () => {
  const cfg = testConfig({ TICKFLOW_NEWS_SOURCES: "cryptopanic", CRYPTOPANIC_URL: `${api.url}/cryptopanic/api/v1`, CRYPTOPANIC_TOKEN: api.token, TICKFLOW_NEWS_POLL_MS: "1000" });
  cfg.news.maxRequestsPerSecond = 50;
  cfg.news.firstPollPages = 10;
  api.articles = [];
  api.pageSize = 5;
  api.add(...articles(7, 100));
  const subject = subjects.newsRaw("cryptopanic");
  const a = await startSupervisor(env, "news-a", [newsActor(null)], cfg);
  let b: Supervisor | null = null;
  try {
    await check(async () => (await count("NEWS", subject)) === 7, 20_000, "the first 7 items");
    // 8 newer items; the next round reads page 1, then stalls on page 2: the worker dies there.
    api.add(...articles(8, 200, Date.UTC(2024, 7, 9, 2, 0)));
    api.fault("cryptopanic", "none", "stall");
    await check(() => api.stalledCount === 1, 20_000, "the poller waiting on page 2");
    await a.halt();
    api.release();
    b = await startSupervisor(env, "news-b", [newsActor(null)], cfg);
    await check(async () => (await count("NEWS", subject)) === 15, 20_000, "all 15 items");
    const got = await readAll(env.js, "NEWS", subject);
    const want = [...articles(7, 100), ...articles(8, 200, Date.UTC(2024, 7, 9, 2, 0))].map((x) => `cryptopanic:${x.id}`);
    assert.deepEqual(got.map((m) => m.msgId), want);
    assert.deepEqual(got.map((m) => (m.data as NewsItem).id), want);
    const st = b.status().find((s) => s.stage === "news" && s.key === "cryptopanic");
    assert.ok(st, "the cryptopanic poller runs on b");
    assert.equal(st.published, 8, "b published only what a had not");
    assert.equal(st.duplicates, 0, "nothing a had stored was sent again");
  } finally {
    await a.halt();
    await b?.stop();
  }
});

/** Real recorded headlines about Bitcoin, re-dated one every 40 s from `t0` (the recorded dates are from 2022). */
function redated(n: number, t0: number): RecordedHeadline[] {
  const seen = new Set<string>();
  const m = coinMatcher();
  const all = readRecordedHeadlines(NEWS_SLICE).items.filter((h) => extractCoins(h.title, m).includes("BTC") && !seen.has(h.nativeId) && seen.add(h.nativeId));
  return all.slice(0, n).map((h, i) => ({ ...h, ts_ms: t0 + i * 40_000 }));
}

async function publishItems(js: Env["js"], items: RecordedHeadline[], source: string): Promise<void> {
  const h = publishHeaders("msgpack");
  for (const it of items) {
    const item: NewsItem = { v: 1, id: `${source}:${it.nativeId}`, source, ts_ms: it.ts_ms, title: it.title, body: it.body, url: it.url, coins_hint: [] };
    await js.publish(subjects.newsRaw(source), encode(item, "msgpack"), { msgID: item.id, headers: h });
  }
}

test("scorer and sentiment - scored per coin by the pool, signal at every 1m close equals the pure computation over the same inputs", async () => {
  const env = await setup(); // its own server: the pool consumes every news.raw.> item there is
  const count = async (stream: string, subject: string) => (await env.jsm.streams.info(stream, { subjects_filter: subject })).state.subjects?.[subject] ?? 0;
  const cfg = testConfig({ TICKFLOW_SENTIMENT_HALF_LIFE_S: "300" });
  const pair = "BTC/USDT";
  const t0 = Date.UTC(2024, 7, 8, 23, 0);
  const items = redated(20, t0);
  await addPair(env.js, pair);
  const sup = await startSupervisor(env, "sent-a", [scorerActor, sentimentActor(cfg)], cfg);
  try {
    await publishItems(env.js, items, "itest");
    await check(async () => (await count("SENTIMENT", subjects.newsScored("BTC"))) === items.length, 30_000, "every item scored for BTC");
    await check(() => sup.status().find((s) => s.stage === "sentiment")?.processed === items.length, 20_000, "the sentiment actor applied the items");
    const candles: Candle[] = Array.from({ length: 20 }, (_, i) => ({
      v: 1, pair, tf: "1m", window_start_ms: t0 + i * 60_000, window_end_ms: t0 + (i + 1) * 60_000,
      open: 100, high: 100, low: 100, close: 100, volume: 0, vwap: 100, trades: 0, flat: true,
    }));
    for (const c of candles) await env.js.publish(subjects.candles("1m", pair), encode(c, "msgpack"), { msgID: `1m:BTC-USDT:${c.window_start_ms}`, headers: publishHeaders("msgpack") });
    await check(async () => (await count("SENTIMENT", subjects.sentiment(pair))) === candles.length, 20_000, "a signal per candle");
    const scored = (await readAll(env.js, "SENTIMENT", subjects.newsScored("BTC"))).map((m) => m.data as ScoredItem);
    assert.deepEqual(scored.map((s) => s.scorer.split(":")[0]), items.map(() => "classifier"));
    const oracle = createPairSentiment(pair, "BTC", 300);
    for (const s of scored) applyScored(oracle, s);
    const want = candles.map((c) => applyCandle(oracle, c));
    const got = (await readAll(env.js, "SENTIMENT", subjects.sentiment(pair))).map((m) => m.data as SentimentSignal);
    assert.deepEqual(got, want);
    assert.ok(got.some((s) => Math.abs(s.score) > 0.05), "the headlines move the signal");
    assert.equal(got[0].items, 2, "items at or before the first close");
  } finally {
    await sup.stop();
    await cleanup(env);
  }
});

async function replayRun(items: RecordedHeadline[]): Promise<{ msgId: string | undefined; raw: string }[]> {
  const e = await setup();
  const cfg = testConfig({ TICKFLOW_SENTIMENT_HALF_LIFE_S: "600" });
  const pair = "BTC/USDT";
  await addPair(e.js, pair);
  const sup = await startSupervisor(e, "replay", [newsActor({ items, speed: "max" }), scorerActor, sentimentActor(cfg), candlesActor], cfg);
  try {
    // News first (as `up --news` replays it at speed max ahead of the trades it precedes), then trades.
    await check(async () => (await e.jsm.streams.info("SENTIMENT", { subjects_filter: "news.scored.BTC" })).state.subjects?.["news.scored.BTC"] === items.length, 30_000, "news scored");
    await check(() => sup.status().find((s) => s.stage === "sentiment")?.processed === items.length, 20_000, "items applied");
    const raw = readTrades(BTC_FILE);
    await publishTrades(e.js, raw);
    await publishEos(e.js, pair, raw[raw.length - 1]);
    const want = 12; // 1m windows of the recorded BTC/USDT file, 23:54 … 00:05
    await check(async () => (await e.jsm.streams.info("SENTIMENT", { subjects_filter: subjects.sentiment(pair) })).state.subjects?.[subjects.sentiment(pair)] === want, 60_000, "signals");
    const c = await e.js.consumers.get("SENTIMENT", { filter_subjects: subjects.sentiment(pair) });
    const out: { msgId: string | undefined; raw: string }[] = [];
    for (let i = 0; i < want; i++) {
      const m = await c.next({ expires: 5000 });
      assert.ok(m);
      out.push({ msgId: m.headers?.get("Nats-Msg-Id"), raw: Buffer.from(m.data).toString("base64") });
    }
    return out;
  } finally {
    await sup.stop();
    await cleanup(e);
  }
}

test("replay - news + trades twice on fresh servers: the same md.sentiment.<pair> stream, byte for byte", async () => {
  const first = readTrades(BTC_FILE)[0];
  const items = replayOrder([{ file: "redated", items: redated(24, Date.parse(first.timestamp) - 10 * 60_000), bad: [] }]);
  const a = await replayRun(items);
  const b = await replayRun(items);
  assert.equal(a.length, 12);
  assert.deepEqual(b, a);
});
