// One running actor (stage, key) in this process: restores its checkpoint, consumes its input in
// order from the next sequence, publishes outputs, checkpoints, and is restarted with backoff when
// it crashes, until the restart budget is spent and it is marked failed.
import type { JetStreamClient } from "@nats-io/jetstream";
import type { KV } from "@nats-io/kv";
import type { NatsConnection } from "@nats-io/transport-node";
import type { Logger } from "pino";
import { createHash } from "node:crypto";
import { decode, encode, HDR_CONTENT_TYPE } from "../protocol/codec.js";
import { BadInputError, ErrorCode, TickflowError } from "../protocol/errors.js";
import { SCHEMA_VERSION, type DeadLetter } from "../protocol/messages.js";
import { isPair } from "../protocol/pairs.js";
import { BUCKETS } from "../protocol/streams.js";
import { subjects } from "../protocol/subjects.js";
import { headerValue, LazyHeaders } from "../protocol/wire-headers.js";
import { HeaderedInput, type KeyedActorDef, type InputMsg, type Output, type SourceActorDef, type SourceContext, type StreamActorDef } from "./actor.js";
import { actorKey, keyToken } from "./actor-key.js";
import type { Config } from "./config.js";
import { LatestWriter } from "./latest.js";
import type { StateEntry } from "./state-prefetch.js";
import type { PooledConnection, PublishPool } from "./publish-pool.js";
import type { HubMsg, InputHubs, InputSubscription } from "./input-hub.js";
import { checkJoinedInputs, JoinedReader, positionsOf, stepInput, type JoinedStep } from "./journal.js";
import { Publisher } from "./publisher.js";
import { sharedTimer } from "./shared-timer.js";
import { superviseRuns } from "./supervision.js";
import { nextTurn, sliceUsedUp } from "./time-slice.js";

export type ActorState = "starting" | "running" | "restarting" | "failed" | "stopped";

export type ActorStatus = {
  stage: string;
  /** The actor's key: its pair (`BTC/USD`), a plain key (`cryptopanic`), or "pool" for a pool worker. */
  key: string;
  /** Set for actors keyed by pair (the default). */
  pair?: string;
  /** What runs: a stream actor, a source, or a pool worker (absent: stream or source). */
  kind?: "stream" | "source" | "pool";
  state: ActorState;
  owner: string;
  /** Stream sequence of the last input applied (stream actors). */
  lastSeq: number;
  /** Event time (ms) of the last input, when the input carries one. */
  lastInputTs: number | null;
  /** Wall time (ms) when the last input was applied. */
  lastInputAt: number | null;
  /** Messages of its input queued for this actor by the process's reader of the stream, not yet applied (stream actors). */
  lag: number | null;
  processed: number;
  published: number;
  duplicates: number;
  deadLetters: number;
  restarts: number;
  lastError: string | null;
  detail: Record<string, unknown>;
};

/**
 * `seq`: the last input sequence applied (joined inputs: of the main input). Joined-input actors
 * only: `inputs`, the last sequence applied of each input, and `journal`, the last journal entry
 * applied (see journal.ts; a checkpoint without it is from before the main input was read directly).
 */
type Checkpoint = { v: number; seq: number; state: unknown; at: number; inputs?: Record<string, number>; journal?: number };

export type CellDeps = {
  def: KeyedActorDef;
  /** The pair, or a plain key (see ActorDef.keys). */
  key: string;
  owner: string;
  config: Config;
  nc: NatsConnection;
  js: JetStreamClient;
  stateKv: KV;
  /** Outputs travel on one of the process's few publish connections (see publish-pool.ts). */
  pool: PublishPool;
  /** Inputs come through the process's one reader per stream (see input-hub.ts). */
  hubs: InputHubs;
  log: Logger;
  /** Called once when the restart budget is spent. */
  onFailed(reason: string): void;
  /**
   * The checkpoint as the reconcile pass that started this actor read it with the others
   * (state-prefetch.ts): an entry, or null for none. Used by the first run only; absent, or on a
   * restart, the actor reads its own.
   */
  initialState?: StateEntry | null;
};

export { actorKey };

