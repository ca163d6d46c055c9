// Inputs of the stream actors in one process: one reader per stream, shared by every actor (and
// every input of a joined-input actor) that reads it, instead of one JetStream consumer each.
//
// Why: a consumer per actor cost, at 300 pairs and six stages, about 3,000 consumers on the server,
// four API requests each to start (stream info, create, pull, info for "caught up?"), and server CPU
// on every stored message for every consumer of its stream: as much CPU as the worker itself.
// Connections were made independent of the number of actors the same way (publish-pool.ts).
//
// The guarantee per subscription is that of an ordered consumer of its own: every message of the
// stream that matches its filter, from sequence `from` on, once, in stream order, with no gap.
//
// How:
// - The hub reads the whole stream with one ordered consumer, starting a little before the tail
//   it finds when its first subscriber arrives, and hands each message to the subscriptions whose
//   filter matches. `lastDispatched` is the last stream sequence handed out.
// - It keeps the last `ringSize` messages it read, as copies of their bytes (message-ring.ts). A
//   subscription that starts behind the hub, at or after the oldest of them, gets its share of
//   them at once: actors that start while their input is already flowing (every actor of a
//   worker that starts under load) cost no request.
// - A subscription further behind reads the range it lacks, [from, H] with H = `lastDispatched`
//   when it registered, with a catch-up consumer of its own, while the hub already queues for it
//   everything after H: the two ranges meet with nothing between them. Whether anything at all
//   is missing is asked first with one message lookup, so a checkpoint at the head of its subject
//   costs no consumer.
// - When a subscription's queue is full, or all queues together pass `maxQueued`, the hub stops
//   reading until there is room again: a reader a little slower than the others slows the hub
//   down (as its own consumer would have), it does not make it drop anything. A subscription
//   still full after `stuckMs` (an actor stuck, not slow) drops its queue and catches up the same
//   way from the last message it took, and the hub reads on: one stuck actor neither holds the
//   others back nor grows memory without bound.
// - At most `maxCatchUps` catch-up consumers of a stream run at once. A worker that starts behind
//   its input with a thousand actors (a stage added to a running system, a restart after an
//   outage) had a thousand consumers at once, each pulling up to `batch` messages into memory:
//   a sentiment worker with 999 pairs peaked at 261 MB catching up 23 candles each, and a longer
//   outage would have buffered far more. The rest wait their turn, their live queues filling
//   (and, past `stuckMs` full, dropping as any stuck subscription's do). A catch-up pulls
//   `catchUpBatch` messages at a time, so catching up holds at most maxCatchUps × catchUpBatch.
import type { Consumer, ConsumerMessages, JetStreamClient, JetStreamManager, JsMsg, MsgRequest } from "@nats-io/jetstream";
import type { MsgHdrs } from "@nats-io/transport-node";
import type { Logger } from "pino";
import { wireBytesOf } from "../protocol/wire-headers.js";
import { MessageRing } from "./message-ring.js";
import { dropConsumer } from "./nats.js";
import { Turns } from "./turns.js";
import { nextTurn, sliceUsedUp } from "./time-slice.js";

/** A message of a stream as subscriptions see it (the JsMsg the hub or a catch-up consumer read). */
export type HubMsg = { subject: string; seq: number; data: Uint8Array; headers?: MsgHdrs };

export type InputHubOptions = {
  /** Messages one subscription may have queued: at this many the hub stops reading until it has taken half. */
  maxQueuedPerSubscription: number;
  /** A subscription still full after this long is stuck: it drops its queue and later catches up by itself, and the hub reads on. */
  stuckMs: number;
  /** Messages all subscriptions of a stream may have queued before the hub stops reading. */
  maxQueued: number;
  /** Messages the hub keeps after dispatching them, for subscriptions that start a little behind. */
  ringSize: number;
  /** Bytes (header blocks and payloads) those kept messages may take, in one buffer (message-ring.ts). */
  ringBytes: number;
  /** Messages asked for per pull, by the hub and by catch-up consumers. */
  batch: number;
  /** Catch-up consumers of one stream running at once; further subscriptions behind wait their turn. */
  maxCatchUps: number;
  /** Messages a catch-up consumer asks for per pull: with maxCatchUps, what catching up may hold in memory at once. */
  catchUpBatch: number;
};

