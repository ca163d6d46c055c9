import { test } from "node:test";
import assert from "node:assert/strict";
import { parseCryptoCompareNews } from "../../actors/news/cryptocompare.js";
import { parseCryptoPanicPage } from "../../actors/news/cryptopanic.js";
import { parseFeed } from "../../actors/news/feeds.js";
import { newsItemId, toNewsItem } from "../../actors/news/parsed-item.js";
import { parseRecordedDate, parseRecordedHeadlines, readRecordedHeadlines, replayOrder, splitCsvLine } from "../../actors/news/recorded.js";
import { NewsItemCheck } from "../../protocol/news.js";

import { ROOT } from "../harness/data.js";

const NEWS_SLICE = `${ROOT}/data/news/cryptonews-2022-06-20-to-07-05-slice.csv.gz`;

test("cryptopanic - a posts page: items, currencies, next; bad posts reported, not dropped", () => {
  const page = parseCryptoPanicPage(JSON.stringify({
    count: 3, next: "http://x/api/v1/posts/?page=2", previous: null,
    results: [
      { kind: "news", id: 19299345, title: "Bitcoin &amp; Ether rally", published_at: "2024-08-08T23:50:00Z", url: "https://cryptopanic.com/news/19299345/x", currencies: [{ code: "btc", title: "Bitcoin" }, { code: "ETH" }] },
      { kind: "news", id: 19299344, title: "", published_at: "2024-08-08T23:40:00Z" },
      { kind: "news", id: 19299343, title: "Solana", published_at: "yesterday" },
    ],
  }), "page 1");
  assert.equal(page.next, "http://x/api/v1/posts/?page=2");
  assert.deepEqual(page.items.map((i) => [i.nativeId, i.ts_ms, i.title, i.coins_hint]), [["19299345", Date.parse("2024-08-08T23:50:00Z"), "Bitcoin & Ether rally", ["BTC", "ETH"]]]);
  assert.deepEqual(page.bad.map((b) => b.reason), ["page 1 results[1]: title: missing or empty", 'page 1 results[2]: published_at: not a date (got "yesterday")']);
  assert.throws(() => parseCryptoPanicPage('{"results": [{"id": 1', "page 2"), /TF_NEWS_API|not JSON/);
  assert.throws(() => parseCryptoPanicPage('{"status":"Incomplete","info":"Token not found"}', "page 1"), /no "results" array in the answer: Token not found/);
});

test("cryptocompare - v2 news: items, categories as coin hints, API errors", () => {
  const p = parseCryptoCompareNews(JSON.stringify({
    Type: 100, Message: "News list successfully returned",
    Data: [
      { id: "3812345", published_on: 1723161000, title: "ETH slides", url: "https://x/1", body: "<p>Ether fell</p>", categories: "ETH|Trading|Market" },
      { id: "3812344", published_on: "soon", title: "x" },
    ],
  }), "lTs=now");
  assert.deepEqual(p.items.map((i) => [i.nativeId, i.ts_ms, i.body, i.coins_hint]), [["3812345", 1723161000000, "Ether fell", ["ETH"]]]);
  assert.equal(p.bad.length, 1);
  assert.match(p.bad[0].reason, /Data\[1\]: published_on/);
  assert.throws(() => parseCryptoCompareNews('{"Response":"Error","Message":"rate limit","Type":99,"Data":{}}', "q"), /API error: rate limit/);
  assert.throws(() => parseCryptoCompareNews('{"Type":100,"Data":[{"id":"1","publ', "q"), /not JSON/);
});

