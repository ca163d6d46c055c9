// The behaviour contract every stage implements. The runtime owns lifecycle, placement, leases,
// checkpoints and restarts; a behaviour only turns input into outputs.
import type { JetStreamClient } from "@nats-io/jetstream";
import type { NatsConnection } from "@nats-io/transport-node";
import type { Logger } from "pino";
import type { Config } from "./config.js";
import type { InputSubscription } from "./input-hub.js";
import type { LatestMark } from "./latest.js";

/** One message to publish. `msgId` must be a pure function of the input, so a replay is deduplicated by the server. */
export type Output = {
  subject: string;
  msgId: string;
  data: unknown;
  /** Extra headers (Content-Type and Nats-Msg-Id are set by the runtime). */
  headers?: Record<string, string>;
};

export type Emit = (out: Output) => void;

/**
 * A stream input as the actor sees it: already decoded; `seq` is the sequence in the input's own
 * stream; `input` names the input it came from ("main" for an actor with one input).
 */
export type InputMsg = { input: string; subject: string; seq: number; data: unknown; header(name: string): string | undefined; raw: Uint8Array };

/**
 * An InputMsg over a message's headers. A class rather than an object literal with a closure:
 * one is made per input message, and the closure (with the name helper the TypeScript loader
 * wraps it in) showed in profiles of busy workers.
 */
export class HeaderedInput implements InputMsg {
  constructor(
    readonly input: string,
    readonly subject: string,
    readonly seq: number,
    readonly data: unknown,
    readonly raw: Uint8Array,
    private readonly headers: { get(name: string): string } | undefined,
  ) {}

  header(name: string): string | undefined {
    return this.headers?.get(name) || undefined;
  }
}

/**
 * Where a stage's actor keys come from. Default: the desired pairs (tf_pairs), one actor per pair.
 * A function computes a fixed list from config instead (news sources: one poller per source);
 * such keys are subject tokens (lower-case letters, digits, `-`, `_`) and may not be pairs'
 * tokens. Either way each key runs exactly once across the cluster, under the same lease
 * (`tf_leases` key `<stage>.<key>`), placement, checkpoints, supervision and status.
 */
export type KeySource = (config: Config) => string[];

/**
 * One of several inputs of a stream actor. `name` (lower-case token, unique per actor) is what
 * `InputMsg.input` says; `stream` may be a KV bucket's stream (`KV_tf_models`, filter
 * `$KV.tf_models.<key>`): a KV delete arrives with no data and a `KV-Operation` header.
 */
export type JoinedInput = { name: string; stream: string; filter: string };

/**
 * An actor that consumes one stream filter for its pair, in order, with state checkpointed
 * together with the sequence of the last input applied. `receive` must be deterministic: same
 * state + same input ⇒ same outputs, byte for byte. It throws `BadInputError` for input it can
 * never use (the runtime dead-letters it and goes on); any other throw is a crash (restart).
 * It may return a promise when it must wait for something before it can finish (the predictor
 * loading a model): the runtime awaits it before publishing its outputs and applying the next input.
 */
export type StreamActorDef<S> = {
  kind: "stream";
  stage: string;
  /** Default: one actor per desired pair. */
  keys?: KeySource;
  /**
   * `key` is the pair (or the plain key, see `keys`). One input: consumed directly, its messages
   * named "main". Several (an array): the first is the main input, consumed directly too (one
   * subject); the runtime records in the actor's journal where each message of the others falls
   * between the main input's (see journal.ts), so a restart replays the same order; per input,
   * stream order; across inputs, the recorded order.
   */
  input(key: string): { stream: string; filter: string } | JoinedInput[];
  init(key: string, config: Config): S;
  receive(state: S, msg: InputMsg, emit: Emit): void | Promise<void>;
  /** Small facts for `tickflow status` (e.g. late trades counted). */
  describe?(state: S): Record<string, unknown>;
  /** Marks an output as the newest value of a `tf_latest` key (see supervisor/latest.ts); null for the others. */
  latest?(out: Output): LatestMark | null;
};

