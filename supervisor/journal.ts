// Joined inputs for stream actors. A JetStream consumer has one filter (nats-server 2.9), and
// merging two consumers in arrival order is not reproducible after a restart. So where the other
// inputs fall between the messages of the first is recorded once, in the actor's journal
// `tf.journal.<stage>.<key>` (stream JOURNAL).
//
// The first declared input is the actor's main input (a pair's candles or indicators: one message
// per pair and minute). It is read from its own stream, in that stream's order, like a single
// input; it is never copied. Every message of the other inputs (scored news, sentiment signals,
// model records: rare) is appended to the journal, bytes and headers unchanged, with `Tf-After`:
// the sequence of the last main-input message the actor applied before it. The actor applies such a
// message only once the journal holds it (the append is acked), and applies nothing else meanwhile.
// So the order the actor applied its inputs in is the main stream's order with each journal entry
// placed after its `Tf-After`, and a restart from a checkpoint replays exactly that order.
//
// Positions: the checkpoint records the last main-input sequence applied (`seq`), the last journal
// sequence applied (`journal`) and the last sequence applied of every input (`inputs`). On
// (re)start the actor reads the journal's entries after `journal` (usually none), resumes the main
// input after `seq` and every other input after the last of its messages the journal holds.
//
// One rule makes this safe after a crash: before it takes any new message of another input, the
// actor applies its main input up to where that stream stood when it started. The actor may have
// applied (and published the outputs of) main-input messages after its checkpoint and before the
// crash, and nothing but those outputs records that; a message of another input that arrived
// meanwhile must not be placed before them on the second run, or the outputs already in the
// streams (kept by dedup) and the state that follows them would disagree. Applied after all of
// them, it is where an uninterrupted run that saw it a little later would have put it.
//
// Split brain (a stale owner still running next to the new one): both apply the main input in the
// same order and publish the same outputs, which dedup keeps once, until one of them places a
// message of another input. Two owners must never place one each: the stale one would apply main
// messages after its entry that the other applies without it. So the journal is fenced. Every
// append says which entry it expects to be the journal's last (`Nats-Expected-Last-Subject-
// Sequence`), and an owner that starts first reads the journal, then appends a fence entry after
// the last one it read; an append that expected anything else fails, and its actor restarts and
// reads the journal again. Once the new owner's fence is in, the stale owner can append nothing,
// and whatever it appended before is in what the new owner read and applies. (A duplicate id,
// `<stage>.<key>:<input>:<seq>`, fails the same way.) The checkpoint is fenced too: before it
// reads the journal, a starting owner writes back the checkpoint it read (compare-and-set, in
// actor-cell.ts), so a stale owner ahead of it on the main input cannot leave a checkpoint past
// an entry the new owner placed, for the new owner to resume from after a restart.
import type { JetStreamClient, JsMsg } from "@nats-io/jetstream";
import type { Logger } from "pino";
import { decode, HDR_CONTENT_TYPE } from "../protocol/codec.js";
import { ErrorCode, TickflowError } from "../protocol/errors.js";
import { headerLine, headerValue, LazyHeaders, readHeaders, ReadHeaders, WireHeaders } from "../protocol/wire-headers.js";
import { HeaderedInput, type InputMsg, type JoinedInput } from "./actor.js";
import { LastMsgLoader } from "./state-prefetch.js";
import { dropConsumer } from "./nats.js";
import { Turns } from "./turns.js";
import { keyToken } from "./actor-key.js";
import type { PooledConnection } from "./publish-pool.js";
import type { HubMsg, InputHubs, InputSubscription } from "./input-hub.js";

export const JOURNAL_STREAM = "JOURNAL";
export const HDR_INPUT = "Tf-Input";
export const HDR_INPUT_SEQ = "Tf-Input-Seq";
export const HDR_INPUT_SUBJECT = "Tf-Input-Subject";
/** The main-input sequence a journal entry was applied after (0: before any). */
export const HDR_AFTER = "Tf-After";
/** `Tf-Input` of an owner's fence entry (no input can have this name): read past, never applied. */
export const FENCE = "@fence";

const NAME_RE = /^[a-z][a-z0-9_-]{0,31}$/;

export function journalSubject(stage: string, key: string): string {
  return `tf.journal.${stage}.${keyToken(key)}`;
}

/**
 * Input names are short tokens, unique per actor: they are part of journal dedup ids and
 * checkpoints. The first input is the main one, read by its subject's last sequence at start: a
 * subject, not a wildcard.
 */
