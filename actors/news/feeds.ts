// RSS 2.0 and Atom 1.0 feeds. The XML is checked whole first (fast-xml-parser's validator), so a
// truncated download is an error for the whole answer rather than a feed that silently lost its
// last items. RSS: rss/channel/item {title, link, guid, pubDate (RFC 822), description};
// Atom: feed/entry {id, title, link@href, published | updated (RFC 3339), summary | content}.
import { XMLParser, XMLValidator } from "fast-xml-parser";
import { NewsApiError } from "./errors.js";
import { plainText, rawOf, type BadEntry, type ParsedItem, type ParsedPage } from "./parsed-item.js";

const parser = new XMLParser({
  ignoreAttributes: false,
  attributeNamePrefix: "@_",
  textNodeName: "#text",
  // Entries are arrays even when a feed has one; everything stays a string (no number guessing on ids).
  isArray: (name) => name === "item" || name === "entry" || name === "link",
  parseTagValue: false,
  processEntities: true,
  htmlEntities: true,
});

export function parseFeed(source: string, xml: string, where: string): ParsedPage {
  const valid = XMLValidator.validate(xml);
  if (valid !== true) {
    const e = valid.err;
    throw new NewsApiError(source, `${where}: not well-formed XML at line ${e.line}, column ${e.col}: ${e.msg}`);
  }
  let doc: Record<string, any>;
  try {
    doc = parser.parse(xml);
  } catch (err) {
    throw new NewsApiError(source, `${where}: XML could not be parsed (${(err as Error).message})`);
  }
  if (doc.rss?.channel) return entries(doc.rss.channel.item ?? [], rssEntry, where);
  if (doc["rdf:RDF"]) return entries(doc["rdf:RDF"].item ?? [], rssEntry, where);
  if (doc.feed) return entries(doc.feed.entry ?? [], atomEntry, where);
  throw new NewsApiError(source, `${where}: neither an RSS (<rss><channel>) nor an Atom (<feed>) document`);
}

function entries(list: unknown[], one: (e: Record<string, any>) => ParsedItem | string, where: string): ParsedPage {
  const items: ParsedItem[] = [];
  const bad: BadEntry[] = [];
  for (const [i, e] of list.entries()) {
    const r = e && typeof e === "object" ? one(e as Record<string, any>) : "entry is not an element";
    if (typeof r === "string") bad.push({ reason: `${where} entry ${i}: ${r}`, raw: rawOf(e) });
    else items.push(r);
  }
  return { items, bad };
}

function text(v: unknown): string {
  if (v === undefined || v === null) return "";
  if (typeof v === "string") return v;
  if (typeof v === "object" && "#text" in (v as object)) return String((v as Record<string, unknown>)["#text"]);
  return "";
}

function rssEntry(e: Record<string, any>): ParsedItem | string {
  const title = plainText(text(e.title));
  if (!title) return "title: missing or empty";
  const link = text(e.link?.[0]);
  const id = text(e.guid) || link;
  if (!id) return "neither guid nor link";
  const dateText = text(e.pubDate) || text(e["dc:date"]);
  const ts = Date.parse(dateText);
  if (!Number.isFinite(ts)) return `pubDate: not a date (got ${JSON.stringify(dateText)})`;
  return { nativeId: id.trim(), ts_ms: ts, title, body: plainText(text(e.description)), url: link.trim(), coins_hint: [] };
}

function atomEntry(e: Record<string, any>): ParsedItem | string {
  const title = plainText(text(e.title));
  if (!title) return "title: missing or empty";
  const links: any[] = e.link ?? [];
  const alt = links.find((l) => l?.["@_rel"] === undefined || l?.["@_rel"] === "alternate") ?? links[0];
  const url = typeof alt === "object" ? String(alt?.["@_href"] ?? "") : text(alt);
  const id = text(e.id) || url;
  if (!id) return "neither id nor link";
  const dateText = text(e.published) || text(e.updated);
  const ts = Date.parse(dateText);
  if (!Number.isFinite(ts)) return `published/updated: not a date (got ${JSON.stringify(dateText)})`;
  return { nativeId: id.trim(), ts_ms: ts, title, body: plainText(text(e.summary) || text(e.content)), url: url.trim(), coins_hint: [] };
}
