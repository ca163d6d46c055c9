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
import { createInbox, connect, type Msg, type NatsConnection, type Subscription } from "@nats-io/transport-node";
import type { MsgHdrs } from "@nats-io/transport-node";

export type Ack = { stream: string; seq: number; duplicate: boolean };

type Pending = { resolve(a: Ack): void; reject(e: Error): void; at: number; subject: string };

const decoder = new TextDecoder();

export class PooledConnection {
  private readonly pending = new Map<number, Pending>();
  private next = 1;
  private readonly inbox: string;
  private readonly sub: Subscription;
  private readonly sweeper: NodeJS.Timeout;
  private failure: Error | null = null;
  private outbox: { id: number; subject: string; data: Uint8Array; headers: MsgHdrs }[] = [];
  private sending = false;
  /** Resolves when the connection is gone (for whatever reason); every pending ack has failed by then. */
  readonly closed: Promise<void>;

  constructor(readonly nc: NatsConnection, private readonly ackTimeoutMs: number) {
    this.inbox = createInbox();
    this.sub = nc.subscribe(`${this.inbox}.*`, { callback: (err, m) => this.onAck(err, m) });
    this.sweeper = setInterval(() => this.sweep(), Math.max(250, Math.floor(ackTimeoutMs / 4)));
    this.closed = nc.closed().then((err) => {
      clearInterval(this.sweeper);
      this.fail(new Error(`the publish connection to NATS was lost${err ? `: ${err.message}` : ""}`));
    });
  }

  /** Publishes and resolves with JetStream's ack. Order on the wire is the order of calls. */
  publish(subject: string, data: Uint8Array, headers: MsgHdrs): Promise<Ack> {
    if (this.failure) return Promise.reject(this.failure);
    const id = this.next++;
    return new Promise<Ack>((resolve, reject) => {
      this.pending.set(id, { resolve, reject, at: Date.now(), subject });
      this.outbox.push({ id, subject, data, headers });
      if (!this.sending) {
        this.sending = true;
        setImmediate(() => this.send());
      }
    });
  }

  /**
   * Hands everything published since the last turn of the event loop to the client at once. The
   * client writes to the socket at the end of each microtask run, and actors publish from their
   * own microtasks, so without this nearly every message was a write (a system call) of its own:
   * 11% of a 300-pair run's CPU. Order is the order of publish() calls.
   */
  private send(): void {
    this.sending = false;
    const batch = this.outbox;
    this.outbox = [];
    for (const o of batch) {
      if (!this.pending.has(o.id)) continue; // failed meanwhile
      try {
        this.nc.publish(o.subject, o.data, { reply: `${this.inbox}.${o.id}`, headers: o.headers });
      } catch (err) {
        const p = this.pending.get(o.id)!;
        this.pending.delete(o.id);
        p.reject(err as Error);
      }
    }
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
    if (status === 503) return p.reject(new Error(`no JetStream stream stores subject ${p.subject}`));
    if (status >= 400 || m.data.length === 0) return p.reject(new Error(`publish to ${p.subject}: status ${status} ${m.headers?.description ?? ""}`.trim()));
    try {
      const a = JSON.parse(decoder.decode(m.data)) as { stream?: string; seq?: number; duplicate?: boolean; error?: { code: number; description: string } };
      if (a.error) return p.reject(new Error(`publish to ${p.subject}: ${a.error.description} (${a.error.code})`));
      p.resolve({ stream: a.stream ?? "", seq: a.seq ?? 0, duplicate: !!a.duplicate });
    } catch (e) {
      p.reject(new Error(`publish to ${p.subject}: unreadable ack (${(e as Error).message})`));
    }
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
    for (const p of this.pending.values()) p.reject(this.failure);
    this.pending.clear();
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

/** FNV-1a: a stable, cheap spread of actor keys over the pool. */
export function slotOf(key: string, n: number): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < key.length; i++) {
    h ^= key.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return (h >>> 0) % n;
}