export const DEFAULT_HUB_OPTIONS: InputHubOptions = { maxQueuedPerSubscription: 4096, stuckMs: 2000, maxQueued: 65_536, ringSize: 10_000, ringBytes: 8 << 20, batch: 2048, maxCatchUps: 64, catchUpBatch: 512 };

/** True if `subject` matches the NATS filter `filter` (tokens, `*` for one, `>` for the rest). */
export function subjectMatches(filter: string, subject: string): boolean {
  return filterMatcher(filter)(subject);
}

/** A filter compiled once: a literal compares strings, a wildcard compares tokens. */
export function filterMatcher(filter: string): (subject: string) => boolean {
  if (filter === ">") return () => true;
  if (!filter.includes("*") && !filter.includes(">")) return (subject) => subject === filter;
  const f = filter.split(".");
  const tail = f[f.length - 1];
  // Cheap rejection first: most subjects differ in the last token (the pair).
  const suffix = tail === "*" || tail === ">" ? null : `.${tail}`;
  // Token by token along the subject, without splitting it: every candle of every pair passes a
  // wildcard filter (the indicators stage's `md.candles.*.<pair>`), and a split made an array each time.
  return (subject) => {
    if (suffix !== null && !subject.endsWith(suffix)) return false;
    const n = subject.length;
    let pos = 0; // where the subject's next token starts; past n when there is none
    for (let i = 0; i < f.length; i++) {
      if (pos > n) return false;
      const t = f[i];
      if (t === ">") return true;
      let end = subject.indexOf(".", pos);
      if (end < 0) end = n;
      if (t !== "*" && (end - pos !== t.length || !subject.startsWith(t, pos))) return false;
      pos = end + 1;
    }
    return pos > n;
  };
}

/** The reason a stopped subscription's signal carries (abort() without one builds a DOMException, with its stack). */
const SUBSCRIPTION_STOPPED = new Error("input subscription stopped");

/** How long one look at the stream's last sequence answers `atTail()`. */
const TAIL_FRESH_MS = 10;

const lastToken = (s: string) => s.slice(s.lastIndexOf(".") + 1);

/** One hub per stream, created on first use. */
export class InputHubs {
  private readonly hubs = new Map<string, StreamHub>();
  private jsm: Promise<JetStreamManager> | null = null;
  private readonly o: InputHubOptions;

  constructor(private readonly js: JetStreamClient, private readonly log: Logger, opts: Partial<InputHubOptions> = {}) {
    this.o = { ...DEFAULT_HUB_OPTIONS, ...opts };
  }

  /**
   * Messages of `stream` matching `filter` from sequence `from` on. With `fromStream`, what is
   * behind the reader is read from the stream, never from the ring: a restart after a crash must
   * see the stream as it is now (an operator may have deleted the message that crashed it).
   */
  subscribe(stream: string, filter: string, from: number, opts: { fromStream?: boolean } = {}): Promise<InputSubscription> {
    // The API was checked when the process bootstrapped its streams.
    this.jsm ??= this.js.jetstreamManager(false);
    let hub = this.hubs.get(stream);
    if (!hub) this.hubs.set(stream, (hub = new StreamHub(stream, this.js, this.jsm, this.log, this.o)));
    return hub.subscribe(filter, from, !!opts.fromStream);
  }

  /** Per stream: subscriptions, last sequence read, messages queued (for status and tests). */
  stats(): { stream: string; subscriptions: number; lastDispatched: number; queued: number; catchUps: number; catchUpsPeak: number }[] {
    return [...this.hubs.values()].map((h) => h.stats());
  }

  close(): void {
    for (const h of this.hubs.values()) h.close();
    this.hubs.clear();
  }
}

