// Small numeric helpers for the report: figures are summarised by median (robust on a shared box
// where one run can be disturbed by a neighbour) and max (the worst case a user would notice).
import { check } from "../test/harness/nats.js";

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

/** The test suite's poller (test/harness/nats.ts), at the bench's finer default step of 20 ms. */
export const until = <T>(fn: () => Promise<T> | T, ms: number, what: string, everyMs = 20) => check(fn, ms, what, everyMs);
