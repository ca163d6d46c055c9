// One process's workers of a pool stage (competing consumers): they pull from the stage's one
// shared durable consumer, at most `concurrency` messages in flight, handle each, publish its
// outputs, and ack it once they are stored. No lease: every replica pulls from the same consumer
// and JetStream hands each message to one of them (redelivering it when a worker dies or fails).
// The stage still appears in membership (the member record lists its stages) and in status (one
// row per process), and the loop runs under the same supervision as actors (restart with
// backoff, failed past the budget).
import { AckPolicy, DeliverPolicy, type ConsumerConfig, type ConsumerMessages, type JetStreamClient, type JsMsg } from "@nats-io/jetstream";
import { nanos, type NatsConnection } from "@nats-io/transport-node";
import type { Logger } from "pino";
import { decode, encode, HDR_CONTENT_TYPE, publishHeaders } from "../protocol/codec.js";
import { BadInputError, ErrorCode, TickflowError } from "../protocol/errors.js";
import { isNotFound } from "../protocol/streams.js";
import { readHeaders } from "../protocol/wire-headers.js";
import { HeaderedInput, type InputMsg, type Output, type PoolActorDef, type PoolContext } from "./actor.js";
import { deadLetterOutput, type ActorStatus } from "./actor-cell.js";
import type { Config } from "./config.js";
import { backoffDelay, superviseRuns } from "./supervision.js";

/** The key pool workers report under, and the last token of their dead-letter subject. */
export const POOL_KEY = "pool";

/** The durable consumer every replica of a pool stage shares. */
export function poolConsumerName(stage: string): string {
  return `tf_pool_${stage.replace(/[^A-Za-z0-9_-]/g, "_")}`;
}

export type PoolDeps = {
  def: PoolActorDef<unknown>;
  owner: string;
  config: Config;
  nc: NatsConnection;
  js: JetStreamClient;
  log: Logger;
};

/**
 * Creates the shared consumer, or finds it: every replica calls this at start, in any order. The
 * server treats an identical `add` as a no-op; a consumer made for another filter is an error
 * that says so, rather than silently consuming the wrong subjects.
 */
export async function ensurePoolConsumer(js: JetStreamClient, stage: string, stream: string, filter: string, config: Config): Promise<string> {
  const jsm = await js.jetstreamManager(false);
  const name = poolConsumerName(stage);
  const want: Partial<ConsumerConfig> = {
    durable_name: name,
    filter_subject: filter,
    ack_policy: AckPolicy.Explicit,
    deliver_policy: DeliverPolicy.All,
    ack_wait: nanos(config.pool.ackWaitMs),
    // The runtime counts attempts and dead-letters; the server must never give up on its own
    // (a message whose worker died on its last attempt would then sit unacked forever).
    max_deliver: -1,
    max_ack_pending: 10_000,
  };
  const check = (have: ConsumerConfig): string => {
    const f = have.filter_subject ?? have.filter_subjects?.[0];
    if (f !== filter) {
      throw new TickflowError(ErrorCode.BadConfig, `pool stage "${stage}": consumer ${stream}/${name} exists with filter "${f}", this stage consumes "${filter}"; delete the consumer to change it`);
    }
    return name;
  };
  try {
    return check((await jsm.consumers.info(stream, name)).config);
  } catch (err) {
    if (!isNotFound(err)) throw err;
  }
  try {
    await jsm.consumers.add(stream, want);
  } catch (err) {
    // Another replica created it between our info and add (with another ack wait, say): use theirs.
    return check((await jsm.consumers.info(stream, name).catch(() => { throw err; })).config);
  }
  return name;
}

export class PoolCell {
  readonly key: string;
  private st: ActorStatus;
  private stopping = false;
  private hard = false;
  private faults: number[] = [];
  private wake: (() => void) | null = null;
  private batch: ConsumerMessages | null = null;
  private readonly abort = new AbortController();
  private done: Promise<void> | null = null;
  private inFlight = 0;
  private redeliveries = 0;
  private resource: unknown = undefined;
  /** Resolves when a slot frees up (or on stop). */
  private slot: (() => void) | null = null;
  private readonly concurrency: number;
  private readonly maxDeliver: number;