/** The dead letter of an actor keyed by `key` (a pair or a plain key), on `dlq.<stage>.<key>`. */
export function deadLetterOutput(stage: string, key: string, reason: string, subject: string, seq: number | null, raw: Uint8Array): Output {
  const token = keyToken(key);
  // Sequence when there is one; otherwise a digest of the bytes, so the same bad frame seen twice is one dead letter.
  const id = seq !== null ? String(seq) : createHash("sha1").update(raw).digest("hex").slice(0, 16);
  const dl: DeadLetter = { v: SCHEMA_VERSION, stage, pair: key, reason, subject, seq, ts_ms: Date.now(), payload: raw };
  if (!isPair(key)) dl.key = key;
  return { subject: subjects.dlq(stage, key), msgId: `dlq:${stage}:${token}:${id}`, data: dl };
}

export class ActorCell {
  readonly key: string;
  private st: ActorStatus;
  private stopping = false;
  private hard = false;
  private faults: number[] = [];
  private wake: (() => void) | null = null;
  private iter: { stop(): void } | null = null;
  private abort: AbortController | null = null;
  private done: Promise<void> | null = null;
  private checkpointNow: (() => Promise<void>) | null = null;
  private live: (() => void) | null = null;
  private isCaughtUp: (() => Promise<boolean>) | null = null;

  constructor(private readonly d: CellDeps) {
    this.key = actorKey(d.def.stage, d.key);
    this.st = {
      stage: d.def.stage, key: d.key, ...(isPair(d.key) ? { pair: d.key } : {}), kind: d.def.kind, state: "starting", owner: d.owner, lastSeq: 0, lastInputTs: null, lastInputAt: null,
      lag: null, processed: 0, published: 0, duplicates: 0, deadLetters: 0, restarts: 0, lastError: null, detail: {},
    };
  }

  status(): ActorStatus {
    this.live?.();
    return { ...this.st, detail: { ...this.st.detail } };
  }

  /**
   * Inputs applied and lifecycle state, without the rest of status(): a bounded run polls them
   * for every actor every few milliseconds while the actors work, and status() copies the whole
   * record and asks the behaviour to describe its state (a predictor summarises its live window).
   */
  processedCount(): number {
    return this.st.processed;
  }

  lifecycle(): ActorStatus["state"] {
    return this.st.state;
  }

  /** `initialState`: the checkpoint as the pass read it (see CellDeps.initialState), if it did. */
  start(initialState?: StateEntry | null): void {
    if (initialState !== undefined) this.d.initialState = initialState;
    this.done = this.supervise();
  }

  /**
   * Graceful stop: stop consuming, publish what is pending, checkpoint. With `hard` (the lease was
   * lost), nothing more is written: another owner may already be running.
   */
  async stop(opts: { hard?: boolean } = {}): Promise<void> {
    this.stopping = true;
    this.hard = !!opts.hard;
    this.iter?.stop();
    this.abort?.abort();
    this.wake?.();
    await this.done;
  }

  /**
   * Stream actors: true when the server has nothing more for this actor's input, every input
   * delivered has been applied, and every output is acked (so downstream streams hold them).
   * Other actors (sources) answer true: their end is judged by what they publish.
   */
  async caughtUp(): Promise<boolean> {
    if (this.d.def.kind !== "stream") return true;
    return this.isCaughtUp ? this.isCaughtUp() : false;
  }

  /** Stream actors: waits for every pending output to be acked and writes a checkpoint now (no-op otherwise). */
  async checkpointIfRunning(): Promise<void> {
    await this.checkpointNow?.();
  }

  private async supervise(): Promise<void> {
    const failed = await superviseRuns({
      st: this.st, faults: this.faults, policy: this.d.config.restart, stopping: () => this.stopping,
      run: async () => {
        if (this.d.def.kind === "stream") await this.runStream(this.d.def);
        else await this.runSource(this.d.def);
        if (!this.stopping) throw new Error("input ended unexpectedly");
      },
      onWait: (wake) => (this.wake = wake), log: this.d.log, key: this.key, noun: "actor",
    });
    if (failed !== null) return this.d.onFailed(failed);
    this.st.state = "stopped";
  }

