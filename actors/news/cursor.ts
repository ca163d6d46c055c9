// Where a poller stands: the newest publication time it has published and the ids of the last
// items it published. An item is new when its id is not among those and it is not older than the
// newest time minus a tolerance (feeds re-date and re-order items a little; very old items that
// reappear on page one are not news). Kept in the source actor's checkpoint after every item, so a
// restart neither re-publishes nor skips.

export type Cursor = {
  /** Newest ts_ms published, or null before the first item. */
  newestTs: number | null;
  /** Ids of the last items published, oldest first (bounded). */
  recent: string[];
  /** Source-specific position (the replay's index in its ordered input). */
  position?: number;
};

export const EMPTY_CURSOR: Cursor = { newestTs: null, recent: [] };
export const RECENT_IDS = 2000;

export function isNew(c: Cursor, id: string, ts: number, toleranceMs: number): boolean {
  if (c.recent.includes(id)) return false;
  return c.newestTs === null || ts >= c.newestTs - toleranceMs;
}

/** The cursor after publishing one item (a new object; the old one is not changed). */
export function advance(c: Cursor, id: string, ts: number): Cursor {
  const recent = c.recent.length >= RECENT_IDS ? c.recent.slice(c.recent.length - RECENT_IDS + 1) : c.recent.slice();
  recent.push(id);
  return { ...c, newestTs: c.newestTs === null ? ts : Math.max(c.newestTs, ts), recent };
}

export function isCursor(v: unknown): v is Cursor {
  const c = v as Cursor;
  return !!c && typeof c === "object" && (c.newestTs === null || typeof c.newestTs === "number") && Array.isArray(c.recent) && c.recent.every((x) => typeof x === "string");
}
