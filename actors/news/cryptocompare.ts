// CryptoCompare news API v2 (https://min-api.cryptocompare.com/data/v2/news/?lang=EN): answers
// {Type: 100, Message, Data: [article]} newest first; `lTs=<unix s>` asks for articles published
// before that time (the way to page back). An error is {Response: "Error", Message, Type < 100}.
// An article: {id, guid, published_on (unix s), title, url, body, categories "BTC|Trading", source}.
import { NewsApiError } from "./errors.js";
import { plainText, rawOf, type BadEntry, type ParsedItem, type ParsedPage } from "./parsed-item.js";

export function parseCryptoCompareNews(body: string, where: string): ParsedPage {
  let doc: unknown;
  try {
    doc = JSON.parse(body);
  } catch (err) {
    throw new NewsApiError("cryptocompare", `${where}: answer is not JSON (${(err as Error).message}; ${body.length} bytes)`);
  }
  const d = doc as { Response?: unknown; Message?: unknown; Data?: unknown; Type?: unknown };
  if (!d || typeof d !== "object") throw new NewsApiError("cryptocompare", `${where}: answer is not a JSON object`);
  if (d.Response === "Error" || (typeof d.Type === "number" && d.Type < 100)) {
    throw new NewsApiError("cryptocompare", `${where}: API error: ${typeof d.Message === "string" ? d.Message : "(no message)"}`);
  }
  if (!Array.isArray(d.Data)) throw new NewsApiError("cryptocompare", `${where}: no "Data" array in the answer`);
  const items: ParsedItem[] = [];
  const bad: BadEntry[] = [];
  for (const [i, a] of d.Data.entries()) {
    const why = checkArticle(a);
    if (why) { bad.push({ reason: `${where} Data[${i}]: ${why}`, raw: rawOf(a) }); continue; }
    const x = a as Article;
    items.push({
      nativeId: String(x.id),
      ts_ms: x.published_on * 1000,
      title: plainText(x.title),
      body: typeof x.body === "string" ? plainText(x.body) : "",
      url: typeof x.url === "string" ? x.url : "",
      coins_hint: typeof x.categories === "string"
        ? x.categories.split("|").map((c) => c.trim()).filter((c) => /^[A-Z0-9]{2,10}$/.test(c))
        : [],
    });
  }
  return { items, bad };
}

type Article = { id: string | number; published_on: number; title: string; url?: unknown; body?: unknown; categories?: unknown };

function checkArticle(a: unknown): string | null {
  if (!a || typeof a !== "object") return "article is not an object";
  const x = a as Record<string, unknown>;
  if (!((typeof x.id === "string" && x.id !== "") || (typeof x.id === "number" && Number.isInteger(x.id)))) return `id: missing (got ${JSON.stringify(x.id)})`;
  if (typeof x.published_on !== "number" || !Number.isInteger(x.published_on) || x.published_on <= 0) return `published_on: expected unix seconds (got ${JSON.stringify(x.published_on)})`;
  if (typeof x.title !== "string" || plainText(x.title) === "") return "title: missing or empty";
  return null;
}
