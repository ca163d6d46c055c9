// What every news parser yields: an entry as the source gave it, before it becomes a NewsItem.
import { createHash } from "node:crypto";
import { SCHEMA_VERSION } from "../../protocol/messages.js";
import type { NewsItem } from "../../protocol/news.js";

export type ParsedItem = {
  /** The source's own id (CryptoPanic id, CryptoCompare id, RSS guid/link, Atom id). */
  nativeId: string;
  ts_ms: number;
  title: string;
  body: string;
  url: string;
  coins_hint: string[];
};

/** An entry that could not be used, with why and the entry as text (it goes to the DLQ). */
export type BadEntry = { reason: string; raw: string };

export type ParsedPage = { items: ParsedItem[]; bad: BadEntry[] };

// Native ids longer than this (some feeds use whole URLs as guids) are replaced by a hash, so
// `<source>:<id>` stays a short Nats-Msg-Id.
const MAX_NATIVE_ID = 120;

export function newsItemId(source: string, nativeId: string): string {
  const id = nativeId.length > MAX_NATIVE_ID ? `h${createHash("sha1").update(nativeId).digest("hex").slice(0, 24)}` : nativeId;
  return `${source}:${id}`;
}

export function toNewsItem(source: string, p: ParsedItem): NewsItem {
  return {
    v: SCHEMA_VERSION, id: newsItemId(source, p.nativeId), source, ts_ms: p.ts_ms,
    title: p.title, body: p.body, url: p.url, coins_hint: p.coins_hint,
  };
}

/** Collapses whitespace and strips HTML tags and the common entities (summaries are often HTML). */
export function plainText(s: string): string {
  return s
    .replace(/<[^>]*>/g, " ")
    .replace(/&nbsp;/g, " ").replace(/&amp;/g, "&").replace(/&lt;/g, "<").replace(/&gt;/g, ">")
    .replace(/&quot;/g, '"').replace(/&#39;|&apos;/g, "'").replace(/&#(\d+);/g, (_, n) => String.fromCodePoint(Number(n)))
    .replace(/\s+/g, " ").trim();
}

/** A JSON value as a short string for a dead letter. */
export function rawOf(v: unknown): string {
  const s = JSON.stringify(v) ?? String(v);
  return s.length > 4000 ? `${s.slice(0, 4000)}…` : s;
}
