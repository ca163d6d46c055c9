// The behaviour contract every stage implements. The runtime owns lifecycle, placement, leases,
// checkpoints and restarts; a behaviour only turns input into outputs.
import type { JetStreamClient } from "@nats-io/jetstream";
import type { NatsConnection } from "@nats-io/transport-node";
import type { Logger } from "pino";
import type { Config } from "./config.js";

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
 * Where a stage's actor keys come from. Default: the desired pairs (tf_pairs), one actor per pair.
 * A function computes a fixed list from config instead (news sources: one poller per source);
 * such keys are subject tokens (lower-case letters, digits, `-`, `_`) and may not be pairs'
 * tokens. Either way each key runs exactly once across the cluster, under the same lease
 * (`tf_leases` key `<stage>.<key>`), placement, checkpoints, supervision and status.
 */
export type KeySource = (config: Config) => string[];

/**
 * An actor that consumes one stream filter for its pair, in order, with state checkpointed
 * together with the sequence of the last input applied. `receive` must be deterministic: same
 * state + same input ⇒ same outputs, byte for byte. It throws `BadInputError` for input it can
 * never use (the runtime dead-letters it and goes on); any other throw is a crash (restart).
 */
export type StreamActorDef<S> = {
  kind: "stream";
  stage: string;
  /** Default: one actor per desired pair. */
  keys?: KeySource;
  /** `key` is the pair (or the plain key, see `keys`). */
  input(key: string): { stream: string; filter: string };
  init(key: string, config: Config): S;
  receive(state: S, msg: InputMsg, emit: Emit): void;
  /** Small facts for `tickflow status` (e.g. late trades counted). */
  describe?(state: S): Record<string, unknown>;
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
  progress(p: { lastInputTs?: number; processed?: number; detail?: Record<string, unknown> }): void;
  /** Signals a fatal error: the runtime restarts the actor with backoff. */
  crash(err: Error): void;
  /** Aborted when the actor must stop. */
  signal: AbortSignal;
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

export type ActorDef = StreamActorDef<any> | SourceActorDef;