  private async runStream(def: StreamActorDef<unknown>): Promise<void> {
    const { js, stateKv, config, key } = this.d;
    const codec = config.codec;
    const entry = await this.readState();
    let revision = entry?.revision ?? 0;
    let state: unknown;
    let cp: Checkpoint | null = null;
    if (entry && entry.operation === "PUT" && entry.length > 0) {
      cp = decode(entry.value) as Checkpoint;
      state = cp.state;
    } else {
      state = def.init(key, config);
    }
    const spec = def.input(key);
    const joined = Array.isArray(spec) ? checkJoinedInputs(def.stage, spec) : null;
    const from = joined ? positionsOf(cp, joined) : null;
    let applied = from ? from.main : (cp?.seq ?? 0);
    this.st.lastSeq = applied;
    const conn = await this.d.pool.forKey(this.key);
    const publisher = new Publisher(conn, codec);
    const latest = def.latest ? new LatestWriter(js, codec, this.d.log.child({ actor: this.key }), conn) : null;
    let dirty = false;
    let sinceCp = 0;
    let lastCp = Date.now();
    let cpChain: Promise<void> = Promise.resolve();

    // Snapshot (synchronously, so state and seq agree), then wait for every output up to that
    // point to be acked, then write with compare-and-set: a stale owner's write fails, which
    // stops it from overwriting the checkpoint of the owner that replaced it.
    const checkpoint = (): Promise<void> => {
      if (!dirty) return cpChain;
      dirty = false;
      sinceCp = 0;
      lastCp = Date.now();
      const at = reader?.positions();
      const bytes = encode({ v: 1, seq: applied, state, at: lastCp, ...(at ? { inputs: at.inputs, journal: at.journal } : {}) } satisfies Checkpoint, codec);
      cpChain = cpChain.then(async () => {
        await publisher.flush();
        await latest?.flush();
        revision = await writeCheckpoint(conn, stateKv, this.key, bytes, revision);
      });
      return cpChain;
    };
    this.checkpointNow = () => checkpoint();
    // After a crash, read the stream itself rather than the reader's recent messages (input-hub.ts).
    const fromStream = this.st.restarts > 0;
    // Joined inputs: the main input from its stream, the others through the journal (journal.ts).
    const reader = joined
      ? new JoinedReader({ js, hubs: this.d.hubs, fromStream, conn, stage: def.stage, key, inputs: joined, from: from!, log: this.d.log })
      : null;
    // Counters and the actor's own summary are read when status is asked for, not per message.
    this.live = () => {
      this.st.published = publisher.published;
      this.st.duplicates = publisher.duplicates;
      if (def.describe) this.st.detail = def.describe(state);
      if (reader) this.st.detail = { ...this.st.detail, journal: { appended: reader.appended, recovered: reader.recoveredCount } };
    };
    const single = spec as { stream: string; filter: string };
    const iter = reader ?? (await this.d.hubs.subscribe(single.stream, single.filter, applied + 1, { fromStream }));
    this.iter = iter;
    if (this.stopping) iter.stop();
    this.isCaughtUp = async () => publisher.pending() === 0 && (await iter.caughtUp());
    this.st.state = "running";
    const outs: Output[] = [];
    const emit = (o: Output) => outs.push(o);
    // Idle checkpoints: the loop below only runs when input arrives.
    // On the process's one timer for this period, not a timer per actor (shared-timer.ts).
    const stopIdle = sharedTimer(Math.max(50, Math.floor(config.checkpoint.intervalMs / 2))).add(() => {
      if (dirty && Date.now() - lastCp >= config.checkpoint.intervalMs) checkpoint().catch((err) => this.failCheckpoint(err));
    });
    let cpError: Error | null = null;
    this.failCheckpoint = (err: Error) => {
      cpError = err;
      iter.stop();
    };
    let running = true;
    conn.closed.then(() => {
      if (running && !this.stopping) this.failCheckpoint(new Error("the publish connection to NATS was lost"));
    });
    try {
      if (reader) {
        // Joined inputs: the checkpoint as read, written back before anything is applied. A stale
        // owner still running elsewhere can then write none of its own, which this owner might
        // resume from after a restart (journal.ts says why that matters here and not for a single input).
        dirty = true;
        await checkpoint();
        await reader.start();
      }
      const next = reader ? null : (iter as InputSubscription)[Symbol.asyncIterator]();
      for (;;) {
        // What is already queued is taken without a promise per message; the iterator only when
        // the queue is empty (or the subscription is catching up from the stream).
        let m: HubMsg | undefined;
        let step: JoinedStep | null = null;
        if (reader) {
          step = reader.takeReady() ?? (await reader.next());
          if (!step) break;
          m = step.m;
        } else {
          m = (iter as InputSubscription).takeQueued();
          if (!m) {
            const r = await next!.next();
            if (r.done) break;
            m = r.value;
          }
        }
        // Before applying it, where state and position agree: the event loop's turn once this
        // slice is used up (time-slice.ts). Checked before each input, not after, and again after
        // each wait, so that a thousand actors woken together do not each apply one input first.
        while (sliceUsedUp()) await nextTurn();
        if (this.stopping) break;
        try {
          let input: InputMsg;
          if (step) {
            input = stepInput(step);
          } else {
            // Read once: each read of a client message's data makes a new view of its bytes.
            const bytes = m.data;
            const data = decode(bytes, headerValue(m, HDR_CONTENT_TYPE) || null);
            input = new HeaderedInput("main", m.subject, m.seq, data, bytes, new LazyHeaders(m));
          }
          // A promise only when the behaviour must wait for something first (the predictor loading a
          // model): awaited here, so its outputs and the next input still follow in order.
          const pending = def.receive(state, input, emit);
          if (pending) await pending;
        } catch (err) {
          if (!(err instanceof BadInputError) && !(err instanceof TickflowError && (err.code === ErrorCode.BadCodec || err.code === ErrorCode.BadMessage))) throw err;
          outs.length = 0;
          // The input's own subject and sequence (for a journal entry, not the journal's).
          outs.push(deadLetterOutput(def.stage, key, (err as Error).message, step ? step.subject : m.subject, step ? step.seq : m.seq, m.data));
          this.st.deadLetters++;
        }
        for (const o of outs) {
          const full = publisher.send(o);
          if (full) await full;
          const mark = latest && def.latest!(o);
          if (mark) latest!.offer(mark, o.subject, o.data);
        }
        outs.length = 0;
        if (step) {
          reader!.applied(step);
          applied = reader!.mainApplied;
        } else {
          applied = m.seq;
        }
        dirty = true;
        this.st.lastSeq = applied;
        this.st.lastInputAt = Date.now();
        this.st.lag = iter.backlog();
        this.st.processed++;
        if (++sinceCp >= config.checkpoint.everyMessages || this.st.lastInputAt - lastCp >= config.checkpoint.intervalMs) await checkpoint();
      }
      if (cpError) throw cpError;
      if (this.stopping && !this.hard) await checkpoint();
      else await cpChain;
    } finally {
      stopIdle();
      this.live?.();
      this.live = null;
      this.checkpointNow = null;
      this.isCaughtUp = null;
      iter.stop();
      this.iter = null;
      this.st.published = publisher.published;
      this.st.duplicates = publisher.duplicates;
      running = false;
    }
  }

