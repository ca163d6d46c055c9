// The replay source: recorded headlines (../shared/data/news format) published in publication-time
// order with their timestamps kept, paced at `speed` × real time (or as fast as acks come, "max").
// Its cursor is the position in the ordered input plus a fingerprint of that input, so a restart
// resumes where it was and a different set of files starts over.
import { createHash } from "node:crypto";
import type { NewsItem } from "../../protocol/news.js";
import type { Cursor } from "./cursor.js";
import { toNewsItem } from "./parsed-item.js";
import type { RecordedHeadline } from "./recorded.js";

export const REPLAY_SOURCE = "replay";

export type ReplayCursor = Cursor & { position: number; fingerprint: string };

export type ReplayIo = {
  publishAsync(item: NewsItem): void;
  flush(): Promise<void>;
  saveCursor(c: ReplayCursor): Promise<void>;
  progress(p: { lastInputTs?: number; processed?: number; detail?: Record<string, unknown> }): void;
  sleep(ms: number, signal: AbortSignal): Promise<void>;
  signal: AbortSignal;
};

export function fingerprint(items: RecordedHeadline[]): string {
  const h = createHash("sha1");
  for (const it of items) h.update(`${it.nativeId}\n`);
  return h.digest("hex").slice(0, 16);
}

/** Items published between two cursor saves (each save follows a flush: all of them stored). */
const SAVE_EVERY = 100;

/** Publishes from the cursor to the end; returns the final cursor (or where it stopped on abort). */
export async function runReplay(items: RecordedHeadline[], start: Cursor | null, io: ReplayIo, speed: number | "max"): Promise<ReplayCursor> {
  const fp = fingerprint(items);
  let pos = start && (start as ReplayCursor).fingerprint === fp ? (start as ReplayCursor).position : 0;
  const cursorAt = (p: number): ReplayCursor => ({ newestTs: p > 0 ? items[p - 1].ts_ms : null, recent: [], position: p, fingerprint: fp });
  const wall0 = performance.now();
  const event0 = pos < items.length ? items[pos].ts_ms : 0;
  let unsaved = 0;
  while (pos < items.length && !io.signal.aborted) {
    const it = items[pos];
    if (speed !== "max") {
      const due = wall0 + (it.ts_ms - event0) / speed - performance.now();
      if (due > 0) {
        await io.flush();
        await io.saveCursor(cursorAt(pos));
        unsaved = 0;
        await io.sleep(due, io.signal);
        if (io.signal.aborted) break;
      }
    }
    io.publishAsync(toNewsItem(REPLAY_SOURCE, it));
    io.progress({ lastInputTs: it.ts_ms, processed: 1 });
    pos++;
    if (++unsaved >= SAVE_EVERY) {
      await io.flush();
      await io.saveCursor(cursorAt(pos));
      unsaved = 0;
    }
  }
  await io.flush();
  const end = cursorAt(pos);
  await io.saveCursor(end);
  io.progress({ detail: { position: pos, of: items.length, done: pos >= items.length } });
  return end;
}
