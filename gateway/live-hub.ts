// Live updates for every SSE client of this gateway from ONE ordered consumer per stream, fanned
// out in memory by pair. A client's position is a vector of stream sequences (its SSE event id),
// so a client that reconnects with `Last-Event-ID` is caught up from JetStream (per pair, bounded)
// and then switched to the live feed, with sequence checks so nothing is missed or sent twice.
import { DeliverPolicy, type Consumer, type ConsumerMessages, type JetStreamClient, type JetStreamManager } from "@nats-io/jetstream";
import type { Logger } from "pino";
import { decodeMsg } from "../protocol/codec.js";
import { dropConsumer } from "../supervisor/nats.js";

export type EventKind = "candle" | "indicators" | "sentiment" | "prediction" | "outcome";

/** The streams an SSE client follows, in the order of the event-id vector. */
// A consumer's filter must lie within one of its stream's subjects: hence two per-pair filters for
// PREDICTIONS, and no filter at all for its live consumer (the stream holds exactly those two).
export const LIVE_STREAMS: { stream: string; filter?: string; perPair: (t: string) => string[] }[] = [
  { stream: "CANDLES", filter: "md.candles.>", perPair: (t) => [`md.candles.*.${t}`] },
  { stream: "INDICATORS", filter: "md.indicators.>", perPair: (t) => [`md.indicators.*.${t}`] },
  { stream: "SENTIMENT", filter: "md.sentiment.>", perPair: (t) => [`md.sentiment.${t}`] },
  { stream: "PREDICTIONS", perPair: (t) => [`ml.predictions.*.${t}`, `ml.outcomes.*.${t}`] },
];

export type LiveEvent = { streamIndex: number; seq: number; kind: EventKind; token: string; subject: string; data: unknown };

export function kindOf(subject: string): EventKind | null {
  if (subject.startsWith("md.candles.")) return "candle";
  if (subject.startsWith("md.indicators.")) return "indicators";
  if (subject.startsWith("md.sentiment.")) return "sentiment";
  if (subject.startsWith("ml.predictions.")) return "prediction";
  if (subject.startsWith("ml.outcomes.")) return "outcome";
  return null;
}

/** `12-10-0-4`: the last sequence delivered per stream of LIVE_STREAMS. */
export function formatCursor(c: number[]): string {
  return c.join("-");
}

export function parseCursor(s: string | undefined): number[] | null {
  if (!s) return null;
  const parts = s.split("-");
  if (parts.length !== LIVE_STREAMS.length || !parts.every((p) => /^[0-9]{1,15}$/.test(p))) return null;
  return parts.map(Number);
}

export type Subscriber = {
  tokens: Set<string>;
  /** Called in stream order per stream; the subscriber drops what it already has. */
  deliver(e: LiveEvent): void;
};

export class LiveHub {
  /** Last sequence seen per stream (a correct lower bound for a new client's cursor). */
  readonly position: number[] = LIVE_STREAMS.map(() => 0);
  private readonly subs = new Set<Subscriber>();
  private readonly iters: ConsumerMessages[] = [];
  private readonly consumers: Consumer[] = [];
  private readonly listeners = new Set<{ kinds: Set<EventKind>; fn: (e: LiveEvent) => void }>();
  private stopped = false;

  constructor(private readonly js: JetStreamClient, private readonly jsm: JetStreamManager, private readonly log: Logger) {}

  async start(): Promise<void> {
    await Promise.all(LIVE_STREAMS.map(async (s, i) => {
      const info = await this.jsm.streams.info(s.stream);
      this.position[i] = info.state.last_seq;
      const c = await this.js.consumers.get(s.stream, {
        ...(s.filter ? { filter_subjects: s.filter } : {}), deliver_policy: DeliverPolicy.StartSequence, opt_start_seq: info.state.last_seq + 1,
      });
      const iter = await c.consume({ max_messages: 512 });
      this.iters.push(iter);
      this.consumers.push(c);
      (async () => {
        for await (const m of iter) {
          const kind = kindOf(m.subject);
          if (kind === null) continue;
          const token = m.subject.slice(m.subject.lastIndexOf(".") + 1);
          // Decoded only for someone who takes it: with no client following this pair, a busy
          // system's every candle and indicator was decoded for nothing (5 % of a 300-pair
          // `up --once`'s main thread).
          if (!this.wanted(kind, token)) {
            this.position[i] = m.seq;
            continue;
          }
          let data: unknown;
          try {
            data = decodeMsg(m);
          } catch {
            continue; // undecodable: the producing stage dead-letters such input; nothing to show
          }
          this.position[i] = m.seq;
          const e: LiveEvent = { streamIndex: i, seq: m.seq, kind, token, subject: m.subject, data };
          for (const l of this.listeners) if (l.kinds.has(kind)) l.fn(e);
          for (const sub of this.subs) if (sub.tokens.has(token)) sub.deliver(e);
        }
      })().catch((err) => {
        if (!this.stopped) this.log.error({ err: (err as Error).message, stream: s.stream }, "live feed ended");
      });
    }));
  }

  subscribe(sub: Subscriber): () => void {
    this.subs.add(sub);
    return () => this.subs.delete(sub);
  }

  /** Every live event of these kinds (metrics, caches). */
  onEvent(kinds: EventKind[], fn: (e: LiveEvent) => void): () => void {
    const l = { kinds: new Set(kinds), fn };
    this.listeners.add(l);
    return () => this.listeners.delete(l);
  }

  /** Whether a listener takes this kind or a client follows this pair. */
  private wanted(kind: EventKind, token: string): boolean {
    for (const l of this.listeners) if (l.kinds.has(kind)) return true;
    for (const sub of this.subs) if (sub.tokens.has(token)) return true;
    return false;
  }

  get clients(): number {
    return this.subs.size;
  }

  /**
   * Events after `cursor` for these pairs, read from the streams, merged by sequence per stream;
   * null when more than `cap` are pending on some stream (the client should reload instead).
   */
  async catchUp(cursor: number[], tokens: string[], cap: number): Promise<LiveEvent[] | null> {
    const out: LiveEvent[] = [];
    for (const [i, s] of LIVE_STREAMS.entries()) {
      const list: LiveEvent[] = [];
      for (const t of tokens) for (const filter of s.perPair(t)) {
        const c = await this.js.consumers.get(s.stream, {
          filter_subjects: filter, deliver_policy: DeliverPolicy.StartSequence, opt_start_seq: cursor[i] + 1,
        });
        try {
          const pending = (await c.info()).num_pending;
          if (pending === 0) continue;
          if (pending > cap) return null;
          const iter = await c.consume({ max_messages: Math.min(pending, 1000) });
          for await (const m of iter) {
            const kind = kindOf(m.subject);
            if (kind) {
              try {
                list.push({ streamIndex: i, seq: m.seq, kind, token: t, subject: m.subject, data: decodeMsg(m) });
              } catch {
                // undecodable: skipped, as live
              }
            }
            if (m.info.pending === 0) break;
          }
          iter.stop();
        } finally {
          void dropConsumer(c);
        }
      }
      list.sort((a, b) => a.seq - b.seq);
      out.push(...list);
    }
    return out;
  }

  stop(): void {
    this.stopped = true;
    for (const it of this.iters) it.stop();
    for (const c of this.consumers) void dropConsumer(c);
    this.subs.clear();
  }
}