class StreamHub {
  private readonly subs = new Set<InputSubscription>();
  /** Subscriptions whose filter ends in a literal token, by that token (the pair, in practice). */
  private readonly byLast = new Map<string, Set<InputSubscription>>();
  /** The others (a filter ending in a wildcard). */
  private readonly general = new Set<InputSubscription>();
  private starting: Promise<void> | null = null;
  private iter: ConsumerMessages | null = null;
  /** The server's consumer behind `iter`, deleted when the reader stops. */
  private consumer: Consumer | null = null;
  private closed = false;
  /** Last stream sequence handed to subscriptions (everything up to it has been offered). */
  lastDispatched = 0;
  /** Messages queued in all subscriptions. */
  queued = 0;
  /** Messages the stream held after the last one dispatched, as the server said with it. */
  streamPending = Number.POSITIVE_INFINITY;
  private room: (() => void) | null = null;
  /** Subscriptions whose queue is full: the hub waits for them (or, past stuckMs, detaches them). */
  readonly full = new Set<InputSubscription>();
  /** The last messages read, as copies of their bytes (for subscriptions that start behind). */
  private readonly ring: MessageRing;
  private tail: Promise<number> | null = null;
  private tailAt = 0;
  catchUps = 0;
  /** Turns of the catch-up consumers (maxCatchUps at once); its peakHolding is the most that ran at once. */
  readonly catchUpTurns: Turns;

  constructor(
    readonly stream: string,
    readonly js: JetStreamClient,
    readonly jsm: Promise<JetStreamManager>,
    private readonly log: Logger,
    readonly o: InputHubOptions,
  ) {
    this.catchUpTurns = new Turns(o.maxCatchUps);
    this.ring = new MessageRing(o.ringSize, o.ringBytes);
  }

  stats() {
    return { stream: this.stream, subscriptions: this.subs.size, lastDispatched: this.lastDispatched, queued: this.queued, catchUps: this.catchUps, catchUpsPeak: this.catchUpTurns.peakHolding };
  }

  /** Waits for a catch-up turn; false if the subscription stopped meanwhile (its turn goes to the next). */
  async subscribe(filter: string, from: number, fromStream: boolean): Promise<InputSubscription> {
    await this.start();
    if (this.closed) throw new Error(`input of stream ${this.stream}: the process is stopping`);
    // From here to the end, nothing is dispatched: registration, H and the ring agree.
    const sub = new InputSubscription(this, filter, Math.max(1, from));
    this.subs.add(sub);
    const last = lastToken(filter);
    if (last === "*" || last === ">") this.general.add(sub);
    else {
      let set = this.byLast.get(last);
      if (!set) this.byLast.set(last, (set = new Set()));
      set.add(sub);
    }
    const h = this.lastDispatched;
    if (sub.next <= h) {
      const oldest = this.ring.oldestSeq() ?? h + 1;
      if (sub.next >= oldest && !fromStream) {
        const literal = /[*>]/.test(filter) ? null : filter;
        for (const m of this.ring.since(sub.next, literal, sub.matches)) sub.offer(m);
      } else {
        sub.catchUpTo = h;
      }
    }
    return sub;
  }

  remove(sub: InputSubscription): void {
    if (!this.subs.delete(sub)) return;
    if (this.full.delete(sub)) this.checkRoom();
    this.general.delete(sub);
    const last = lastToken(sub.filter);
    const set = this.byLast.get(last);
    if (set) {
      set.delete(sub);
      if (set.size === 0) this.byLast.delete(last);
    }
  }

  dequeued(n: number): void {
    this.queued -= n;
    this.checkRoom();
  }

  checkRoom(): void {
    if (this.room && this.full.size === 0 && this.queued <= this.o.maxQueued / 2) {
      const r = this.room;
      this.room = null;
      r();
    }
  }

  /** Waits until every queue has room; past stuckMs, detaches the subscriptions still full. */
  private async waitForRoom(): Promise<void> {
    const wait = new Promise<void>((r) => (this.room = r));
    const timer = setTimeout(() => {
      for (const s of [...this.full]) s.detach();
      this.full.clear();
      this.checkRoom();
    }, this.o.stuckMs);
    try {
      await wait;
    } finally {
      clearTimeout(timer);
    }
  }

