// History of one subject by event time, read from JetStream without scanning the stream.
//
// Messages of one subject are in event-time order (each series is written by one actor, in
// order), so the first message at or after `from` is found by binary search over stream
// sequences with direct gets (`next_by_subj`): about log2(stream length) small requests, ~20 for
// a million messages. From there an ordered consumer reads forward at most `limit` messages.
import { DeliverPolicy, type JetStreamClient, type JetStreamManager, type StoredMsg } from "@nats-io/jetstream";
import { decode, decodeMsg, HDR_CONTENT_TYPE } from "../protocol/codec.js";
import { dropConsumer } from "../supervisor/nats.js";

export type HistoryQuery = {
  stream: string;
  subject: string;
  /** Event time of a decoded message (ms). */
  tsOf(data: unknown): number;
  /** Inclusive bounds in event time (ms). */
  from?: number;
  to?: number;
  limit: number;
  /**
   * Expected spacing of the series (a candle's timeframe): without `from`, the window is the
   * `limit` most recent steps up to `to` (or the newest message).
   */
  stepMs: number;
};

export type HistoryItem = { seq: number; data: unknown };

function decodeStored(m: StoredMsg): unknown {
  return decode(m.data, m.header?.get(HDR_CONTENT_TYPE) || null);
}

export async function readHistory(js: JetStreamClient, jsm: JetStreamManager, q: HistoryQuery): Promise<HistoryItem[]> {
  const last = await jsm.direct.getMessage(q.stream, { last_by_subj: q.subject }).catch(() => null);
  if (!last) return [];
  const lastTs = q.tsOf(decodeStored(last));
  const to = Math.min(q.to ?? Infinity, lastTs);
  const from = q.from ?? to - (q.limit - 1) * q.stepMs;
  if (from > to) return [];
  const start = await firstAtOrAfter(jsm, q, from, last.seq);
  if (!start) return [];
  const startTs = q.tsOf(decodeStored(start));
  if (startTs > to) return [];
  const out: HistoryItem[] = [{ seq: start.seq, data: decodeStored(start) }];
  if (q.limit === 1 || start.seq === last.seq) return out;
  const c = await js.consumers.get(q.stream, {
    filter_subjects: q.subject, deliver_policy: DeliverPolicy.StartSequence, opt_start_seq: start.seq + 1,
  });
  const iter = await c.consume({ max_messages: Math.min(1000, q.limit) });
  try {
    for await (const m of iter) {
      const data = decodeMsg(m);
      if (q.tsOf(data) > to) break;
      out.push({ seq: m.seq, data });
      if (out.length >= q.limit || m.seq >= last.seq || m.info.pending === 0) break;
    }
  } finally {
    iter.stop();
    void dropConsumer(c);
  }
  return out;
}

/** The first message on the subject whose event time is ≥ `from`, or null. */
async function firstAtOrAfter(jsm: JetStreamManager, q: HistoryQuery, from: number, lastSeq: number): Promise<StoredMsg | null> {
  const next = (seq: number) => jsm.direct.getMessage(q.stream, { next_by_subj: q.subject, seq }).catch(() => null);
  let lo = 1;
  let hi = lastSeq;
  let best: StoredMsg | null = null;
  // Invariant: every message on the subject before `lo` is older than `from`; `best` is the
  // earliest message seen so far that is not.
  while (lo <= hi) {
    const mid = lo + Math.floor((hi - lo) / 2);
    const m = await next(mid);
    if (!m || m.seq > hi) {
      hi = mid - 1;
      continue;
    }
    if (q.tsOf(decodeStored(m)) >= from) {
      best = m;
      hi = mid - 1;
    } else lo = m.seq + 1;
  }
  return best;
}
