// Training data from the streams: the pair's indicator records (md.indicators.<tf>.<pair>) in a
// time range, and its sentiment signals (md.sentiment.<pair>). Read with an ordered consumer
// from a start time, until the range ends or nothing is pending; bounded by a deadline.
import { DeliverPolicy, type JetStreamClient } from "@nats-io/jetstream";
import { decodeMsg } from "../../protocol/codec.js";
import { ErrorCode, TickflowError } from "../../protocol/errors.js";
import { IndicatorsCheck } from "../../protocol/messages.js";
import { subjects } from "../../protocol/subjects.js";
import type { FeatureInput, SentimentInput } from "../ml/mod.js";
import { dropConsumer } from "../../supervisor/nats.js";

export type StreamRange = { fromMs?: number; toMs?: number; deadlineMs: number };

async function readRange<T>(js: JetStreamClient, stream: string, subject: string, r: StreamRange, take: (data: unknown) => T | "stop" | null): Promise<T[]> {
  const opts = r.fromMs !== undefined
    ? { filter_subjects: subject, deliver_policy: DeliverPolicy.StartTime, opt_start_time: new Date(r.fromMs).toISOString() }
    : { filter_subjects: subject };
  const c = await js.consumers.get(stream, opts);
  const out: T[] = [];
  try {
    const info = await c.info();
    if (info.num_pending === 0) return out;
    const iter = await c.consume({ max_messages: 1000 });
    const timer = setTimeout(() => iter.stop(new TickflowError(ErrorCode.NotEnoughData, `reading ${subject} from ${stream}: not done after ${r.deadlineMs} ms (${out.length} messages read)`)), r.deadlineMs);
    try {
      for await (const m of iter) {
        const v = take(decodeMsg(m));
        if (v === "stop") break;
        if (v !== null) out.push(v);
        if (m.info.pending === 0) break;
      }
    } finally {
      clearTimeout(timer);
      iter.stop();
    }
    return out;
  } finally {
    void dropConsumer(c);
  }
}

export async function readIndicators(js: JetStreamClient, pair: string, tf: string, r: StreamRange): Promise<{ inputs: FeatureInput[]; skipped: number }> {
  let skipped = 0;
  const inputs = await readRange<FeatureInput>(js, "INDICATORS", subjects.indicators(tf, pair), r, (d) => {
    if (!IndicatorsCheck.check(d)) {
      skipped++;
      return null;
    }
    if (r.toMs !== undefined && d.window_end_ms > r.toMs) return "stop";
    // The consumer starts at a storage time, which is never before a record's event time: a safe
    // lower bound, so records from before the range are dropped here by their own time.
    if (r.fromMs !== undefined && d.window_end_ms <= r.fromMs) return null;
    return { window_start_ms: d.window_start_ms, window_end_ms: d.window_end_ms, close: d.close, volume: d.volume, values: d.values };
  });
  // The stream holds each window once, in order; a repeat (republished outside the dedup window) is dropped here.
  const dedup: FeatureInput[] = [];
  for (const x of inputs) if (!dedup.length || x.window_end_ms > dedup[dedup.length - 1].window_end_ms) dedup.push(x);
  return { inputs: dedup, skipped: skipped + inputs.length - dedup.length };
}

export async function readSentiment(js: JetStreamClient, pair: string, r: StreamRange): Promise<SentimentInput[]> {
  return readRange<SentimentInput>(js, "SENTIMENT", subjects.sentiment(pair), { ...r, fromMs: undefined }, (d) => {
    const s = d as { ts_ms?: unknown; score?: unknown };
    if (typeof s?.ts_ms !== "number" || typeof s.score !== "number") return null;
    if (r.toMs !== undefined && s.ts_ms > r.toMs) return "stop";
    return { ts_ms: s.ts_ms, score: s.score };
  });
}
