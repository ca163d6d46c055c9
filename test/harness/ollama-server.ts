// A local server that speaks Ollama's `/api/chat` (https://github.com/ollama/ollama/blob/main/docs/api.md#generate-a-chat-completion)
// as the production client (the `ollama` package) uses it: POST JSON {model, messages, format,
// stream: false, options}; the answer is one JSON object {model, created_at, message: {role,
// content}, done: true, done_reason, …}.
// Each request takes the next behaviour from a script (then the default), so a test can make
// answers valid, not JSON, of the wrong schema, slow, or HTTP errors, and see what the client did.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";

export type Behaviour =
  | { kind: "valid"; signal?: "bullish" | "bearish" | "neutral"; confidence?: number }
  | { kind: "invalid-json" }
  | { kind: "wrong-schema" }
  | { kind: "slow"; delayMs: number }
  | { kind: "http-error"; status: number };

export type ChatRequestSeen = { model: string; messages: { role: string; content: string }[]; format: any; stream: boolean; options?: Record<string, unknown> };

export class FakeOllama {
  readonly requests: ChatRequestSeen[] = [];
  private script: Behaviour[] = [];
  private timers = new Set<NodeJS.Timeout>();
  private constructor(private readonly server: Server, readonly url: string, public fallback: Behaviour) {}

  static async start(fallback: Behaviour = { kind: "valid" }): Promise<FakeOllama> {
    let self!: FakeOllama;
    const server = createServer((req, res) => void self.handle(req, res));
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
    self = new FakeOllama(server, `http://127.0.0.1:${(server.address() as AddressInfo).port}`, fallback);
    return self;
  }

  /** The next requests get these behaviours, in order; after them, `fallback`. */
  next(...b: Behaviour[]): void {
    this.script.push(...b);
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    if (req.method === "GET" && req.url === "/api/version") return json(res, 200, { version: "0.5.7" });
    if (req.method !== "POST" || req.url !== "/api/chat") return json(res, 404, { error: `${req.method} ${req.url}: not found` });
    let body = "";
    for await (const c of req) body += c;
    let r: ChatRequestSeen;
    try {
      r = JSON.parse(body);
    } catch {
      return json(res, 400, { error: "invalid JSON body" });
    }
    this.requests.push(r);
    const b = this.script.shift() ?? this.fallback;
    const coins: string[] = r.format?.properties?.coins?.items?.properties?.coin?.enum ?? ["BTC"];
    let content: string;
    switch (b.kind) {
      case "http-error":
        return json(res, b.status, { error: `model "${r.model}" failed (${b.status})` });
      case "slow":
        await new Promise<void>((done) => {
          const t = setTimeout(() => { this.timers.delete(t); done(); }, b.delayMs);
          this.timers.add(t);
        });
        if (res.destroyed || req.destroyed) return;
        content = JSON.stringify({ coins: coins.map((coin) => ({ coin, signal: "neutral", confidence: 0.5, reason: "late" })) });
        break;
      case "invalid-json":
        content = '{"coins": [{"coin": "BTC", "signal": "bull';
        break;
      case "wrong-schema":
        content = JSON.stringify({ coins: coins.map((coin) => ({ coin, signal: "very good", confidence: 3 })) });
        break;
      default:
        content = JSON.stringify({ coins: coins.map((coin) => ({ coin, signal: b.signal ?? "bullish", confidence: b.confidence ?? 0.8, reason: `${coin} news reads ${b.signal ?? "bullish"}` })) });
    }
    const base = { model: r.model, created_at: new Date(0).toISOString() };
    // The production client asks for one JSON answer (stream: false); a streaming request is refused
    // loudly so that a change in the client shows up here rather than passing by accident.
    if (r.stream !== false) return json(res, 400, { error: "this test server answers only stream: false requests" });
    json(res, 200, { ...base, message: { role: "assistant", content }, done: true, done_reason: "stop", total_duration: 1000, eval_count: 20 });
  }

  async stop(): Promise<void> {
    for (const t of this.timers) clearTimeout(t);
    this.server.closeAllConnections();
    await new Promise<void>((r) => this.server.close(() => r()));
  }
}

function json(res: ServerResponse, status: number, body: unknown): void {
  if (res.destroyed) return;
  res.writeHead(status, { "Content-Type": "application/json; charset=utf-8" });
  res.end(JSON.stringify(body));
}
