// The pollers' production HTTP clients and loop against a local server speaking the news APIs;
// the NATS side is stood in by an in-memory list here (test/integration/news-*.test.ts runs them on NATS).
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { EMPTY_CURSOR, type Cursor } from "../../actors/news/cursor.js";
import { NewsApiError } from "../../actors/news/errors.js";
import { abortableSleep, rateLimitedGet, TransientHttpError } from "../../actors/news/http.js";
import { pollOnce, runPollLoop, type PollOptions, type PollerIo } from "../../actors/news/poll-loop.js";
import { cryptoCompareSource, cryptoPanicSource, rssSource, type PolledSource } from "../../actors/news/sources.js";
import type { NewsItem } from "../../protocol/news.js";
import { articles, FakeNewsApis } from "../harness/news-servers.js";

let api: FakeNewsApis;
before(async () => { api = await FakeNewsApis.start(); });
after(async () => { await api.stop(); });

const OPTS: PollOptions = { intervalMs: 10, maxBackoffMs: 80, firstPollPages: 10, maxPages: 10, toleranceMs: 86_400_000 };

type Sink = { io: PollerIo; published: NewsItem[]; attempts: string[]; dead: { reason: string; raw: string }[]; cursors: Cursor[]; sleeps: number[]; ac: AbortController };
function sink(source: string, o: { abortAfter?: number; stopAfterSleeps?: number } = {}): Sink {
  const ac = new AbortController();
  const s: Sink = { published: [], attempts: [], dead: [], cursors: [], sleeps: [], ac, io: undefined as never };
  s.io = {
    get: rateLimitedGet({ source, timeoutMs: 2000, minSpacingMs: 0, signal: ac.signal, sleep: abortableSleep }),
    async publish(item) {
      s.attempts.push(item.id);
      s.published.push(item);
      if (o.abortAfter !== undefined && s.published.length >= o.abortAfter) ac.abort(); // "killed" right after this one is stored
    },
    deadLetter: (reason, raw) => s.dead.push({ reason, raw }),
    async saveCursor(c) { s.cursors.push(c); },
    progress() {},
    warn() {},
    async sleep(ms) {
      s.sleeps.push(ms);
      if (o.stopAfterSleeps !== undefined && s.sleeps.length >= o.stopAfterSleeps) ac.abort();
    },
    signal: ac.signal,
  };
  return s;
}
const ids = (items: NewsItem[]) => items.map((i) => i.id);
const last = (s: Sink) => s.cursors[s.cursors.length - 1];

test("cryptopanic - pages back to the cursor, publishes oldest first with <source>:<id>, then only what is new", async () => {
  api.articles = [];
  api.add(...articles(12, 1000));
  const src = cryptoPanicSource(`${api.url}/cryptopanic/api/v1`, api.token);
  const a = sink("cryptopanic");
  const r1 = await pollOnce(src, EMPTY_CURSOR, a.io, OPTS);
  assert.deepEqual(ids(a.published), articles(12, 1000).map((x) => `cryptopanic:${x.id}`));
  assert.deepEqual(a.published[0].coins_hint, ["BTC"]);
  assert.equal(a.cursors.length, 12, "cursor saved after every item");
  api.add(...articles(3, 2000, Date.UTC(2024, 7, 9, 1, 0)));
  const before = api.log.length;
  const b = sink("cryptopanic");
  await pollOnce(src, r1.cursor, b.io, OPTS);
  assert.deepEqual(ids(b.published), ["cryptopanic:2000", "cryptopanic:2001", "cryptopanic:2002"]);
  assert.equal(api.log.length - before, 1, "page 1 held a known item: no further page read");
});

test("cryptopanic - killed mid-round: the resumed poller publishes exactly the rest, nothing twice, nothing skipped", async () => {
  api.articles = [];
  api.add(...articles(12, 3000));
  const src = cryptoPanicSource(`${api.url}/cryptopanic/api/v1`, api.token);
  const a = sink("cryptopanic", { abortAfter: 4 });
  await pollOnce(src, EMPTY_CURSOR, a.io, OPTS);
  assert.equal(a.published.length, 4);
  const saved = last(a); // what the checkpoint holds when the process dies
  const b = sink("cryptopanic");
  await pollOnce(src, saved, b.io, OPTS);
  assert.deepEqual([...a.attempts, ...b.attempts], articles(12, 3000).map((x) => `cryptopanic:${x.id}`), "every item attempted once, in order");
});

