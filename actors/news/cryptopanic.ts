// CryptoPanic posts API (https://cryptopanic.com/developers/api/): GET <base>/posts/?auth_token=…
// &public=true answers {count, next, previous, results: [post]}, newest first; `next` is the full
// URL of the following (older) page. A post: {id, title, published_at (RFC 3339), url, domain,
// source: {title, domain}, currencies: [{code, title}], kind}.
import { NewsApiError } from "./errors.js";
import { plainText, rawOf, type BadEntry, type ParsedItem, type ParsedPage } from "./parsed-item.js";

export type CryptoPanicPage = ParsedPage & { next: string | null };

export function parseCryptoPanicPage(body: string, where: string): CryptoPanicPage {
  let doc: unknown;
  try {
    doc = JSON.parse(body);
  } catch (err) {
    throw new NewsApiError("cryptopanic", `${where}: answer is not JSON (${(err as Error).message}; ${body.length} bytes)`);
  }
  const d = doc as { results?: unknown; next?: unknown; status?: unknown; info?: unknown };
  if (!d || typeof d !== "object") throw new NewsApiError("cryptopanic", `${where}: answer is not a JSON object`);
  if (!Array.isArray(d.results)) {
    const info = typeof d.info === "string" ? `: ${d.info}` : "";
    throw new NewsApiError("cryptopanic", `${where}: no "results" array in the answer${info}`);
  }
  if (d.next !== null && d.next !== undefined && typeof d.next !== "string") throw new NewsApiError("cryptopanic", `${where}: "next" is not a URL or null`);
  const items: ParsedItem[] = [];
  const bad: BadEntry[] = [];
  for (const [i, r] of d.results.entries()) {
    const why = checkPost(r);
    if (why) { bad.push({ reason: `${where} results[${i}]: ${why}`, raw: rawOf(r) }); continue; }
    const p = r as Post;
    items.push({
      nativeId: String(p.id),
      ts_ms: Date.parse(p.published_at),
      title: plainText(p.title),
      body: "",
      url: typeof p.url === "string" ? p.url : "",
      coins_hint: Array.isArray(p.currencies)
        ? p.currencies.map((c) => (c && typeof c === "object" && typeof (c as { code?: unknown }).code === "string" ? (c as { code: string }).code.toUpperCase() : "")).filter(Boolean)
        : [],
    });
  }
  return { items, bad, next: (d.next as string | null | undefined) ?? null };
}

type Post = { id: number | string; title: string; published_at: string; url?: unknown; currencies?: unknown[] };

function checkPost(r: unknown): string | null {
  if (!r || typeof r !== "object") return "post is not an object";
  const p = r as Record<string, unknown>;
  if (!(typeof p.id === "number" && Number.isInteger(p.id)) && !(typeof p.id === "string" && p.id !== "")) return `id: expected an integer (got ${JSON.stringify(p.id)})`;
  if (typeof p.title !== "string" || plainText(p.title) === "") return "title: missing or empty";
  if (typeof p.published_at !== "string" || !Number.isFinite(Date.parse(p.published_at))) return `published_at: not a date (got ${JSON.stringify(p.published_at)})`;
  return null;
}
