// The last message of many subjects of a stream read at once: the checkpoints of the actors a
// reconcile pass starts, the resume points of the trades actors starting with them.
//
// Why: each actor reads its checkpoint (and a trades actor its output's tail) when it starts, one
// request each. Starting a thousand pairs is four thousand of those (nats.js makes a reply entry,
// a timer and an error object per request, and a missing message comes back as an API error), and
// in a fresh system every one of them answers "nothing there". One stream-info request names every
// subject the stream holds; when none of the wanted ones is among them, that is the whole read.
// When many are, one ordered consumer reads the last message of every subject (what each request
// would have returned) instead of a request each.
//
// Callers read after their leases are taken, as each actor's own read was: a previous owner wrote
// its last checkpoint (or output) before it released the lease. Anything this cannot say (an error,
// a stream with far more subjects than are wanted) is left unknown, and the actor reads its own.
import { DeliverPolicy, type JetStreamClient } from "@nats-io/jetstream";
import type { MsgHdrs } from "@nats-io/transport-node";
import type { Logger } from "pino";
import { dropConsumer } from "./nats.js";

/** The last message on a subject: what a stream message get returns, as far as readers use it. */
export type LastMsg = { subject: string; seq: number; data: Uint8Array; headers?: MsgHdrs };

/** A checkpoint entry as the actor cell reads it (the fields of a KV entry it uses). */
export type StateEntry = { value: Uint8Array; revision: number; operation: "PUT" | "DEL" | "PURGE"; length: number };

/** Fewer subjects than this are read one request each, as a single start does. */
export const PREFETCH_MIN_SUBJECTS = 32;

/** Reading every subject of the filter pays when at least this share of them is wanted. */
const MAX_READ_PER_WANTED = 4;

/** How long the bulk read may take before the rest are left to the actors' own reads. */
const READ_DEADLINE_MS = 10_000;

/**
 * The last message of each of `subjects` (all under `filter`, e.g. `md.trades.>`) in `stream`:
 * the message, null (the stream holds none), or absent from the map (unknown: read it yourself).
 * Never throws.
 */
export async function lastPerSubject(js: JetStreamClient, stream: string, filter: string, subjects: string[], log?: Logger): Promise<Map<string, LastMsg | null>> {
  const out = new Map<string, LastMsg | null>();
  if (subjects.length < PREFETCH_MIN_SUBJECTS) return out;
  try {
    const jsm = await js.jetstreamManager(false);
    const info = await jsm.streams.info(stream, { subjects_filter: filter });
    const present = info.state.subjects ?? {};
    const count = info.state.num_subjects ?? 0;
    // The client pages through long subject lists; a list shorter than the count is not the whole.
    if (Object.keys(present).length < count) return out;
    const wanted = new Set<string>();
    for (const s of subjects) {
      if (present[s]) wanted.add(s);
      else out.set(s, null);
    }
    if (wanted.size === 0 || count > wanted.size * MAX_READ_PER_WANTED) return out;
    await readLastPerSubject(js, stream, filter, wanted, out);
  } catch (err) {
    log?.warn({ stream, filter, err: (err as Error).message }, "bulk read of last messages failed; each actor reads its own");
    for (const s of subjects) if (out.get(s) !== null) out.delete(s);
  }
  return out;
}

/** The last message of every subject under `filter`, through one ordered consumer; keeps those in `wanted`. */
async function readLastPerSubject(js: JetStreamClient, stream: string, filter: string, wanted: Set<string>, out: Map<string, LastMsg | null>): Promise<void> {
  const consumer = await js.consumers.get(stream, { filter_subjects: filter, deliver_policy: DeliverPolicy.LastPerSubject });
  const iter = await consumer.consume({ max_messages: 1024 });
  const timer = setTimeout(() => iter.stop(), READ_DEADLINE_MS);
  let left = wanted.size;
  try {
    for await (const m of iter) {
      if (wanted.has(m.subject)) {
        if (!out.has(m.subject)) left--;
        out.set(m.subject, { subject: m.subject, seq: m.seq, data: m.data, headers: m.headers });
      }
      // Pending is what the consumer has yet to deliver: none left means every subject's last message was seen.
      if (m.info.pending === 0 || left === 0) break;
    }
  } finally {
    clearTimeout(timer);
    iter.stop();
    void dropConsumer(consumer);
  }
}

/** The checkpoints of `keys` in the KV bucket `bucket` (see lastPerSubject for what the map says). */
export async function prefetchStates(js: JetStreamClient, bucket: string, keys: string[], log?: Logger): Promise<Map<string, StateEntry | null>> {
  const prefix = `$KV.${bucket}.`;
  const last = await lastPerSubject(js, `KV_${bucket}`, `${prefix}>`, keys.map((k) => prefix + k), log);
  const out = new Map<string, StateEntry | null>();
  for (const k of keys) {
    const m = last.get(prefix + k);
    if (m === undefined) continue;
    out.set(k, m && kvEntryOf(m));
  }
  return out;
}

/** A KV bucket's stream message as the entry the KV client would return (revision = stream sequence; a delete or purge marker by its header). */
export function kvEntryOf(m: LastMsg): StateEntry {
  const op = m.headers?.get("KV-Operation");
  return { value: m.data, revision: m.seq, operation: op === "DEL" || op === "PURGE" ? op : "PUT", length: m.data.length };
}

/**
 * Last-message reads that arrive together (the trades actors a pass starts, each asking for its
 * own output's tail) answered together: the calls of one turn of the event loop are collected,
 * and when there are enough of them, read with lastPerSubject; the rest with a request each.
 */
export class LastMsgLoader {
  private batch: { subject: string; resolve(m: LastMsg | null): void; reject(err: unknown): void }[] = [];

  constructor(
    private readonly js: JetStreamClient,
    private readonly stream: string,
    private readonly filter: string,
    private readonly log?: Logger,
  ) {}

  get(subject: string): Promise<LastMsg | null> {
    return new Promise((resolve, reject) => {
      if (this.batch.length === 0) setImmediate(() => void this.run());
      this.batch.push({ subject, resolve, reject });
    });
  }

  private async run(): Promise<void> {
    const batch = this.batch;
    this.batch = [];
    const known = await lastPerSubject(this.js, this.stream, this.filter, batch.map((b) => b.subject), this.log);
    const jsm = await this.js.jetstreamManager(false).catch(() => null);
    await Promise.all(batch.map(async (b) => {
      const m = known.get(b.subject);
      if (m !== undefined) return b.resolve(m);
      try {
        if (!jsm) throw new Error(`no JetStream manager for a read of ${b.subject}`);
        b.resolve(await jsm.streams.getMessage(this.stream, { last_by_subj: b.subject }).catch(nullIfNotFound));
      } catch (err) {
        b.reject(err);
      }
    }));
  }
}

/** A message get's "no message found" (API error 10037) as null; any other failure stays one. */
export function nullIfNotFound(err: unknown): null {
  if ((err as { code?: number }).code === 10037) return null;
  throw err;
}