test("feeds - RSS 2.0 and Atom, HTML in summaries, truncated XML is an error", () => {
  const rss = `<?xml version="1.0"?><rss version="2.0"><channel><title>c</title>
    <item><title>Bitcoin tops $60K</title><link>https://n/1</link><guid isPermaLink="false">g-1</guid><pubDate>Thu, 08 Aug 2024 23:50:00 GMT</pubDate><description>&lt;b&gt;BTC&lt;/b&gt; up</description></item>
    <item><title>No date</title><link>https://n/2</link></item>
    <item><title><![CDATA[Ether & friends]]></title><link>https://n/3</link><pubDate>Thu, 08 Aug 2024 23:40:00 +0000</pubDate></item>
  </channel></rss>`;
  const r = parseFeed("rss-test", rss, "feed");
  assert.deepEqual(r.items.map((i) => [i.nativeId, i.ts_ms, i.title, i.body]), [
    ["g-1", Date.parse("2024-08-08T23:50:00Z"), "Bitcoin tops $60K", "BTC up"],
    ["https://n/3", Date.parse("2024-08-08T23:40:00Z"), "Ether & friends", ""],
  ]);
  assert.match(r.bad[0].reason, /entry 1: pubDate/);
  const atom = `<feed xmlns="http://www.w3.org/2005/Atom"><title>a</title>
    <entry><id>urn:a:1</id><title type="html">Solana &amp;lt;3</title><link rel="alternate" href="https://a/1"/><updated>2024-08-08T23:00:00Z</updated><summary>s</summary></entry>
  </feed>`;
  const a = parseFeed("rss-a", atom, "feed");
  assert.deepEqual(a.items.map((i) => [i.nativeId, i.url, i.ts_ms, i.title]), [["urn:a:1", "https://a/1", Date.parse("2024-08-08T23:00:00Z"), "Solana <3"]]);
  assert.throws(() => parseFeed("rss-test", rss.slice(0, rss.length - 40), "feed"), /not well-formed XML at line/);
  assert.throws(() => parseFeed("rss-test", "<html><body/></html>", "feed"), /neither an RSS/);
});

test("recorded headlines - the recorded slice parses whole; dates are D-M-YYYY UTC; order is by time", () => {
  assert.equal(parseRecordedDate("5-7-2022 04:24"), Date.UTC(2022, 6, 5, 4, 24));
  assert.ok(Number.isNaN(parseRecordedDate("31-2-2022 04:24")));
  assert.deepEqual(splitCsvLine('a;"b;c";"d ""e"""'), ["a", "b;c", 'd "e"']);
  const f = readRecordedHeadlines(NEWS_SLICE);
  assert.equal(f.items.length + f.bad.length, 600);
  assert.equal(f.bad.length, 0);
  const first = f.items[0];
  assert.equal(first.title, "Bitcoin Returns Above USD 20K, Ethereum Rallies, CEL Keeps Outperforming");
  assert.equal(first.ts_ms, Date.UTC(2022, 6, 5, 4, 24));
  const order = replayOrder([f]);
  for (let i = 1; i < order.length; i++) assert.ok(order[i - 1].ts_ms <= order[i].ts_ms);
  const bad = parseRecordedHeadlines("date;sentiment;source;subject;text;title;url\n5-7-2022 04:24;x;s;b;t;T;u\nnot-a-date;x;s;b;t;T;u\n1-1-2022 00:00;too;few\n", "f.csv");
  assert.equal(bad.items.length, 1);
  assert.deepEqual(bad.bad.map((b) => b.reason), ['f.csv:3: date "not-a-date" is not D-M-YYYY HH:MM', "f.csv:4: 3 fields, the header has 7"]);
  assert.throws(() => parseRecordedHeadlines("when;what\n", "g.csv"), /g\.csv:1: header lacks the "date" column/);
});

test("news items - ids are <source>:<id>, long ids hashed, items valid by the schema", () => {
  assert.equal(newsItemId("cryptopanic", "123"), "cryptopanic:123");
  assert.match(newsItemId("rss-x", "https://example.com/" + "a".repeat(200)), /^rss-x:h[0-9a-f]{24}$/);
  const it = toNewsItem("replay", { nativeId: "abc", ts_ms: 1, title: "t", body: "", url: "", coins_hint: [] });
  assert.equal(NewsItemCheck.explain(it), null);
});