  private start(): Promise<void> {
    if (this.starting) return this.starting;
    const p = (async () => {
      const jsm = await this.jsm;
      const info = await jsm.streams.info(this.stream);
      // A little before the tail, so the ring serves actors that start just behind it.
      const first = Math.max(info.state.first_seq, info.state.last_seq - this.o.ringSize + 1, 1);
      const consumer = await this.js.consumers.get(this.stream, { opt_start_seq: first });
      const iter = await consumer.consume({ max_messages: this.o.batch });
      this.lastDispatched = first - 1;
      this.iter = iter;
      this.consumer = consumer;
      if (this.closed) iter.stop();
      void this.run(iter);
    })();
    this.starting = p;
    p.catch(() => {
      if (this.starting === p) this.starting = null;
    });
    return p;
  }

  private async run(iter: ConsumerMessages): Promise<void> {
    let failure: Error | null = null;
    try {
      for await (const m of iter) {
        // A reader hands out a whole fetched batch in one chain of microtasks: it too gives the
        // event loop its turn once the slice is used up (time-slice.ts).
        while (sliceUsedUp()) await nextTurn();
        if (this.closed) break;
        this.dispatch(m);
        if (this.queued > this.o.maxQueued || this.full.size > 0) await this.waitForRoom();
      }
    } catch (err) {
      failure = err as Error;
    }
    if (this.closed) return;
    // The reader ended without being asked to: every subscription fails (its actor restarts and
    // subscribes again, to a fresh reader).
    const err = new Error(`the reader of stream ${this.stream} stopped: ${failure?.message ?? "its consumer ended"}`, { cause: failure ?? undefined });
    this.log.warn({ stream: this.stream, err: err.message }, "input hub reader stopped");
    this.starting = null;
    this.iter = null;
    if (this.consumer) void dropConsumer(this.consumer);
    this.consumer = null;
    this.ring.clear();
    for (const s of [...this.subs]) {
      this.remove(s);
      s.fail(err);
    }
  }

  private dispatch(m: JsMsg): void {
    const seq = m.seq;
    if (seq <= this.lastDispatched) return;
    this.lastDispatched = seq;
    this.streamPending = m.info.pending;
    const subject = m.subject;
    // The JsMsg itself: its headers are parsed only if a reader asks for them.
    this.remember(m);
    const bucket = this.byLast.get(lastToken(subject));
    if (bucket) for (const s of bucket) if (s.matches(subject)) s.offer(m);
    for (const s of this.general) if (s.matches(subject)) s.offer(m);
  }

  private remember(m: HubMsg): void {
    if (this.o.ringSize <= 0) return;
    const wire = wireBytesOf(m);
    if (wire) this.ring.push(m.seq, m.subject, wire.bytes, wire.hdrLen);
    else this.ring.clear(); // not off the wire (never, from the hub's consumer): the ring restarts after it
  }

  /**
   * True when the hub has handed out everything the stream holds. One request serves every caller
   * within TAIL_FRESH_MS (a settle round asks once per subscription, thousands of times): the
   * stream's last sequence is at most that old, and `settle()` waits longer than that between
   * the two rounds that must agree, so a message stored meanwhile is seen by the second.
   */
  atTail(): Promise<boolean> {
    const now = Date.now();
    if (!this.tail || now - this.tailAt > TAIL_FRESH_MS) {
      this.tailAt = now;
      const p = (async () => (await (await this.jsm).streams.info(this.stream)).state.last_seq)();
      p.catch(() => {
        if (this.tail === p) this.tail = null;
      });
      this.tail = p;
    }
    return this.tail.then((last) => this.iter !== null && this.lastDispatched >= last);
  }

  close(): void {
    this.closed = true;
    this.iter?.stop();
    if (this.consumer) void dropConsumer(this.consumer);
    this.full.clear();
    this.room?.();
    for (const s of [...this.subs]) s.stop();
    this.ring.clear();
  }
}

