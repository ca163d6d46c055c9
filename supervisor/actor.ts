// The behaviour contract every stage implements. The runtime owns lifecycle, placement, leases,
// checkpoints and restarts; a behaviour only turns input into outputs.
import type { JetStreamClient } from "@nats-io/jetstream";
import type { NatsConnection } from "@nats-io/transport-node";
import type { Logger } from "pino";
import type { Config } from "./config.js";
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

/** A stream input as the actor sees it: already decoded; `seq` is the stream sequence. */
export type InputMsg = { subject: string; seq: number; data: unknown; header(name: string): string | undefined; raw: Uint8Array };

/**
 * An actor that consumes one stream filter for its pair, in order, with state checkpointed
 * together with the sequence of the last input applied. `receive` must be deterministic: same
 * state + same input ⇒ same outputs, byte for byte. It throws `BadInputError` for input it can
 * never use (the runtime dead-letters it and goes on); any other throw is a crash (restart).
 */
export type StreamActorDef<S> = {
  kind: "stream";
  stage: string;
  input(pair: string): { stream: string; filter: string };
  init(pair: string, config: Config): S;
  receive(state: S, msg: InputMsg, emit: Emit): void;
  /** Small facts for `tickflow status` (e.g. late trades counted). */
  describe?(state: S): Record<string, unknown>;
  /** Marks an output as the newest value of a `tf_latest` key (see supervisor/latest.ts); null for the others. */
  latest?(out: Output): LatestMark | null;
};

export type SourceContext = {
  pair: string;
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
};

/**
 * An actor that produces a stream from outside (an exchange feed, a news API). Its resume point
 * lives in its own output stream, so it needs no checkpoint of its own. `run` returns when
 * `ctx.signal` aborts, after flushing.
 */
export type SourceActorDef = {
  kind: "source";
  stage: string;
  run(ctx: SourceContext): Promise<void>;
};

export type ActorDef = StreamActorDef<any> | SourceActorDef;
