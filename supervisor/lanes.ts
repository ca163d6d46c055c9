// Many round trips, a bounded number in flight: `n` lanes, each taking the next item when its last
// is done. Starting or stopping thousands of actors (leases, pairs) goes this way.

/** Runs `fn` over `items` with at most `n` in flight; rejects with the first failure. */
export async function inLanes<T>(items: T[], n: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  const lane = async () => {
    while (next < items.length) await fn(items[next++]);
  };
  await Promise.all(Array.from({ length: Math.min(n, items.length) }, lane));
}