export type SourceContext = {
  /** The actor's key: its pair (`BTC/USD`) or its plain key (`cryptopanic`). */
  key: string;
  /** The pair, for actors keyed by pair (the default); undefined for actors keyed otherwise. */
  pair?: string;
  config: Config;
  log: Logger;
  nc: NatsConnection;
  js: JetStreamClient;
  /** Publishes with dedup id and codec; resolves when JetStream has stored (or deduplicated) it. */
  publish(out: Output): Promise<void>;
  /** Publishes without waiting; ordering is kept. Call `flush()` to wait for every ack. */
  publishAsync(out: Output): void;
  flush(): Promise<void>;
  deadLetter(reason: string, raw: Uint8Array | string, subject?: string): void;
  /** Reports progress for status (last input time, counters). */
  progress(p: { lastInputTs?: number; lastSeq?: number; processed?: number; detail?: Record<string, unknown> }): void;
  /** Signals a fatal error: the runtime restarts the actor with backoff. */
  crash(err: Error): void;
  /** Aborted when the actor must stop. */
  signal: AbortSignal;
  /**
   * Messages of `stream` matching `filter` from sequence `from` on, in stream order, through the
   * process's one reader of that stream (input-hub.ts) rather than a consumer of the actor's own.
   * Stopped with the actor.
   */
  read(stream: string, filter: string, from: number): Promise<InputSubscription>;
  /**
   * The state this actor saved last (a poller's cursor), or undefined the first time. Read once
   * when the actor (re)starts; later calls return the latest saved state.
   */
  loadCheckpoint<T = unknown>(): Promise<T | undefined>;
  /**
   * Waits until every output published so far is stored, then saves `state` in tf_state with
   * compare-and-set on the revision this run read at its start: a cursor never runs ahead of its
   * outputs, and an owner that lost its key to another (whose saves moved the revision on) is
   * refused: the promise rejects and the actor is crashed, so a stale owner cannot rewind the
   * new owner's cursor.
   */
  saveCheckpoint(state: unknown): Promise<void>;
};

/**
 * An actor that produces a stream from outside (an exchange feed, a news API). Its resume point
 * lives in its own output stream, or in a checkpoint it saves itself (`ctx.saveCheckpoint`, a
 * news poller's cursor). `run` returns when `ctx.signal` aborts, after flushing.
 */
export type SourceActorDef = {
  kind: "source";
  stage: string;
  /** Default: one actor per desired pair. */
  keys?: KeySource;
  run(ctx: SourceContext): Promise<void>;
};

/** What a pool worker's `handle` gets besides the message. */
export type PoolContext<R = unknown> = {
  config: Config;
  log: Logger;
  nc: NatsConnection;
  js: JetStreamClient;
  /** What `open` returned in this process (a loaded model, a client). */
  resource: R;
  /** Delivery attempt of this message: 1 the first time, more after a crash or an exception. */
  attempt: number;
  /** Outputs are published after `handle` resolves; the input is acked once all are stored. */
  emit: Emit;
  /** Aborted when the worker stops: a slow call should give up (the message is redelivered). */
  signal: AbortSignal;
};

/**
 * A stage of competing consumers (the news scorer): every replica of the stage runs workers that
 * pull from ONE shared durable consumer on `input`, `concurrency` messages in flight per process.
 * A message is acked only after its outputs are stored (outputs carry deterministic msg ids, so a
 * redelivery republishes nothing new); an exception naks it with backoff (redelivery, maybe to
 * another replica); past `maxDeliver` attempts, or at once for `BadInputError`, it goes to
 * `dlq.<stage>.pool` with the reason and the original bytes and is acked. No order, no lease:
 * workers compete, so any number may run; the stage is still in membership and status.
 */
export type PoolActorDef<R = unknown> = {
  kind: "pool";
  stage: string;
  input(config: Config): { stream: string; filter: string };
  /** In-flight messages per process; default config.pool.concurrency. */
  concurrency?(config: Config): number;
  /** Attempts before a failing message is dead-lettered; default config.pool.maxDeliver. */
  maxDeliver?(config: Config): number;
  /** Once per worker (re)start: load a model, open a client. */
  open?(ctx: { config: Config; log: Logger; nc: NatsConnection; js: JetStreamClient }): Promise<R>;
  close?(resource: R): Promise<void>;
  handle(msg: InputMsg, ctx: PoolContext<R>): Promise<void>;
  /** Small facts for `tickflow status`. */
  describe?(resource: R): Record<string, unknown>;
};

/** Actors that hold a lease per key (one per key across the cluster). */
export type KeyedActorDef = StreamActorDef<any> | SourceActorDef;

export type ActorDef = KeyedActorDef | PoolActorDef<any>;
