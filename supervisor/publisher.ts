// Pipelined JetStream publishing for one actor: acks are awaited in bulk, not one by one, which is
// most of the difference between a few thousand and tens of thousands of messages a second. Order
// is kept because the actor's outputs all travel on one pooled connection (see publish-pool.ts); a
// failed publish fails the whole batch, and the owner restarts from its checkpoint, where dedup
// ids make the replay harmless.
import { encode, outputHeaders, type CodecName } from "../protocol/codec.js";
import type { Output } from "./actor.js";
import type { Ack, PooledConnection } from "./publish-pool.js";

export class Publisher {
  private failure: Error | null = null;
  private unacked = 0;
  /** flush() calls waiting for the last ack. Settled publishes are not kept: with a checkpoint every few seconds and thousands of actors, holding every promise (and the output it closed over) until the next flush was most of a busy worker's memory. */
  private waiters: (() => void)[] = [];
  published = 0;
  duplicates = 0;
  /** Last stream sequence acked per stream, for the status of downstream consumers. */
  readonly lastSeq = new Map<string, number>();

  constructor(private readonly conn: PooledConnection, private readonly codec: CodecName, private readonly maxInflight = 4096) {}

  /** Publishes without waiting for the ack; waits only when too many are in flight. */
  async publish(out: Output): Promise<void> {
    const full = this.send(out);
    if (full) await full;
  }

  /**
   * publish() for the hot path: no promise unless too many are in flight, and then the one to
   * await before publishing more. Throws at once if an earlier publish failed.
   */
  send(out: Output): Promise<void> | null {
    if (this.failure) throw this.failure;
    // Everything that can throw (a value the codec refuses, a bad header) before it is counted.
    const data = encode(out.data, this.codec);
    const headers = outputHeaders(this.codec, out.msgId, out.headers);
    this.unacked++;
    this.conn.send(out.subject, data, headers, this.onAck);
    return this.unacked >= this.maxInflight ? this.flush() : null;
  }

  /** One callback for every publish of this actor (the pool's ack path allocates nothing per message for it). */
  private readonly onAck = (err: Error | null, ack: Ack | null, subject: string): void => {
    if (err) {
      this.failure ??= new Error(`publish to ${subject} failed: ${err.message}`, { cause: err });
    } else {
      this.published++;
      if (ack!.duplicate) this.duplicates++;
      if (ack!.seq > (this.lastSeq.get(ack!.stream) ?? 0)) this.lastSeq.set(ack!.stream, ack!.seq);
    }
    this.settled();
  };

  private settled(): void {
    if (--this.unacked > 0 || this.waiters.length === 0) return;
    const w = this.waiters;
    this.waiters = [];
    for (const wake of w) wake();
  }

  /** Resolves when every publish so far (and any made meanwhile) is acked; rejects with the first failure. */
  async flush(): Promise<void> {
    while (this.unacked > 0) await new Promise<void>((r) => this.waiters.push(r));
    if (this.failure) throw this.failure;
  }

  /** Publishes not acked yet. */
  pending(): number {
    return this.unacked;
  }
}
