// Joined inputs for stream actors. A JetStream consumer has one filter (nats-server 2.9), and
// merging two consumers in arrival order is not reproducible after a restart. So the interleaving
// is recorded once: a forwarder, running inside the actor's cell (same lease), consumes each
// declared input from its own position and appends every message, bytes unchanged, to the
// actor's journal `tf.journal.<stage>.<key>` (stream JOURNAL). The actor consumes the journal like
// any single input, so a restart from its checkpoint replays the same order, byte for byte.
//
// Positions: the actor's checkpoint records, with the journal sequence it applied, the last
// sequence of every input it applied; on (re)start the forwarder reads the journal's headers
// from there to the tail, so it resumes each input exactly after the last one journaled: nothing
// lost, nothing twice, without relying on the dedup window (which still absorbs the appends of a
// stale owner in a split brain, with ids `<stage>.<key>:<input>:<seq>`).
//
// Order guarantee: per input, that input's stream order; across inputs, the recorded order.
import type { JetStreamClient } from "@nats-io/jetstream";
import type { Logger } from "pino";
import { decode, HDR_CONTENT_TYPE } from "../protocol/codec.js";
import { ErrorCode, TickflowError } from "../protocol/errors.js";
import { headerLine, readHeaders, WireHeaders } from "../protocol/wire-headers.js";
import { HeaderedInput, type InputMsg, type JoinedInput } from "./actor.js";
import { LastMsgLoader } from "./state-prefetch.js";
import { dropConsumer } from "./nats.js";
import { Turns } from "./turns.js";
import { keyToken } from "./actor-key.js";
import type { Ack, PooledConnection } from "./publish-pool.js";
import type { HubMsg, InputHubs, InputSubscription } from "./input-hub.js";

export const JOURNAL_STREAM = "JOURNAL";
export const HDR_INPUT = "Tf-Input";
export const HDR_INPUT_SEQ = "Tf-Input-Seq";
export const HDR_INPUT_SUBJECT = "Tf-Input-Subject";

const NAME_RE = /^[a-z][a-z0-9_-]{0,31}$/;

export function journalSubject(stage: string, key: string): string {
  return `tf.journal.${stage}.${keyToken(key)}`;
}

/** Input names are short tokens, unique per actor: they are part of journal dedup ids and checkpoints. */
export function checkJoinedInputs(stage: string, inputs: JoinedInput[]): JoinedInput[] {
  if (inputs.length === 0) throw new TickflowError(ErrorCode.BadConfig, `stage "${stage}": input() returned no inputs`);
  const seen = new Set<string>();
  for (const i of inputs) {
    if (!NAME_RE.test(i.name)) throw new TickflowError(ErrorCode.BadConfig, `stage "${stage}": input name "${i.name}" must be lower-case letters, digits, "-" or "_", starting with a letter`);
    if (seen.has(i.name)) throw new TickflowError(ErrorCode.BadConfig, `stage "${stage}": two inputs are named "${i.name}"`);
    seen.add(i.name);
  }
  return inputs;
}

/** A journal entry as the actor sees it: the original subject, sequence and bytes, and which input. */
export function journalInput(m: HubMsg): InputMsg {
  const h = readHeaders(m);
  const input = h.get(HDR_INPUT);
  const seq = Number(h.get(HDR_INPUT_SEQ));
  const subject = h.get(HDR_INPUT_SUBJECT);
  if (!input || !subject || !Number.isSafeInteger(seq)) {
    throw new TickflowError(ErrorCode.BadMessage, `journal entry ${m.subject}#${m.seq} lacks its ${HDR_INPUT}/${HDR_INPUT_SEQ}/${HDR_INPUT_SUBJECT} headers`);
  }
  // An empty payload is a KV delete or purge (see the KV-Operation header), not a codec error.
  const data = m.data.length === 0 ? undefined : decode(m.data, h.get(HDR_CONTENT_TYPE) || null);
  return new HeaderedInput(input, subject, seq, data, m.data, h);
}

/**
 * The journals' tails, per client: the joined-input actors a reconcile pass starts (two per pair
 * with sentiment and the predictor) look theirs up together (state-prefetch.ts), which in a fresh
 * system is one request for all of them instead of one each.
 */
const tails = new WeakMap<JetStreamClient, LastMsgLoader>();

/**
 * The last sequence of each input in the journal: `base` (the checkpoint's, as of journal
 * sequence `fromSeq`) advanced over the journal's entries after `fromSeq`, read as headers only.
 */
export async function recoverPositions(js: JetStreamClient, subject: string, fromSeq: number, base: Record<string, number>, log: Logger): Promise<Record<string, number>> {
  const pos = { ...base };
  // Usually nothing was journaled after the checkpoint: one lookup instead of a consumer.
  let loader = tails.get(js);
  if (!loader) tails.set(js, (loader = new LastMsgLoader(js, JOURNAL_STREAM, "tf.journal.>", log)));
  const last = await loader.get(subject);
  if (!last || last.seq <= fromSeq) return pos;
  // After a crash nearly every joined actor has entries past its checkpoint (its forwarder runs
  // ahead of it): a thousand-pair worker restarting made two thousand of these consumers at once,
  // and the server missed other consumers' heartbeats (the scorer pool's crashed). The reads take
  // turns, 64 at a time per process: at 999 pairs the restart took as long (22.5 s against
  // 19.6–24.9 s), with at most 261 consumers on the server instead of 2,021; 16 at a time cost 7 s.
  let turns = recoveryTurns.get(js);
  if (!turns) recoveryTurns.set(js, (turns = new Turns(RECOVERIES_AT_ONCE)));
  const release = (await turns.take())!;
  try {
    return await readPositions(js, subject, fromSeq, pos);
  } finally {
    release();
  }
}

