// The loop of one polled source: fetch what is new since the cursor, publish it oldest first, one
// item at a time, and save the cursor after each item is stored; then wait for the next round.
// Failures back off (doubling, capped; a 429's Retry-After wins when longer); unusable answers and
// entries go to the dead-letter subject; only a bug (an unexpected throw) ends the loop, and then
// the runtime restarts the actor from its checkpoint.
import type { NewsItem } from "../../protocol/news.js";
import { advance, isNew, type Cursor } from "./cursor.js";
import { NewsApiError } from "./errors.js";
import { TransientHttpError, type HttpGet } from "./http.js";
import { toNewsItem, newsItemId } from "./parsed-item.js";
import type { PolledSource } from "./sources.js";

export type PollerIo = {
  get: HttpGet;
  /** Resolves when the item is stored (or deduplicated) by JetStream. */
  publish(item: NewsItem): Promise<void>;
  deadLetter(reason: string, raw: string): void;
  saveCursor(c: Cursor): Promise<void>;
  progress(p: { lastInputTs?: number; processed?: number; detail?: Record<string, unknown> }): void;
  warn(msg: string): void;
  sleep(ms: number, signal: AbortSignal): Promise<void>;
  signal: AbortSignal;
};

export type PollOptions = {
  intervalMs: number;
  maxBackoffMs: number;
  /** Pages on the first round (no cursor yet) and on later rounds. */
  firstPollPages: number;
  maxPages: number;
  /** Items older than the newest published minus this are not news any more. */
  toleranceMs: number;
};

export function backoffMs(failures: number, o: PollOptions): number {
  return Math.min(o.maxBackoffMs, o.intervalMs * 2 ** Math.max(0, failures - 1));
}

/** One round; returns the cursor after it. Throws what the loop sorts (transient, bad answer, bug). */
export async function pollOnce(src: PolledSource, cursor: Cursor, io: PollerIo, o: PollOptions): Promise<{ cursor: Cursor; published: number }> {
  const known = (nativeId: string, ts: number) => !isNew(cursor, newsItemId(src.name, nativeId), ts, o.toleranceMs);
  const round = await src.fetchNew(io.get, known, cursor.newestTs === null ? o.firstPollPages : o.maxPages);
  for (const b of round.bad) io.deadLetter(b.reason, b.raw);
  const seen = new Set<string>();
  const fresh: NewsItem[] = [];
  for (const p of round.items) {
    const item = toNewsItem(src.name, p);
    if (seen.has(item.id) || !isNew(cursor, item.id, item.ts_ms, o.toleranceMs)) continue;
    seen.add(item.id);
    fresh.push(item);
  }
  fresh.sort((a, b) => a.ts_ms - b.ts_ms || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  let published = 0;
  for (const item of fresh) {
    if (io.signal.aborted) break;
    await io.publish(item);
    cursor = advance(cursor, item.id, item.ts_ms);
    await io.saveCursor(cursor);
    published++;
    io.progress({ lastInputTs: item.ts_ms, processed: 1 });
  }
  return { cursor, published };
}

export async function runPollLoop(src: PolledSource, start: Cursor, io: PollerIo, o: PollOptions): Promise<void> {
  let cursor = start;
  let failures = 0;
  while (!io.signal.aborted) {
    let delay = o.intervalMs;
    try {
      cursor = (await pollOnce(src, cursor, io, o)).cursor;
      failures = 0;
    } catch (err) {
      if (io.signal.aborted) break;
      if (!(err instanceof NewsApiError)) throw err;
      failures++;
      delay = backoffMs(failures, o);
      if (err instanceof TransientHttpError) delay = Math.max(delay, Math.min(err.retryAfterMs ?? 0, o.maxBackoffMs));
      else io.deadLetter(err.message, err.raw ?? "");
      io.warn(`${err.message}; retry in ${delay} ms (failure ${failures} in a row)`);
    }
    io.progress({ detail: { failures, newestTs: cursor.newestTs } });
    await io.sleep(delay, io.signal);
  }
}