  private failCheckpoint: (err: Error) => void = () => {};

  /** This run's checkpoint: what the pass read for the first run, else the bucket's entry now. */
  private async readState(): Promise<StateEntry | null> {
    const pre = this.d.initialState;
    if (pre !== undefined) {
      this.d.initialState = undefined;
      return pre;
    }
    const e = await this.d.stateKv.get(this.key);
    return e && { value: e.value, revision: e.revision, operation: e.operation, length: e.length };
  }

  private async runSource(def: SourceActorDef): Promise<void> {
    const { js, config, key, log, stateKv } = this.d;
    // Read once at start: the revision this run's saves must follow (fencing, see saveCheckpoint).
    const entry = await this.readState();
    let revision = entry?.revision ?? 0;
    let saved: unknown = entry && entry.operation === "PUT" && entry.length > 0 ? (decode(entry.value) as Checkpoint).state : undefined;
    const conn = await this.d.pool.forKey(this.key);
    const publisher = new Publisher(conn, config.codec);
    const abort = new AbortController();
    this.abort = abort;
    if (this.stopping) abort.abort();
    let crashWith: (err: Error) => void = () => {};
    const crashed = new Promise<never>((_, reject) => (crashWith = reject));
    crashed.catch(() => {});
    const sync = () => {
      this.st.published = publisher.published;
      this.st.duplicates = publisher.duplicates;
      // A source has no input stream: its position is the last sequence it wrote.
      for (const [stream, seq] of publisher.lastSeq) if (stream !== "DLQ" && seq > this.st.lastSeq) this.st.lastSeq = seq;
    };
    let saving: Promise<void> = Promise.resolve();
    const ctx: SourceContext = {
      key, ...(isPair(key) ? { pair: key } : {}), config, nc: this.d.nc, js, signal: abort.signal,
      log: log.child({ actor: this.key }),
      publish: async (o) => {
        await publisher.publish(o);
        await publisher.flush();
        sync();
      },
      publishAsync: (o) => {
        publisher.publish(o).catch((err) => ctx.crash(err));
      },
      flush: async () => {
        await publisher.flush();
        sync();
      },
      deadLetter: (reason, raw, subject) => {
        const bytes = typeof raw === "string" ? new TextEncoder().encode(raw) : raw;
        this.st.deadLetters++;
        publisher.publish(deadLetterOutput(def.stage, key, reason, subject ?? `source.${def.stage}`, null, bytes)).catch((err) => ctx.crash(err));
      },
      progress: (p) => {
        if (p.lastInputTs !== undefined) this.st.lastInputTs = p.lastInputTs;
        if (p.lastSeq !== undefined) this.st.lastSeq = p.lastSeq;
        if (p.processed !== undefined) this.st.processed = p.processed;
        if (p.detail) this.st.detail = p.detail;
        this.st.lastInputAt = Date.now();
        sync();
      },
      crash: (err) => {
        abort.abort();
        crashWith(err);
      },
      read: async (stream, filter, from) => {
        const sub = await this.d.hubs.subscribe(stream, filter, from, { fromStream: this.st.restarts > 0 });
        if (abort.signal.aborted) sub.stop();
        else abort.signal.addEventListener("abort", () => sub.stop(), { once: true });
        return sub;
      },
      loadCheckpoint: async <T>() => saved as T | undefined,
      saveCheckpoint: (state) => {
        // Saves run one after another, so revisions follow each other.
        const bytes = encode({ v: 1, seq: this.st.lastSeq, state, at: Date.now() } satisfies Checkpoint, config.codec);
        saving = saving.catch(() => {}).then(async () => {
          if (this.hard) throw new TickflowError(ErrorCode.LeaseLost, `${this.key}: lease lost; checkpoint not saved`);
          await publisher.flush();
          sync();
          try {
            revision = await writeCheckpoint(conn, stateKv, this.key, bytes, revision);
          } catch (err) {
            const e = new TickflowError(ErrorCode.LeaseLost, `${this.key}: checkpoint refused, another owner saved since this one started (${(err as Error).message})`, { cause: err });
            ctx.crash(e);
            throw e;
          }
          saved = state;
        });
        return saving;
      },
    };
    let running = true;
    conn.closed.then(() => {
      if (running && !abort.signal.aborted) ctx.crash(new Error("the publish connection to NATS was lost"));
    });
    this.st.state = "running";
    const run = def.run(ctx);
    try {
      await Promise.race([run, crashed]);
      if (!this.stopping || !this.hard) await publisher.flush();
    } catch (err) {
      abort.abort();
      await run.catch(() => {});
      throw err;
    } finally {
      sync();
      this.abort = null;
      running = false;
    }
  }
}

/**
 * A checkpoint written with compare-and-set on the revision this run last wrote (or read), on the
 * actor's publish connection. The first write of a key that never had one expects no entry; if
 * that fails, the KV client's create decides (a deleted key's marker is fine, anything else is
 * another owner's checkpoint and fails).
 */
async function writeCheckpoint(conn: PooledConnection, kv: KV, key: string, bytes: Uint8Array, revision: number): Promise<number> {
  if (revision !== 0) return conn.kvPut(BUCKETS.state, key, bytes, revision);
  return conn.kvPut(BUCKETS.state, key, bytes, 0).catch(() => kv.create(key, bytes));
}
