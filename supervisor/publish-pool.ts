// A few NATS connections per process on which every actor publishes its outputs, with JetStream
// acks collected on one reply subscription per connection.
//
// Why connections of their own that never reconnect: with pipelined publishes on a reconnecting
// connection, a publish lost with a dying socket can be followed by later ones the client buffered
// and sent after reconnecting, and the stream would hold a gap. TCP keeps order, so without
// reconnects whatever a stream holds of one connection's publishes is a prefix of what was sent.
// An actor publishes on exactly one pooled connection; when that connection drops, every actor on
// it crashes and resumes from its checkpoint (or its output's tail), where dedup ids absorb the
// repeats. The pool size is fixed, so connections per worker do not grow with the number of actors.
//
// Why not `js.publish()`: it makes a request (a reply subscription entry, a timer and an error
// object for async traces) per message, which measured as most of the cost of a publish. Here a
// publish is `nc.publish()` with a reply subject `<inbox>.<n>`; one wildcard subscription receives
// every ack and settles the pending entry; one timer per connection fails acks that never come.
// A batch's frames are written here, not by the client's publish (publish-frames.ts says why).
import { createInbox, connect, type Msg, type NatsConnection, type Subscription } from "@nats-io/transport-node";
import { headerLine, WireHeaders, type PublishHeaders } from "../protocol/wire-headers.js";
import type { MsgHdrs } from "@nats-io/transport-node";
import { frameSize, readPubAck, writeFrame, type PubAck } from "./publish-frames.js";

export type Ack = PubAck;

/** Called once per publish, with its ack or why there is none (and the subject it went to). */
export type AckCallback = (err: Error | null, ack: Ack | null, subject: string) => void;

/** One publish from the call until its ack: what to send (dropped once sent) and whom to tell. */
type Pending = { id: number; subject: string; data: Uint8Array | null; headers: PublishHeaders | null; done: AckCallback; at: number };

const decoder = new TextDecoder();

/**
 * The part of the client's protocol handler (`nc.protocol`, not in its types) that the pool uses to
 * send frames it wrote itself: the same outbound buffer and flush as the client's own publish, the
 * server's limits, and the client's publish counters.
 */
type ClientProtocol = {
  sendCommand(cmd: Uint8Array): void;
  info?: { max_payload: number; headers?: boolean };
  noMorePublishing: boolean;
  outMsgs: number;
  outBytes: number;
};

/** The client's protocol handler if it has the shape this pool relies on, else null (every publish then goes through the client's publish). */
export function clientProtocolOf(nc: NatsConnection): ClientProtocol | null {
  const p = (nc as unknown as { protocol?: Partial<ClientProtocol> }).protocol;
  const ok = p && typeof p.sendCommand === "function" && typeof p.outMsgs === "number" && typeof p.outBytes === "number" && typeof p.noMorePublishing === "boolean";
  return ok ? (p as ClientProtocol) : null;
}

export class PooledConnection {
  private readonly pending = new Map<number, Pending>();
  private next = 1;
  private readonly inbox: string;
  private readonly sub: Subscription;
  private readonly sweeper: NodeJS.Timeout;
  private failure: Error | null = null;
  private outbox: Pending[] = [];
  private sending = false;
  private readonly protocol: ClientProtocol | null;
  /** Frame sizes of the batch being flushed, by position (reused). */
  private sizes: number[] = [];
  /** Resolves when the connection is gone (for whatever reason); every pending ack has failed by then. */
  readonly closed: Promise<void>;

  constructor(readonly nc: NatsConnection, private readonly ackTimeoutMs: number) {
    this.inbox = createInbox();
    this.protocol = clientProtocolOf(nc);
    this.sub = nc.subscribe(`${this.inbox}.*`, { callback: (err, m) => this.onAck(err, m) });
    this.sweeper = setInterval(() => this.sweep(), Math.max(250, Math.floor(ackTimeoutMs / 4)));
    this.closed = nc.closed().then((err) => {
      clearInterval(this.sweeper);
      this.fail(new Error(`the publish connection to NATS was lost${err ? `: ${err.message}` : ""}`));
    });
  }

  /** Publishes and resolves with JetStream's ack. Order on the wire is the order of calls. */
  publish(subject: string, data: Uint8Array, headers: PublishHeaders): Promise<Ack> {
    return new Promise<Ack>((resolve, reject) => this.send(subject, data, headers, (err, ack) => (err ? reject(err) : resolve(ack!))));
  }