/**
 * One reader's view of a stream: iterate it (once) for its messages. `stop()` ends the iteration.
 */
export class InputSubscription implements AsyncIterable<HubMsg> {
  /** The next sequence this subscription may hand out (everything before it was handed out or is before `from`). */
  next: number;
  /** Set while the range [next, catchUpTo] must be read by a catch-up consumer before the queue. */
  catchUpTo: number | null = null;
  private queue: HubMsg[] = [];
  private qHead = 0;
  private overflowed = false;
  private stopped = false;
  private error: Error | null = null;
  private wake: (() => void) | null = null;
  /** True while the reader waits for a message (it has applied everything it took). */
  private idle = false;
  private catchIter: ConsumerMessages | null = null;
  /** Gives back the hub's catch-up turn this subscription holds, if it holds one. */
  private catchUpRelease: (() => void) | null = null;
  /**
   * Aborted when the subscription stops: a wait for a catch-up turn ends with it. Made only when
   * a catch-up waits for its turn: aborting one builds its signal and an event, which a thousand
   * actors stopping together each paid.
   */
  private stopping: AbortController | null = null;
  private iterated = false;

  readonly matches: (subject: string) => boolean;

  constructor(private readonly hub: StreamHub, readonly filter: string, from: number) {
    this.next = from;
    this.matches = filterMatcher(filter);
  }

  /** Called by the hub with each matching message, in stream order. */
  offer(m: HubMsg): void {
    if (this.stopped || this.overflowed || m.seq < this.next) return;
    this.queue.push(m);
    this.hub.queued++;
    if (this.queue.length - this.qHead >= this.hub.o.maxQueuedPerSubscription) this.hub.full.add(this);
    this.notify();
  }

  /** Stuck: drop the queue and catch up from `next` when the reader gets here. */
  detach(): void {
    if (this.stopped) return;
    this.overflowed = true;
    this.hub.dequeued(this.queue.length - this.qHead);
    this.queue = [];
    this.qHead = 0;
    this.notify();
  }

  fail(err: Error): void {
    this.error ??= err;
    this.notify();
  }

  private notify(): void {
    const w = this.wake;
    this.wake = null;
    w?.();
  }

  /** Messages queued for this reader and not yet taken (a catch-up in progress counts as one). */
  backlog(): number {
    return this.queue.length - this.qHead + (this.catchUpTo !== null || this.overflowed ? 1 : 0);
  }

  /**
   * Without a request: true when nothing is queued for this reader and, when the reader last
   * dispatched a message, the stream held nothing after it (what `info.pending === 0` says for
   * a consumer of its own, across all subjects of the stream rather than this filter only).
   */
  atStreamEnd(): boolean {
    return this.backlog() === 0 && this.hub.streamPending === 0;
  }

  /** True when the reader took and applied everything the stream holds for it so far. */
  async caughtUp(): Promise<boolean> {
    if (!this.idle || this.backlog() > 0 || this.error || this.stopped) return false;
    return (await this.hub.atTail()) && this.idle && this.backlog() === 0;
  }

  stop(): void {
    if (this.stopped) return;
    this.stopped = true;
    this.stopping?.abort(SUBSCRIPTION_STOPPED);
    this.hub.remove(this);
    this.hub.dequeued(this.queue.length - this.qHead);
    this.queue = [];
    this.qHead = 0;
    this.catchIter?.stop();
    // Here too, not only when the catch-up loop ends: a reader that stops iterating (its actor
    // crashed mid-catch-up) never resumes that loop, and its turn would be lost for good.
    this.releaseCatchUp();
    this.notify();
  }

  private releaseCatchUp(): void {
    const release = this.catchUpRelease;
    this.catchUpRelease = null;
    release?.();
  }

