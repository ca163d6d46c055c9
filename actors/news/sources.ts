// The polled news sources: how each reads its newest items, page by page back to what it already
// has. A page that cannot be parsed fails the whole round (nothing of it is published; the loop
// dead-letters the answer and retries later), so a truncated page never advances a cursor.
import { parseCryptoCompareNews } from "./cryptocompare.js";
import { parseCryptoPanicPage } from "./cryptopanic.js";
import { NewsApiError } from "./errors.js";
import { parseFeed } from "./feeds.js";
import type { HttpGet } from "./http.js";
import type { ParsedPage } from "./parsed-item.js";

export type Known = (nativeId: string, ts: number) => boolean;

export type PolledSource = {
  /** The source name: subject token and id prefix (`cryptopanic`, `cryptocompare`, `rss-<name>`). */
  name: string;
  /** Reads pages newest first until one holds an item already known, the last page, or `maxPages`. */
  fetchNew(get: HttpGet, known: Known, maxPages: number): Promise<ParsedPage>;
};

const MAX_RAW = 64 * 1024;

/** Runs a parser; a failure carries the answer (shortened) for the dead letter. */
function parsing<T>(body: string, parse: () => T): T {
  try {
    return parse();
  } catch (err) {
    if (err instanceof NewsApiError) err.raw = body.length > MAX_RAW ? body.slice(0, MAX_RAW) : body;
    throw err;
  }
}

export function cryptoPanicSource(baseUrl: string, token: string): PolledSource {
  const name = "cryptopanic";
  if (!token) throw new NewsApiError(name, "no API token: set CRYPTOPANIC_TOKEN (config news.cryptopanic.token)");
  return {
    name,
    async fetchNew(get, known, maxPages) {
      const out: ParsedPage = { items: [], bad: [] };
      let url: string | null = `${baseUrl.replace(/\/$/, "")}/posts/?auth_token=${encodeURIComponent(token)}&public=true`;
      for (let p = 1; url && p <= maxPages; p++) {
        const body = await get(url);
        const page = parsing(body, () => parseCryptoPanicPage(body, `page ${p}`));
        out.items.push(...page.items);
        out.bad.push(...page.bad);
        if (page.items.length === 0 || page.items.some((i) => known(i.nativeId, i.ts_ms))) break;
        url = page.next;
      }
      return out;
    },
  };
}

export function cryptoCompareSource(baseUrl: string, apiKey: string): PolledSource {
  const name = "cryptocompare";
  const headers: Record<string, string> = apiKey ? { authorization: `Apikey ${apiKey}` } : {};
  return {
    name,
    async fetchNew(get, known, maxPages) {
      const out: ParsedPage = { items: [], bad: [] };
      const base = `${baseUrl.replace(/\/$/, "")}/data/v2/news/?lang=EN`;
      let before: number | null = null;
      for (let p = 1; p <= maxPages; p++) {
        const url: string = before === null ? base : `${base}&lTs=${before}`;
        const body = await get(url, headers);
        const page = parsing(body, () => parseCryptoCompareNews(body, before === null ? "newest page" : `page before ${before}`));
        out.items.push(...page.items);
        out.bad.push(...page.bad);
        if (page.items.length === 0 || page.items.some((i) => known(i.nativeId, i.ts_ms))) break;
        const oldest = Math.min(...page.items.map((i) => Math.floor(i.ts_ms / 1000)));
        if (before !== null && oldest >= before) break; // the API did not page back: stop rather than loop
        before = oldest;
      }
      return out;
    },
  };
}

export function rssSource(feedName: string, url: string): PolledSource {
  const name = `rss-${feedName}`;
  return {
    name,
    async fetchNew(get) {
      const body = await get(url);
      return parsing(body, () => parseFeed(name, body, url));
    },
  };
}

/** `name=url` entries of config news.rss → {name, url}. */
export function parseFeedList(entries: string[]): { name: string; url: string }[] {
  return entries.map((e) => {
    const i = e.indexOf("=");
    return { name: e.slice(0, i), url: e.slice(i + 1) };
  });
}