  /**
   * A write to a KV bucket as a publish on this connection: the ack's sequence is the entry's new
   * revision. With `previous`, a compare-and-set (0: the key must not exist; a deleted key has a
   * marker, so a caller that may meet one falls back to the KV client's create). Cheaper than the
   * KV client's request per write (a reply subscription entry, a timer and an error object each),
   * and it travels in order with the actor's outputs.
   */
  kvPut(bucket: string, key: string, value: Uint8Array, previous?: number): Promise<number> {
    const h = WireHeaders.of(previous === undefined ? "" : headerLine("Nats-Expected-Last-Subject-Sequence", String(previous)));
    return this.publish(`$KV.${bucket}.${key}`, value, h).then((a) => a.seq);
  }

  /** A KV delete (a marker entry) with compare-and-set on `previous`, as kvPut. */
  kvDelete(bucket: string, key: string, previous: number): Promise<number> {
    const h = WireHeaders.of(headerLine("KV-Operation", "DEL") + headerLine("Nats-Expected-Last-Subject-Sequence", String(previous)));
    return this.publish(`$KV.${bucket}.${key}`, new Uint8Array(0), h).then((a) => a.seq);
  }

  /**
   * publish() without a promise: `done` is called with the ack. The hot path of every actor's
   * outputs, where a promise and its closures per message were a measurable share of the CPU
   * and of what the young generation had to copy.
   */
  send(subject: string, data: Uint8Array, headers: PublishHeaders, done: AckCallback): void {
    if (this.failure) return done(this.failure, null, subject);
    const p: Pending = { id: this.next++, subject, data, headers, done, at: Date.now() };
    this.pending.set(p.id, p);
    this.outbox.push(p);
    if (!this.sending) {
      this.sending = true;
      setImmediate(this.flushOutbox);
    }
  }

  /**
   * Hands everything published since the last turn of the event loop to the client at once. The
   * client writes to the socket at the end of each microtask run, and actors publish from their
   * own microtasks, so without this nearly every message was a write (a system call) of its own:
   * 11% of a 300-pair run's CPU. Order is the order of publish() calls.
   */
  private readonly flushOutbox = (): void => {
    this.sending = false;
    const batch = this.outbox;
    this.outbox = [];
    const proto = this.protocol;
    if (proto === null || !proto.info || proto.noMorePublishing || this.nc.isClosed()) {
      for (const o of batch) this.clientPublish(o);
      return;
    }
    const maxPayload = proto.info.max_payload;
    const headersAllowed = !!proto.info.headers;
    const sizes = this.sizes;
    let i = 0;
    while (i < batch.length) {
      // The run of messages from i that can be framed here, in one buffer; the first one that
      // cannot goes through the client's publish after it, so the order on the wire is kept.
      let total = 0;
      let payload = 0;
      let j = i;
      for (; j < batch.length; j++) {
        const o = batch[j];
        if (!this.pending.has(o.id)) {
          sizes[j] = 0; // failed meanwhile
          continue;
        }
        const text = headerTextOf(o.headers);
        if (text === undefined) break;
        const n = frameSize(o.subject, this.inbox, o.id, text, o.data!.length, maxPayload, headersAllowed);
        if (n < 0) break;
        sizes[j] = n;
        total += n;
        payload += (text === null ? 0 : text.length) + o.data!.length;
      }
      if (total > 0) {
        const buf = Buffer.allocUnsafe(total);
        let off = 0;
        let sent = 0;
        for (let k = i; k < j; k++) {
          if (sizes[k] === 0) continue;
          const o = batch[k];
          off = writeFrame(buf, off, o.subject, this.inbox, o.id, headerTextOf(o.headers)!, o.data!);
          // Sent: its bytes are in the buffer; only the ack is awaited now.
          o.data = null;
          o.headers = null;
          sent++;
        }
        try {
          proto.sendCommand(buf);
          proto.outMsgs += sent;
          proto.outBytes += payload;
        } catch (err) {
          for (let k = i; k < j; k++) this.failOne(batch[k], err as Error);
        }
      }
      if (j < batch.length) this.clientPublish(batch[j]);
      i = j + 1;
    }
    if (sizes.length > 4096) this.sizes = [];
  };

  /** One publish through the client's own publish (what the pool cannot frame, or a client whose internals are not as expected). */
  private clientPublish(o: Pending): void {
    if (!this.pending.has(o.id)) return; // failed meanwhile
    const { data, headers } = o;
    o.data = null;
    o.headers = null;
    try {
      // See PublishHeaders: the client only calls encode() on them.
      this.nc.publish(o.subject, data!, { reply: `${this.inbox}.${o.id}`, headers: headers as MsgHdrs });
    } catch (err) {
      this.failOne(o, err as Error);
    }
  }