  constructor(private readonly d: PoolDeps) {
    this.key = `${d.def.stage}.${POOL_KEY}`;
    this.concurrency = d.def.concurrency?.(d.config) ?? d.config.pool.concurrency;
    this.maxDeliver = d.def.maxDeliver?.(d.config) ?? d.config.pool.maxDeliver;
    this.st = {
      stage: d.def.stage, key: POOL_KEY, kind: "pool", state: "starting", owner: d.owner, lastSeq: 0, lastInputTs: null, lastInputAt: null,
      lag: null, processed: 0, published: 0, duplicates: 0, deadLetters: 0, restarts: 0, lastError: null, detail: {},
    };
  }

  /** As ActorCell's: the counter a bounded run polls, without describing the resource. */
  processedCount(): number {
    return this.st.processed;
  }

  status(): ActorStatus {
    const own = this.d.def.describe && this.resource !== undefined ? this.d.def.describe(this.resource) : {};
    return {
      ...this.st,
      detail: { ...own, inFlight: this.inFlight, redeliveries: this.redeliveries, concurrency: this.concurrency, consumer: poolConsumerName(this.d.def.stage) },
    };
  }

  start(): void {
    this.done = this.supervise();
  }

  /** Bounded runs (`up --once`): the shared consumer has nothing pending or unacked, and nothing is in flight here. */
  async caughtUp(): Promise<boolean> {
    if (this.inFlight > 0 || this.st.state !== "running") return false;
    const { stream } = this.d.def.input(this.d.config);
    const ci = await (await this.d.js.jetstreamManager(false)).consumers.info(stream, poolConsumerName(this.d.def.stage));
    return ci.num_pending === 0 && ci.num_ack_pending === 0;
  }

  /** Nothing to checkpoint: a pool's position is its consumer's acks. */
  async checkpointIfRunning(): Promise<void> {}

  /**
   * Graceful: stop pulling, abort the handlers (their messages are nakked for another replica),
   * wait for them. With `hard` (a crash, in tests), nothing more is acked, nakked or published:
   * the messages in flight come back after the ack wait, as when a process dies.
   */
  async stop(opts: { hard?: boolean } = {}): Promise<void> {
    this.stopping = true;
    this.hard = !!opts.hard;
    this.batch?.stop();
    this.abort.abort();
    this.wake?.();
    this.slot?.();
    await this.done;
  }

  private async supervise(): Promise<void> {
    const failed = await superviseRuns({
      st: this.st, faults: this.faults, policy: this.d.config.restart, stopping: () => this.stopping,
      run: () => this.run(), onWait: (wake) => (this.wake = wake), log: this.d.log, key: this.key, noun: "pool worker",
    });
    if (failed !== null) {
      await this.closeResource();
      return;
    }
    // Graceful stop: the handlers still running were aborted; wait for their nak/ack.
    while (this.inFlight > 0 && !this.hard) await new Promise<void>((r) => (this.slot = r));
    await this.closeResource();
    this.st.state = "stopped";
  }

  private async closeResource(): Promise<void> {
    if (this.resource !== undefined) await this.d.def.close?.(this.resource).catch(() => {});
    this.resource = undefined;
  }

  private async run(): Promise<void> {
    const { def, js, config, nc, log } = this.d;
    const { stream, filter } = def.input(config);
    const name = await ensurePoolConsumer(js, def.stage, stream, filter, config);
    // After a crash of the loop, handlers of the previous run may still use the resource.
    while (this.inFlight > 0 && !this.stopping) await new Promise<void>((r) => (this.slot = r));
    await this.closeResource();
    this.resource = def.open ? await def.open({ config, log: log.child({ actor: this.key }), nc, js }) : null;
    const consumer = await js.consumers.get(stream, name);
    this.st.state = "running";
    while (!this.stopping) {
      while (this.inFlight >= this.concurrency && !this.stopping) await new Promise<void>((r) => (this.slot = r));
      if (this.stopping) break;
      const batch = await consumer.fetch({ max_messages: this.concurrency - this.inFlight, expires: 2000 });
      this.batch = batch;
      for await (const m of batch) {
        if (this.stopping) {
          if (!this.hard) m.nak();
          continue;
        }
        this.st.lag = m.info.pending;
        this.dispatch(m);
      }
      this.batch = null;
    }
  }