test("cryptocompare - pages back with lTs; the API key goes in the Authorization header", async () => {
  api.articles = [];
  api.add(...articles(11, 4000));
  const src = cryptoCompareSource(`${api.url}/cryptocompare`, "k");
  const a = sink("cryptocompare");
  const before = api.log.length;
  await pollOnce(src, EMPTY_CURSOR, a.io, OPTS);
  assert.deepEqual(ids(a.published), articles(11, 4000).map((x) => `cryptocompare:${x.id}`));
  assert.match(api.log[before + 1].url, /&lTs=\d+$/);
  assert.deepEqual(a.published[1].coins_hint, ["ETH"]);
});

test("rss and atom - one page each; re-polling publishes nothing new", async () => {
  api.articles = [];
  api.add(...articles(4, 5000));
  for (const route of ["rss", "atom"] as const) {
    const src = rssSource(`t${route}`, `${api.url}/${route}/feed.xml`);
    const a = sink(src.name);
    const r = await pollOnce(src, EMPTY_CURSOR, a.io, OPTS);
    assert.equal(a.published.length, 4, route);
    assert.equal(a.published[0].ts_ms, articles(4, 5000)[0].ts_ms);
    const b = sink(src.name);
    assert.equal((await pollOnce(src, r.cursor, b.io, OPTS)).published, 0);
  }
});

test("faults - truncated, malformed, 429, 500, a bad entry: dead letters and backoff, then every item exactly once", async () => {
  api.articles = [];
  api.add(...articles(7, 6000));
  const src = cryptoPanicSource(`${api.url}/cryptopanic/api/v1`, api.token);
  api.fault("cryptopanic", "truncated", "malformed", "429", "500", "bad-entry");
  const s = sink("cryptopanic", { stopAfterSleeps: 6 });
  await runPollLoop(src, EMPTY_CURSOR, s.io, OPTS);
  assert.deepEqual(ids(s.published), articles(7, 6000).map((x) => `cryptopanic:${x.id}`));
  assert.deepEqual(s.sleeps.slice(0, 5), [10, 20, 40, 80, 10], "backoff doubles to the cap, resets after a good round");
  assert.match(s.dead[0].reason, /TF_NEWS_API|cryptopanic: page 1: answer is not JSON/);
  assert.ok(s.dead[0].raw.length > 0 && s.dead[0].raw.startsWith('{"count"'), "the truncated answer is in the dead letter");
  assert.match(s.dead[1].reason, /page 1: answer is not JSON/);
  assert.match(s.dead[1].raw, /Cloudflare/);
  assert.match(s.dead[2].reason, /page 1 results\[\d+\]: title: missing or empty/);
  assert.equal(s.dead.length, 3, "429 and 500 are retried, not dead-lettered");
});

test("http - wrong token, rate limit spacing and deadlines are clear errors", async () => {
  const src = cryptoPanicSource(`${api.url}/cryptopanic/api/v1`, "wrong");
  await assert.rejects(pollOnce(src, EMPTY_CURSOR, sink("cryptopanic").io, OPTS), (e: unknown) => e instanceof NewsApiError && !(e instanceof TransientHttpError) && /HTTP 401: .*Token not found/.test(e.message) && !/wrong/.test(e.message));
  assert.throws(() => cryptoPanicSource("http://x", ""), /set CRYPTOPANIC_TOKEN/);
  const waits: number[] = [];
  const ac = new AbortController();
  const get = rateLimitedGet({ source: "t", timeoutMs: 150, minSpacingMs: 500, signal: ac.signal, sleep: async (ms) => { waits.push(ms); } });
  await get(`${api.url}/rss/feed.xml`);
  await get(`${api.url}/rss/feed.xml`);
  assert.equal(waits.length, 1);
  assert.ok(waits[0] > 400 && waits[0] <= 500, `second request waited ${waits[0]} ms`);
  api.fault("rss", "stall");
  await assert.rejects(get(`${api.url}/rss/feed.xml`), /no answer within 150 ms/);
  api.release();
  const src2: PolledSource = rssSource("x", "http://127.0.0.1:9/feed.xml");
  await assert.rejects(pollOnce(src2, EMPTY_CURSOR, sink("rss-x").io, OPTS), (e: unknown) => e instanceof TransientHttpError && /ECONNREFUSED|fetch failed/.test(e.message));
});