  private failOne(o: Pending, err: Error): void {
    if (!this.pending.delete(o.id)) return;
    o.done(err, null, o.subject);
  }

  inFlight(): number {
    return this.pending.size;
  }

  isClosed(): boolean {
    return this.failure !== null || this.nc.isClosed();
  }

  async close(): Promise<void> {
    clearInterval(this.sweeper);
    await this.nc.close().catch(() => {});
    await this.closed;
  }

  private onAck(err: Error | null, m: Msg): void {
    if (err) return;
    const id = Number(m.subject.slice(this.inbox.length + 1));
    const p = this.pending.get(id);
    if (!p) return; // already timed out
    this.pending.delete(id);
    // No stream listens on the subject: the server answers with a 503 status and no body.
    const status = m.headers?.code ?? 0;
    if (status === 503) return p.done(new Error(`no JetStream stream stores subject ${p.subject}`), null, p.subject);
    if (status >= 400 || m.data.length === 0) return p.done(new Error(`publish to ${p.subject}: status ${status} ${m.headers?.description ?? ""}`.trim()), null, p.subject);
    const fast = readPubAck(m.data);
    if (fast) return p.done(null, fast, p.subject);
    let a: { stream?: string; seq?: number; duplicate?: boolean; error?: { code: number; description: string } };
    try {
      a = JSON.parse(decoder.decode(m.data));
    } catch (e) {
      return p.done(new Error(`publish to ${p.subject}: unreadable ack (${(e as Error).message})`), null, p.subject);
    }
    if (a.error) return p.done(new Error(`publish to ${p.subject}: ${a.error.description} (${a.error.code})`), null, p.subject);
    p.done(null, { stream: a.stream ?? "", seq: a.seq ?? 0, duplicate: !!a.duplicate }, p.subject);
  }

  /** An ack that has not come within the timeout will not come: the connection is suspect, so it is closed (and its actors restart). */
  private sweep(): void {
    const limit = Date.now() - this.ackTimeoutMs;
    for (const p of this.pending.values()) {
      if (p.at < limit) {
        this.fail(new Error(`no JetStream ack for a publish to ${p.subject} within ${this.ackTimeoutMs} ms`));
        this.nc.close().catch(() => {});
        return;
      }
    }
  }

  private fail(err: Error): void {
    this.failure ??= err;
    const failed = [...this.pending.values()];
    this.pending.clear();
    for (const p of failed) p.done(this.failure, null, p.subject);
    this.outbox = [];
    this.sub.unsubscribe();
  }
}

export class PublishPool {
  private readonly slots: (Promise<PooledConnection> | null)[];
  private stopped = false;

  constructor(
    private readonly server: string,
    private readonly o: { size: number; name: string; ackTimeoutMs: number; connectOptions?: Record<string, unknown> },
  ) {
    this.slots = Array.from({ length: Math.max(1, o.size) }, () => null);
  }

  /** Where the supervisor's own connection points: the pool connects to the same server. */
  static serverOf(nc: NatsConnection): string {
    const s = nc.getServer();
    return s.includes("://") ? s : `nats://${s}`;
  }

  /** The connection for an actor: fixed by its key, so its outputs always travel on one connection. */
  async forKey(key: string): Promise<PooledConnection> {
    if (this.stopped) throw new Error("publish pool is closed");
    const i = slotOf(key, this.slots.length);
    const have = this.slots[i];
    if (have) {
      const c = await have.catch(() => null);
      if (c && !c.isClosed()) return c;
    }
    const made = this.open(i);
    this.slots[i] = made;
    return made;
  }

  connections(): number {
    return this.slots.filter(Boolean).length;
  }

  async close(): Promise<void> {
    this.stopped = true;
    await Promise.all(this.slots.map(async (s) => (await s?.catch(() => null))?.close()));
  }

  private async open(i: number): Promise<PooledConnection> {
    const nc = await connect({
      servers: this.server, reconnect: false, name: `${this.o.name}-pub${i}`, noAsyncTraces: true, ...this.o.connectOptions,
    });
    return new PooledConnection(nc, this.o.ackTimeoutMs);
  }
}

/** The header text of a publish (null: none), or undefined for headers only the client can encode. */
function headerTextOf(h: PublishHeaders | null): string | null | undefined {
  if (!h) return null;
  return h instanceof WireHeaders ? h.toString() : undefined;
}

/** FNV-1a: a stable, cheap spread of actor keys over the pool. */
export function slotOf(key: string, n: number): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < key.length; i++) {
    h ^= key.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return (h >>> 0) % n;
}