  private dispatch(m: JsMsg): void {
    this.inFlight++;
    this.handle(m)
      .catch((err) => this.d.log.error({ actor: this.key, err }, "pool message handling failed"))
      .finally(() => {
        this.inFlight--;
        const s = this.slot;
        this.slot = null;
        s?.();
      });
  }

  private async handle(m: JsMsg): Promise<void> {
    const { def, config, js } = this.d;
    const attempt = m.info.deliveryCount;
    if (attempt > 1) this.redeliveries++;
    if (attempt > this.maxDeliver) {
      // Its last attempt never ended (the worker died mid-way): stop trying.
      await this.deadLetter(m, `delivered ${attempt} times, no attempt finished (the workers handling it stopped)`);
      return;
    }
    const outs: Output[] = [];
    // A slow handler keeps its message: "working" resets the ack wait, so no other replica gets it meanwhile.
    const keepAlive = setInterval(() => m.working(), Math.max(200, Math.floor(config.pool.ackWaitMs / 3)));
    try {
      const h = readHeaders(m);
      const data = decode(m.data, h.get(HDR_CONTENT_TYPE) || null);
      const input: InputMsg = new HeaderedInput("main", m.subject, m.seq, data, m.data, h);
      const ctx: PoolContext<unknown> = {
        config, log: this.d.log, nc: this.d.nc, js, resource: this.resource, attempt, signal: this.abort.signal, emit: (o) => outs.push(o),
      };
      await def.handle(input, ctx);
      if (this.hard) return;
      const acks = await Promise.all(outs.map((o) => js.publish(o.subject, encode(o.data, config.codec), { msgID: o.msgId, headers: publishHeaders(config.codec, undefined, o.headers) })));
      for (const a of acks) {
        this.st.published++;
        if (a.duplicate) this.st.duplicates++;
      }
      if (this.hard) return;
      m.ack();
      this.st.processed++;
      this.st.lastSeq = Math.max(this.st.lastSeq, m.seq);
      this.st.lastInputAt = Date.now();
    } catch (err) {
      if (this.hard) return;
      const e = err as Error;
      if (err instanceof BadInputError || (err instanceof TickflowError && err.code === ErrorCode.BadCodec)) {
        await this.deadLetter(m, e.message);
      } else if (this.stopping) {
        m.nak(); // stopped mid-way: another replica takes it now
      } else if (attempt >= this.maxDeliver) {
        this.st.lastError = e.message;
        await this.deadLetter(m, `failed ${attempt} times; last: ${e.message}`);
      } else {
        this.st.lastError = e.message;
        m.nak(backoffDelay(attempt, config.pool.backoffInitialMs, config.pool.backoffMaxMs));
      }
    } finally {
      clearInterval(keepAlive);
    }
  }

  /** Dead letter with the reason and original bytes, then ack; if the DLQ publish fails, nak (retry later). */
  private async deadLetter(m: JsMsg, reason: string): Promise<void> {
    const { def, config, js } = this.d;
    const o = deadLetterOutput(def.stage, POOL_KEY, reason, m.subject, m.seq, m.data);
    try {
      await js.publish(o.subject, encode(o.data, config.codec), { msgID: o.msgId, headers: publishHeaders(config.codec) });
    } catch (err) {
      this.d.log.warn({ actor: this.key, err: (err as Error).message }, "dead letter not stored; message nakked");
      if (!this.hard) m.nak(config.pool.backoffInitialMs);
      return;
    }
    if (this.hard) return;
    m.ack();
    this.st.deadLetters++;
    this.d.log.warn({ actor: this.key, subject: m.subject, seq: m.seq, reason }, "dead-lettered");
  }
}