export function checkJoinedInputs(stage: string, inputs: JoinedInput[]): JoinedInput[] {
  if (inputs.length === 0) throw new TickflowError(ErrorCode.BadConfig, `stage "${stage}": input() returned no inputs`);
  const seen = new Set<string>();
  for (const i of inputs) {
    if (!NAME_RE.test(i.name)) throw new TickflowError(ErrorCode.BadConfig, `stage "${stage}": input name "${i.name}" must be lower-case letters, digits, "-" or "_", starting with a letter`);
    if (seen.has(i.name)) throw new TickflowError(ErrorCode.BadConfig, `stage "${stage}": two inputs are named "${i.name}"`);
    seen.add(i.name);
  }
  if (/[*>]/.test(inputs[0].filter)) {
    throw new TickflowError(ErrorCode.BadConfig, `stage "${stage}": the first input ("${inputs[0].name}", the main one) must be one subject, not the wildcard ${inputs[0].filter}`);
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
  return inputOf(input, subject, seq, m);
}

/** An input message of a joined actor; an empty payload is a KV delete or purge (see the KV-Operation header), not a codec error. */
function inputOf(name: string, subject: string, seq: number, m: HubMsg, hdrs?: ReadHeaders): InputMsg {
  const h = hdrs ?? new LazyHeaders(m);
  const bytes = m.data; // once: each read of a client message's data makes a new view
  const data = bytes.length === 0 ? undefined : decode(bytes, (hdrs ? hdrs.get(HDR_CONTENT_TYPE) : headerValue(m, HDR_CONTENT_TYPE)) || null);
  return new HeaderedInput(name, subject, seq, data, bytes, h);
}

/**
 * One message for the actor to apply next: `m` carries the bytes and headers (for a journal entry
 * read back, the entry itself), `subject` and `seq` are the input's own. `hdrs`: the headers of an
 * entry this owner just appended, as they read back from the journal, so that the actor sees the
 * same headers whether an entry comes straight from its input or from the journal after a restart.
 */
export type JoinedStep = { m: HubMsg; name: string; subject: string; seq: number; main: boolean; journalSeq: number | null; hdrs?: ReadHeaders };

/** Builds the actor's view of a step (decoding: may throw the codec's error, which dead-letters it). */
export function stepInput(s: JoinedStep): InputMsg {
  return inputOf(s.name, s.subject, s.seq, s.m, s.hdrs);
}

/** Where a joined actor stands, as its checkpoint records it. */
export type JoinedPositions = { main: number; journal: number; inputs: Record<string, number> };

/**
 * A checkpoint's positions. Before the main input was read directly, `seq` was the journal
 * sequence and the journal held every input, the main one too (see recoverEntries).
 */
export function positionsOf(cp: { seq: number; inputs?: Record<string, number>; journal?: number } | null, inputs: JoinedInput[]): JoinedPositions {
  if (!cp) return { main: 0, journal: 0, inputs: {} };
  const pos = { ...(cp.inputs ?? {}) };
  if (cp.journal === undefined) return { main: pos[inputs[0].name] ?? 0, journal: cp.seq, inputs: pos };
  return { main: cp.seq, journal: cp.journal, inputs: pos };
}

/** The journal's tail and the main inputs' last sequences, per client and stream: actors starting together look theirs up together. */
const loaders = new WeakMap<JetStreamClient, Map<string, LastMsgLoader>>();
function loaderFor(js: JetStreamClient, stream: string, subject: string, log: Logger): LastMsgLoader {
  // The bulk read's filter: the subject with its last token as a wildcard (md.candles.1m.>), which
  // the other pairs' actors share.
  const filter = subject.includes(".") ? subject.slice(0, subject.lastIndexOf(".")) + ".>" : subject;
  let m = loaders.get(js);
  if (!m) loaders.set(js, (m = new Map()));
  let l = m.get(`${stream} ${filter}`);
  if (!l) m.set(`${stream} ${filter}`, (l = new LastMsgLoader(js, stream, filter, log)));
  return l;
}

/** Recovery reads (one consumer each) running at once per client. */
const RECOVERIES_AT_ONCE = 64;
const recoveryTurns = new WeakMap<JetStreamClient, Turns>();

type Entry = { step: JoinedStep; after: number };

/**
 * The journal's entries after `from.journal`, each with the main-input sequence it goes after.
 * An entry of the main input itself (a journal from before the main input was read directly) is
 * not kept: the main input is read from its stream, and such an entry only says how far the main
 * input had got at that point of the journal, which places the entries without `Tf-After` after it.
 */
async function recoverEntries(js: JetStreamClient, subject: string, from: JoinedPositions, main: string, log: Logger): Promise<{ entries: Entry[]; last: number }> {
  const last = await loaderFor(js, JOURNAL_STREAM, subject, log).get(subject);
  if (!last || last.seq <= from.journal) return { entries: [], last: last?.seq ?? 0 };
  // After a crash nearly every joined actor may have entries past its checkpoint: a thousand-pair
  // worker restarting made two thousand consumers at once, and the server missed other consumers'
  // heartbeats. The reads take turns, 64 at a time per process.
  let turns = recoveryTurns.get(js);
  if (!turns) recoveryTurns.set(js, (turns = new Turns(RECOVERIES_AT_ONCE)));
  const release = (await turns.take())!;
  try {
    const c = await js.consumers.get(JOURNAL_STREAM, { filter_subjects: subject, opt_start_seq: from.journal + 1 });
    const out: Entry[] = [];
    let seen = last.seq;
    try {
      if ((await c.info()).num_pending === 0) return { entries: out, last: seen };
      const iter = await c.consume({ max_messages: 1024 });
      let mainSoFar = from.main;
      try {
        for await (const m of iter) {
          seen = Math.max(seen, m.seq);
          const e = entryOf(m, mainSoFar);
          if (e && e.step.name === main) mainSoFar = Math.max(mainSoFar, e.step.seq);
          else if (e) out.push(e);
          if (m.info.pending === 0) break;
        }
      } finally {
        iter.stop();
      }
      return { entries: out, last: seen };
    } finally {
      void dropConsumer(c);
    }
  } finally {
    release();
  }
}

/** A journal entry to apply; null for a fence. */
function entryOf(m: JsMsg, mainSoFar: number): Entry | null {
  const h = readHeaders(m);
  const name = h.get(HDR_INPUT);
  if (name === FENCE) return null;
  const seq = Number(h.get(HDR_INPUT_SEQ));
  const subject = h.get(HDR_INPUT_SUBJECT);
  if (!name || !subject || !Number.isSafeInteger(seq)) {
    throw new TickflowError(ErrorCode.BadMessage, `journal entry ${m.subject}#${m.seq} lacks its ${HDR_INPUT}/${HDR_INPUT_SEQ}/${HDR_INPUT_SUBJECT} headers`);
  }
  const afterHdr = h.get(HDR_AFTER);
  const after = afterHdr ? Number(afterHdr) : mainSoFar;
  if (!Number.isSafeInteger(after)) throw new TickflowError(ErrorCode.BadMessage, `journal entry ${m.subject}#${m.seq}: ${HDR_AFTER} "${afterHdr}" is not a sequence`);
  // A copy: the consumer's message is a view of the socket's buffer. The actor sees the entry's
  // headers without the server's (dedup id, expected sequence), as it saw them when this owner appended it.
  const copy: HubMsg = { subject: m.subject, seq: m.seq, data: m.data.slice() };
  const kept = new Map<string, string[]>();
  for (const [k, vs] of h) if (!/^nats-/i.test(k)) kept.set(k, vs);
  return { step: { m: copy, name, subject, seq, main: false, journalSeq: m.seq, hdrs: new ReadHeaders(kept, 0) }, after };
}

/** One subscription read one message at a time by a loop that waits on several. */
class Feed {
  head: HubMsg | null = null;
  done = false;
  error: Error | null = null;
  private waiting = false;
  private readonly it: AsyncIterator<HubMsg>;

  constructor(readonly input: JoinedInput, readonly sub: InputSubscription, private readonly ready: () => void) {
    this.it = sub[Symbol.asyncIterator]();
  }

  /** The next message, not taken; null when none is queued, and then `ready` is called when one comes. */
  peek(): HubMsg | null {
    if (this.head || this.waiting || this.done) return this.head;
    const m = this.sub.takeQueued();
    if (m) return (this.head = m);
    this.waiting = true;
    this.it.next().then(
      (r) => {
        this.waiting = false;
        if (r.done) this.done = true;
        else this.head = r.value;
        this.ready();
      },
      (err: Error) => {
        this.waiting = false;
        this.error = err;
        this.done = true;
        this.ready();
      },
    );
    return null;
  }

  take(): HubMsg {
    const m = this.head!;
    this.head = null;
    return m;
  }
}

/**
 * The inputs of a joined actor in the order it applies them (see the top of this file). The cell
 * takes one step at a time, applies it, then calls `applied(step)`.
 */
export class JoinedReader {
  private readonly feeds: Feed[] = [];
  private recovered: Entry[] = [];
  private rHead = 0;
  /** The main input is applied up to here before any new message of another input is taken. */
  private drainTo = 0;
  private readonly pos: JoinedPositions;
  private wake: (() => void) | null = null;
  private signalled = false;
  private stopped = false;
  private appending = false;
  private readonly subject: string;
  private readonly idPrefix: string;
  /** The journal's last entry on this actor's subject, as far as this owner knows (see the fence above). */
  private journalLast = 0;
  /** Entries this owner appended, and entries read back from the journal at start. */
  appended = 0;
  recoveredCount = 0;

  constructor(private readonly o: {
    js: JetStreamClient;
    hubs: InputHubs;
    /** Read what is behind the hub from the streams themselves (a restart after a crash). */
    fromStream: boolean;
    /** The actor's publish connection (see publish-pool.ts): appends travel in order with its outputs. */
    conn: PooledConnection;
    stage: string;
    key: string;
    inputs: JoinedInput[];
    from: JoinedPositions;
    log: Logger;
  }) {
    this.pos = { main: o.from.main, journal: o.from.journal, inputs: { ...o.from.inputs } };
    this.subject = journalSubject(o.stage, o.key);
    this.idPrefix = `${o.stage}.${keyToken(o.key)}`;
  }

  /** Reads the journal after the checkpoint and where the main input stands, then subscribes every input. */
  async start(): Promise<void> {
    const { js, inputs, log } = this.o;
    const main = inputs[0];
    const [{ entries, last }, tail] = await Promise.all([
      recoverEntries(js, this.subject, this.pos, main.name, log),
      loaderFor(js, main.stream, main.filter, log).get(main.filter),
    ]);
    this.recovered = entries;
    this.recoveredCount = entries.length;
    this.drainTo = tail?.seq ?? 0;
    this.journalLast = last;
    // The fence: from here on an append by anybody who has not read up to it fails.
    const fence = await this.o.conn.publish(this.subject, new Uint8Array(0), WireHeaders.of(headerLine(HDR_INPUT, FENCE) + this.expected())).catch((err: Error) => {
      throw new Error(`${this.idPrefix}: the journal changed while this owner read it (${err.message}): restarting to read it again`, { cause: err });
    });
    this.journalLast = fence.seq;
    // Every other input resumes after the last of its messages the journal holds.
    const next: Record<string, number> = { ...this.pos.inputs };
    for (const e of entries) next[e.step.name] = Math.max(next[e.step.name] ?? 0, e.step.seq);
    next[main.name] = this.pos.main;
    for (const inp of inputs) {
      const sub = await this.o.hubs.subscribe(inp.stream, inp.filter, (next[inp.name] ?? 0) + 1, { fromStream: this.o.fromStream }).catch((err: Error) => {
        throw new Error(`${this.idPrefix}: input "${inp.name}" (stream ${inp.stream}, filter ${inp.filter}): ${err.message}`, { cause: err });
      });
      this.feeds.push(new Feed(inp, sub, this.ready));
      if (this.stopped) sub.stop();
    }
  }

  private readonly ready = (): void => {
    this.signalled = true;
    const w = this.wake;
    this.wake = null;
    w?.();
  };

  /** The next step when it can be had without waiting; undefined otherwise (then `next()`). */
  takeReady(): JoinedStep | undefined {
    const main = this.feeds[0];
    if (this.rHead < this.recovered.length) {
      const e = this.recovered[this.rHead];
      if (e.after <= this.pos.main) return this.takeRecovered();
      const m = main.peek();
      if (!m) return undefined;
      // The stream no longer holds the message it was placed after (removed by a limit): it goes now.
      if (m.seq > e.after) return this.takeRecovered();
      return this.mainStep(main.take());
    }
    if (this.pos.main < this.drainTo) {
      const m = main.peek();
      return m ? this.mainStep(main.take()) : undefined;
    }
    // Another input's message needs an append first (next()); the main input's is ready now.
    for (let i = 1; i < this.feeds.length; i++) if (this.feeds[i].peek()) return undefined;
    const m = main.peek();
    return m ? this.mainStep(main.take()) : undefined;
  }

  /** The next step, waiting for one; null when the inputs have ended (stopped). */
  async next(): Promise<JoinedStep | null> {
    for (;;) {
      this.signalled = false;
      const s = this.takeReady();
      if (s) return s;
      for (const f of this.feeds) if (f.error) throw f.error;
      if (this.stopped || this.feeds.some((f) => f.done)) return null;
      if (this.rHead >= this.recovered.length && this.pos.main >= this.drainTo) {
        for (let i = 1; i < this.feeds.length; i++) if (this.feeds[i].peek()) return this.append(this.feeds[i]);
      } else if (!this.feeds[0].head && (await this.feeds[0].sub.caughtUp())) {
        // The main input has nothing more now: whatever it had up to the start was applied (or
        // removed by a limit), so the recovered entries go in their order and the drain is over.
        if (this.rHead < this.recovered.length) return this.takeRecovered();
        this.drainTo = this.pos.main;
        continue;
      }
      if (this.signalled) continue;
      await new Promise<void>((r) => (this.wake = r));
    }
  }

  /** Bookkeeping once the cell applied `s` (its outputs handed to the publisher). */
  applied(s: JoinedStep): void {
    if (s.main) this.pos.main = s.seq;
    else if (s.journalSeq !== null) this.pos.journal = s.journalSeq;
    this.pos.inputs[s.name] = s.seq;
  }

  /** The last main-input sequence applied. */
  get mainApplied(): number {
    return this.pos.main;
  }

  /** Where the actor stands, for its checkpoint. */
  positions(): JoinedPositions {
    return { main: this.pos.main, journal: this.pos.journal, inputs: { ...this.pos.inputs } };
  }

  /** Messages queued for the actor and not yet applied, over its inputs. */
  backlog(): number {
    let n = this.recovered.length - this.rHead;
    for (const f of this.feeds) n += f.sub.backlog() + (f.head ? 1 : 0);
    return n;
  }

  /** True when every input has nothing more pending and every step taken was applied (for bounded runs). */
  async caughtUp(): Promise<boolean> {
    if (this.stopped || this.appending || this.rHead < this.recovered.length || this.feeds.length < this.o.inputs.length) return false;
    // A feed the loop has not looked at yet (another input, while the main one drains) is armed
    // here, so that its subscription can tell; one that had a message queued wakes the loop.
    for (const f of this.feeds) {
      if (f.peek()) {
        this.ready();
        return false;
      }
    }
    for (const f of this.feeds) if (!(await f.sub.caughtUp())) return false;
    return !this.appending && this.feeds.every((f) => !f.head);
  }

  stop(): void {
    this.stopped = true;
    for (const f of this.feeds) f.sub.stop();
    this.ready();
  }

  /** The header that makes an append fail unless the journal's last entry is the one this owner knows. */
  private expected(): string {
    return headerLine("Nats-Expected-Last-Subject-Sequence", String(this.journalLast));
  }

  private takeRecovered(): JoinedStep {
    return this.recovered[this.rHead++].step;
  }

  private mainStep(m: HubMsg): JoinedStep {
    return { m, name: this.o.inputs[0].name, subject: m.subject, seq: m.seq, main: true, journalSeq: null };
  }

  /** Appends another input's message to the journal after the main input's last applied, and hands it out once stored. */
  private async append(f: Feed): Promise<JoinedStep> {
    const m = f.take();
    const name = f.input.name;
    // The original headers (codec, KV operation), never the server's control headers (a KV
    // purge's Nats-Rollup would purge the journal), and ours in place of any of the same name.
    let lines = "";
    for (const [k, vs] of readHeaders(m)) {
      if (/^nats-/i.test(k) || k === HDR_INPUT || k === HDR_INPUT_SEQ || k === HDR_INPUT_SUBJECT || k === HDR_AFTER) continue;
      for (const v of vs) lines += headerLine(k, v);
    }
    lines += headerLine(HDR_INPUT, name) + headerLine(HDR_INPUT_SEQ, String(m.seq)) + headerLine(HDR_INPUT_SUBJECT, m.subject) + headerLine(HDR_AFTER, String(this.pos.main));
    this.appending = true;
    try {
      const ack = await this.o.conn.publish(this.subject, m.data, WireHeaders.of(lines + headerLine("Nats-Msg-Id", `${this.idPrefix}:${name}:${m.seq}`) + this.expected()));
      if (ack.duplicate) throw new Error("the journal already holds it (another owner appended it)");
      this.journalLast = ack.seq;
      this.appended++;
      return { m, name, subject: m.subject, seq: m.seq, main: false, journalSeq: ack.seq, hdrs: ReadHeaders.parse(`NATS/1.0\r\n${lines}`) };
    } catch (err) {
      throw new Error(`${this.idPrefix}: journal append of input "${name}" #${m.seq}: ${(err as Error).message}; restarting to read the journal again`, { cause: err });
    } finally {
      this.appending = false;
    }
  }
}
