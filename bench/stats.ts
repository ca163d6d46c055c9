// Small numeric helpers for the report: figures are summarised by median (robust on a shared box
// where one run can be disturbed by a neighbour) and max (the worst case a user would notice).

export function median(xs: number[]): number {
  if (xs.length === 0) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

export function max(xs: number[]): number {
  return xs.length === 0 ? NaN : Math.max(...xs);
}

/** 12345.6 → "12,346". */
export function int(x: number): string {
  return Number.isFinite(x) ? Math.round(x).toLocaleString("en-US") : String(x);
}

export function fixed(x: number, d = 2): string {
  return Number.isFinite(x) ? x.toFixed(d) : String(x);
}

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** Polls `fn` every `everyMs` until it is truthy or `ms` pass (then throws, naming `what`). */
export async function until<T>(fn: () => Promise<T> | T, ms: number, what: string, everyMs = 20): Promise<NonNullable<T>> {
  const deadline = Date.now() + ms;
  let last: unknown = null;
  for (;;) {
    try {
      const v = await fn();
      if (v) return v as NonNullable<T>;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline) {
      throw new Error(`timed out after ${ms} ms waiting for ${what}${last ? ` (last error: ${(last as Error).message})` : ""}`);
    }
    await sleep(everyMs);
  }
}