/** Recovery reads (one consumer each) running at once per client. */
const RECOVERIES_AT_ONCE = 64;
const recoveryTurns = new WeakMap<JetStreamClient, Turns>();

async function readPositions(js: JetStreamClient, subject: string, fromSeq: number, pos: Record<string, number>): Promise<Record<string, number>> {
  const c = await js.consumers.get(JOURNAL_STREAM, { filter_subjects: subject, opt_start_seq: fromSeq + 1, headers_only: true });
  try {
    if ((await c.info()).num_pending === 0) return pos;
    const iter = await c.consume({ max_messages: 4096 });
    try {
      for await (const m of iter) {
        const input = m.headers?.get(HDR_INPUT);
        const seq = Number(m.headers?.get(HDR_INPUT_SEQ));
        if (input && Number.isSafeInteger(seq) && seq > (pos[input] ?? 0)) pos[input] = seq;
        if (m.info.pending === 0) break;
      }
    } finally {
      iter.stop();
    }
    return pos;
  } finally {
    void dropConsumer(c);
  }
}

/**
 * Copies every declared input into the journal from `positions`, pipelined on the cell's
 * publish connection (which never reconnects, so the journal holds a prefix of what was sent,
 * per input in stream order). Any failure calls `fail`: the cell restarts and recovers positions.
 */
export class Forwarder {
  /** One subscription per input, through the process's readers of the input streams. */
  private readonly reading: InputSubscription[] = [];
  private unsettled = 0;
  private readonly loops: Promise<void>[] = [];
  private room: (() => void) | null = null;
  private readonly idle: (() => void)[] = [];
  private stopped = false;
  forwarded = 0;
  /** Appends the journal already had (dedup): 0 unless a stale owner appended too. */
  duplicates = 0;

  constructor(private readonly o: {
    hubs: InputHubs;
    /** Read what is behind the hub from the streams themselves (a restart after a crash). */
    fromStream: boolean;
    /** The actor's publish connection (see publish-pool.ts): journal appends travel in order with its outputs. */
    conn: PooledConnection;
    stage: string;
    key: string;
    inputs: JoinedInput[];
    positions: Record<string, number>;
    log: Logger;
    fail(err: Error): void;
  }) {}

  async start(): Promise<void> {
    const subject = journalSubject(this.o.stage, this.o.key);
    const idPrefix = `${this.o.stage}.${keyToken(this.o.key)}`;
    for (const inp of this.o.inputs) {
      const iter = await this.o.hubs.subscribe(inp.stream, inp.filter, (this.o.positions[inp.name] ?? 0) + 1, { fromStream: this.o.fromStream }).catch((err: Error) => {
        throw new Error(`${this.o.stage}.${keyToken(this.o.key)}: input "${inp.name}" (stream ${inp.stream}, filter ${inp.filter}): ${err.message}`, { cause: err });
      });
      this.reading.push(iter);
      if (this.stopped) iter.stop();
      this.loops.push((async () => {
        for await (const m of iter) {
          if (this.stopped) break;
          // The original headers (codec, KV operation), never the server's control headers (a KV
          // purge's Nats-Rollup would purge the journal), and ours in place of any of the same name.
          let lines = "";
          for (const [k, vs] of readHeaders(m)) {
            if (/^nats-/i.test(k) || k === HDR_INPUT || k === HDR_INPUT_SEQ || k === HDR_INPUT_SUBJECT) continue;
            for (const v of vs) lines += headerLine(k, v);
          }
          lines += headerLine(HDR_INPUT, inp.name) + headerLine(HDR_INPUT_SEQ, String(m.seq)) + headerLine(HDR_INPUT_SUBJECT, m.subject);
          await this.publish(subject, m.data, `${idPrefix}:${inp.name}:${m.seq}`, lines);
        }
      })().catch((err) => this.fail(err as Error)));
    }
  }

  private async publish(subject: string, data: Uint8Array, msgID: string, lines: string): Promise<void> {
    const headers = WireHeaders.of(lines + headerLine("Nats-Msg-Id", msgID));
    this.unsettled++;
    this.o.conn.send(subject, data, headers, this.onAck);
    // Pipelined, at most 1024 appends in flight; settled ones are not kept.
    if (this.unsettled >= 1024) await new Promise<void>((r) => (this.room = r));
  }

  /** One callback for every append (no promise per message on the hot path). */
  private readonly onAck = (err: Error | null, ack: Ack | null, subject: string): void => {
    this.unsettled--;
    if (this.room && this.unsettled < 512) {
      const r = this.room;
      this.room = null;
      r();
    }
    if (this.unsettled === 0) for (const w of this.idle.splice(0)) w();
    if (err) return this.fail(new Error(`journal append to ${subject} failed: ${err.message}`, { cause: err }));
    this.forwarded++;
    if (ack!.duplicate) this.duplicates++;
  };

  /** True when every input has nothing more pending and every append is acked (for bounded runs). */
  async caughtUp(): Promise<boolean> {
    if (this.stopped || this.unsettled > 0 || this.reading.length < this.o.inputs.length) return false;
    for (const r of this.reading) if (!(await r.caughtUp())) return false;
    return this.unsettled === 0;
  }

  private fail(err: Error): void {
    if (this.stopped) return;
    this.stop();
    this.o.fail(err);
  }

  stop(): void {
    this.stopped = true;
    for (const i of this.reading) i.stop();
  }

  async done(): Promise<void> {
    await Promise.allSettled(this.loops);
    this.room?.();
    while (this.unsettled > 0) await new Promise<void>((r) => this.idle.push(r));
  }
}
