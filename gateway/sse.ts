// GET /v1/stream?pairs=…: Server-Sent Events of candles, indicators, sentiment, predictions and
// outcomes. The event id is the client's cursor (stream sequences, see live-hub.ts); a browser's
// EventSource sends it back as `Last-Event-ID` when it reconnects, and the client misses nothing.
import type { FastifyReply, FastifyRequest } from "fastify";
import { jsonReplacer } from "../protocol/codec.js";
import { pairToToken } from "../protocol/pairs.js";
import type { LatestValue } from "../supervisor/latest.js";
import { formatCursor, kindOf, parseCursor, type LiveEvent, type LiveHub } from "./live-hub.js";

/** A client further behind than this on one stream is told to reload (event `reset`). */
const CATCH_UP_CAP = 20_000;
/** A client that does not read (socket buffer above this) is dropped; it reconnects and resumes. */
const MAX_BUFFERED = 4 * 1024 * 1024;
const PING_MS = 15_000;

export type SseDeps = { hub: LiveHub; latest: () => Map<string, LatestValue> };

function frame(id: string, event: string, data: unknown): string {
  return `id: ${id}\nevent: ${event}\ndata: ${JSON.stringify(data, jsonReplacer)}\n\n`;
}

export async function streamHandler(deps: SseDeps, req: FastifyRequest, reply: FastifyReply, pairs: string[]): Promise<void> {
  const { hub } = deps;
  const tokens = pairs.map(pairToToken);
  const q = req.query as { lastEventId?: string };
  const resumeFrom = parseCursor((req.headers["last-event-id"] as string | undefined) ?? q.lastEventId);
  const res = reply.raw;
  reply.hijack();
  res.writeHead(200, {
    "content-type": "text/event-stream; charset=utf-8",
    "cache-control": "no-cache, no-transform",
    connection: "keep-alive",
    "x-accel-buffering": "no",
  });
  const cursor = resumeFrom ? [...resumeFrom] : [...hub.position];
  let closed = false;
  let buffering = true;
  const buffer: LiveEvent[] = [];
  const send = (e: LiveEvent) => {
    if (closed || e.seq <= cursor[e.streamIndex]) return;
    cursor[e.streamIndex] = e.seq;
    res.write(frame(formatCursor(cursor), e.kind, e.data));
    if (res.writableLength > MAX_BUFFERED) {
      req.log.warn({ buffered: res.writableLength }, "SSE client too slow; dropped (it resumes with Last-Event-ID)");
      res.destroy();
    }
  };
  // Subscribe first and buffer, so nothing published during the catch-up falls between the two.
  const unsubscribe = hub.subscribe({ tokens: new Set(tokens), deliver: (e) => (buffering ? buffer.push(e) : send(e)) });
  const ping = setInterval(() => !closed && res.write(`: ping\n\n`), PING_MS);
  const close = () => {
    if (closed) return;
    closed = true;
    clearInterval(ping);
    unsubscribe();
  };
  req.raw.on("close", close);
  res.on("error", close);
  res.write(`retry: 1000\n\n`);
  try {
    if (resumeFrom) {
      const missed = await hub.catchUp(resumeFrom, tokens, CATCH_UP_CAP);
      if (missed === null) {
        for (let i = 0; i < cursor.length; i++) cursor[i] = Math.max(cursor[i], hub.position[i]);
        res.write(frame(formatCursor(cursor), "reset", { message: "too far behind to catch up; reload the current state" }));
      } else for (const e of missed) send(e);
    } else {
      // A new client starts with the newest value of every series of its pairs (from tf_latest).
      const id = formatCursor(cursor);
      for (const v of deps.latest().values()) {
        const kind = kindOf(v.subject);
        if (kind && tokens.includes(v.subject.slice(v.subject.lastIndexOf(".") + 1))) res.write(frame(id, kind, v.data));
      }
    }
  } catch (err) {
    req.log.warn({ err: (err as Error).message }, "SSE catch-up failed");
    res.destroy();
    close();
    return;
  }
  buffering = false;
  for (const e of buffer.splice(0)) send(e);
}