  /**
   * The next queued message, taken synchronously, when the subscription is simply reading its
   * queue (not catching up from the stream, not failed or stopped); undefined otherwise, and then
   * the iterator is what to wait on. The same bookkeeping as the iterator's queue branch.
   */
  takeQueued(): HubMsg | undefined {
    while (!this.stopped && !this.error && !this.overflowed && this.catchUpTo === null && this.qHead < this.queue.length) {
      const m = this.take();
      if (m.seq < this.next) continue;
      this.next = m.seq + 1;
      return m;
    }
    return undefined;
  }

  /** Takes the head of the queue (which must not be empty). */
  private take(): HubMsg {
    const m = this.queue[this.qHead];
    // A taken message must not stay reachable from the queue: a quiet actor's queue is emptied
    // rarely, and with a thousand actors the messages they had long applied were most of an idle
    // worker's heap (and every one of them lived long enough to be promoted, at GC cost).
    this.queue[this.qHead++] = undefined as unknown as HubMsg;
    if (this.qHead === this.queue.length) {
      this.queue.length = 0;
      this.qHead = 0;
    } else if (this.qHead > 1024 && this.qHead * 2 > this.queue.length) {
      this.queue = this.queue.slice(this.qHead);
      this.qHead = 0;
    }
    if (this.hub.full.has(this) && this.queue.length - this.qHead <= this.hub.o.maxQueuedPerSubscription / 2) this.hub.full.delete(this);
    this.hub.dequeued(1);
    return m;
  }

  async *[Symbol.asyncIterator](): AsyncIterator<HubMsg> {
    if (this.iterated) throw new Error("an input subscription is iterated once");
    this.iterated = true;
    try {
      while (!this.stopped) {
        if (this.error) throw this.error;
        if (this.overflowed && this.qHead >= this.queue.length) {
          // Queue again from here on, and read what was dropped by ourselves.
          this.overflowed = false;
          this.catchUpTo = this.hub.lastDispatched;
        }
        if (this.catchUpTo !== null) {
          const to = this.catchUpTo;
          yield* this.readRange(to);
          if (this.catchUpTo === to) this.catchUpTo = null;
          continue;
        }
        if (this.qHead < this.queue.length) {
          const m = this.take();
          if (m.seq < this.next) continue;
          this.next = m.seq + 1;
          yield m;
          continue;
        }
        this.idle = true;
        await new Promise<void>((r) => (this.wake = r));
        this.idle = false;
      }
    } finally {
      this.idle = false;
      this.stop();
    }
  }

  /** Reads [next, to] of this filter with a consumer of its own (or nothing, if nothing is there). */
  private async *readRange(to: number): AsyncGenerator<HubMsg> {
    if (this.next > to) return;
    const { stream, js } = this.hub;
    const jsm = await this.hub.jsm;
    // The stream's message-get API takes next_by_subj (wildcards too) since nats-server 2.9; the client's type lists it only for direct gets.
    const first = await jsm.streams.getMessage(stream, { next_by_subj: this.filter, seq: this.next } as unknown as MsgRequest);
    if (!first || first.seq > to) return;
    this.stopping ??= new AbortController();
    if (this.stopped) this.stopping.abort(SUBSCRIPTION_STOPPED);
    const release = await this.hub.catchUpTurns.take(this.stopping.signal);
    if (!release) return;
    this.catchUpRelease = release;
    try {
      this.hub.catchUps++;
      const consumer = await js.consumers.get(stream, { filter_subjects: this.filter, opt_start_seq: first.seq });
      const iter = await consumer.consume({ max_messages: Math.min(this.hub.o.catchUpBatch, to - first.seq + 1) });
      this.catchIter = iter;
      if (this.stopped) iter.stop();
      try {
        for await (const m of iter) {
          if (this.stopped || m.seq > to) break;
          if (m.seq >= this.next) {
            this.next = m.seq + 1;
            yield m;
          }
          // Nothing more of ours in the stream now: whatever comes later is after `to`, so queued.
          if (m.seq >= to || m.info.pending === 0) break;
        }
      } finally {
        iter.stop();
        this.catchIter = null;
        void dropConsumer(consumer);
      }
    } finally {
      this.releaseCatchUp();
    }
  }
}
