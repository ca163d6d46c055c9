// A local server speaking the news APIs the pollers use, from one list of articles (newest first
// in every answer, as the real APIs):
//   GET /cryptopanic/api/v1/posts/?auth_token=T&public=true[&page=N]   {count, next, previous, results}
//   GET /cryptocompare/data/v2/news/?lang=EN[&lTs=S]                   {Type: 100, Message, Data}
//   GET /rss/feed.xml                                                  RSS 2.0
//   GET /atom/feed.xml                                                 Atom 1.0
// Faults are scripted per route: malformed, truncated, 429 with Retry-After, 500, or "stall" (the
// answer waits until released; a test kills the poller meanwhile).
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";

export type Article = { id: number; ts_ms: number; title: string; coins?: string[] };
export type Route = "cryptopanic" | "cryptocompare" | "rss" | "atom";
export type Fault = "none" | "malformed" | "truncated" | "429" | "500" | "stall" | "bad-entry";

export class FakeNewsApis {
  /** Newest first. */
  articles: Article[] = [];
  pageSize = 5;
  readonly token = "test-token";
  readonly log: { route: Route; url: string; status: number }[] = [];
  private faults = new Map<Route, Fault[]>();
  private stalled: (() => void)[] = [];
  private constructor(private readonly server: Server, readonly url: string) {}

  static async start(): Promise<FakeNewsApis> {
    let self!: FakeNewsApis;
    const server = createServer((req, res) => self.handle(req, res));
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
    self = new FakeNewsApis(server, `http://127.0.0.1:${(server.address() as AddressInfo).port}`);
    return self;
  }

  /** Adds articles (any order); they are served newest first. */
  add(...a: Article[]): void {
    this.articles.push(...a);
    this.articles.sort((x, y) => y.ts_ms - x.ts_ms || y.id - x.id);
  }

  fault(route: Route, ...f: Fault[]): void {
    this.faults.set(route, [...(this.faults.get(route) ?? []), ...f]);
  }

  /** Lets stalled answers go (they answer normally). */
  release(): void {
    for (const r of this.stalled.splice(0)) r();
  }

  get stalledCount(): number {
    return this.stalled.length;
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const u = new URL(req.url ?? "/", this.url);
    const route: Route | null = u.pathname === "/cryptopanic/api/v1/posts/" ? "cryptopanic"
      : u.pathname === "/cryptocompare/data/v2/news/" ? "cryptocompare"
      : u.pathname === "/rss/feed.xml" ? "rss" : u.pathname === "/atom/feed.xml" ? "atom" : null;
    const send = (status: number, body: string, type = "application/json", headers: Record<string, string> = {}) => {
      if (route) this.log.push({ route, url: u.pathname + u.search, status });
      if (res.destroyed) return;
      res.writeHead(status, { "Content-Type": type, ...headers });
      res.end(body);
    };
    if (!route) return send(404, '{"error":"not found"}');
    const fault = this.faults.get(route)?.shift();
    if (fault === "stall") {
      await new Promise<void>((r) => this.stalled.push(r));
    }
    if (fault === "429") return send(429, '{"status":"Rate limited"}', "application/json", { "Retry-After": "0" });
    if (fault === "500") return send(500, "Internal Server Error", "text/plain");
    if (fault === "malformed") return send(200, "<html><body>Cloudflare: checking your browser</body></html>", "text/html");
    if (route === "cryptopanic" && u.searchParams.get("auth_token") !== this.token) return send(401, '{"status":"Incomplete","info":"Token not found"}');
    let body: string;
    let type = "application/json";
    if (route === "cryptopanic") {
      const page = Number(u.searchParams.get("page") ?? "1");
      const slice = this.articles.slice((page - 1) * this.pageSize, page * this.pageSize);
      const more = page * this.pageSize < this.articles.length;
      const next = more ? `${this.url}/cryptopanic/api/v1/posts/?auth_token=${this.token}&public=true&page=${page + 1}` : null;
      const results: unknown[] = slice.map((a) => ({
        kind: "news", domain: "example.com", source: { title: "Example", region: "en", domain: "example.com", path: null },
        title: a.title, published_at: new Date(a.ts_ms).toISOString(), slug: `a-${a.id}`, id: a.id,
        url: `https://cryptopanic.com/news/${a.id}/a-${a.id}`, created_at: new Date(a.ts_ms).toISOString(),
        currencies: (a.coins ?? []).map((c) => ({ code: c, title: c, slug: c.toLowerCase(), url: "" })),
      }));
      if (fault === "bad-entry") results.push({ kind: "news", id: "x", title: "" });
      body = JSON.stringify({ count: this.articles.length, next, previous: null, results });
    } else if (route === "cryptocompare") {
      const lTs = u.searchParams.get("lTs");
      const before = lTs ? Number(lTs) * 1000 : Infinity;
      const slice = this.articles.filter((a) => a.ts_ms < before).slice(0, this.pageSize);
      body = JSON.stringify({
        Type: 100, Message: "News list successfully returned", Promoted: [],
        Data: slice.map((a) => ({ id: String(a.id), guid: `g${a.id}`, published_on: Math.floor(a.ts_ms / 1000), title: a.title, url: `https://n/${a.id}`, body: a.title, tags: "", categories: (a.coins ?? []).join("|"), lang: "EN" })),
        RateLimit: {}, HasWarning: false,
      });
    } else if (route === "rss") {
      type = "application/rss+xml";
      body = `<?xml version="1.0" encoding="UTF-8"?><rss version="2.0"><channel><title>t</title>${this.articles.slice(0, 20).map((a) => `<item><title>${esc(a.title)}</title><link>https://n/${a.id}</link><guid>n-${a.id}</guid><pubDate>${new Date(a.ts_ms).toUTCString()}</pubDate></item>`).join("")}</channel></rss>`;
    } else {
      type = "application/atom+xml";
      body = `<?xml version="1.0"?><feed xmlns="http://www.w3.org/2005/Atom"><title>t</title>${this.articles.slice(0, 20).map((a) => `<entry><id>urn:n:${a.id}</id><title>${esc(a.title)}</title><link href="https://n/${a.id}"/><updated>${new Date(a.ts_ms).toISOString()}</updated></entry>`).join("")}</feed>`;
    }
    if (fault === "truncated") body = body.slice(0, Math.floor(body.length * 0.6));
    send(200, body, type);
  }

  async stop(): Promise<void> {
    this.release();
    this.server.closeAllConnections();
    await new Promise<void>((r) => this.server.close(() => r()));
  }
}

function esc(s: string): string {
  return s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");
}

/** n articles one minute apart, ids from `firstId`, newest last. */
export function articles(n: number, firstId = 1000, t0 = Date.UTC(2024, 7, 8, 23, 0)): Article[] {
  const coins = ["BTC", "ETH", "SOL"];
  return Array.from({ length: n }, (_, i) => ({ id: firstId + i, ts_ms: t0 + i * 60_000, title: `${["Bitcoin", "Ether", "Solana"][i % 3]} headline ${firstId + i}`, coins: [coins[i % 3]] }));
}
