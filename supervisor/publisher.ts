// Pipelined JetStream publishing for one actor: acks are awaited in bulk, not one by one, which is
// most of the difference between a few thousand and tens of thousands of messages a second. Order
// is kept because the actor's outputs all travel on one pooled connection (see publish-pool.ts); a
// failed publish fails the whole batch, and the owner restarts from its checkpoint, where dedup
// ids make the replay harmless.
import { encode, publishHeaders, type CodecName } from "../protocol/codec.js";
import type { Output } from "./actor.js";
import type { Ack, PooledConnection } from "./publish-pool.js";

export class Publisher {
  private inflight: Promise<Ack>[] = [];
  private failure: Error | null = null;
  private unacked = 0;
  published = 0;
  duplicates = 0;
  /** Last stream sequence acked per stream, for the status of downstream consumers. */
  readonly lastSeq = new Map<string, number>();

  constructor(private readonly conn: PooledConnection, private readonly codec: CodecName, private readonly maxInflight = 4096) {}

  /** Publishes without waiting for the ack; waits only when too many are in flight. */
  async publish(out: Output): Promise<void> {
    if (this.failure) throw this.failure;
    const data = encode(out.data, this.codec);
    const p = this.conn.publish(out.subject, data, publishHeaders(this.codec, out.msgId, out.headers));
    this.unacked++;
    p.then((ack) => {
      this.unacked--;
      this.published++;
      if (ack.duplicate) this.duplicates++;
      const prev = this.lastSeq.get(ack.stream) ?? 0;
      if (ack.seq > prev) this.lastSeq.set(ack.stream, ack.seq);
    }, (err: Error) => {
      this.unacked--;
      this.failure ??= new Error(`publish to ${out.subject} (id ${out.msgId}) failed: ${err.message}`, { cause: err });
    });
    this.inflight.push(p);
    if (this.inflight.length >= this.maxInflight) await this.flush();
  }

  /** Resolves when every publish so far is acked; rejects with the first failure. */
  async flush(): Promise<void> {
    while (this.inflight.length > 0) {
      const batch = this.inflight;
      this.inflight = [];
      await Promise.allSettled(batch);
    }
    if (this.failure) throw this.failure;
  }

  /** Publishes not acked yet. */
  pending(): number {
    return this.unacked;
  }
}
