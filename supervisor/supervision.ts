// Supervision policy as data and its maths as pure functions (OTP intensity/period, exponential
// backoff). The actor cell only asks: "may I restart, and after how long?".

export type RestartPolicy = {
  initialBackoffMs: number;
  maxBackoffMs: number;
  /** More than this many crashes within `periodMs` marks the actor failed. */
  maxRestarts: number;
  periodMs: number;
};

/** Delay before the n-th consecutive restart (n >= 1): initial · 2^(n−1), capped. */
export function backoffDelay(n: number, initialMs: number, maxMs: number): number {
  if (n <= 1) return Math.min(initialMs, maxMs);
  const d = initialMs * 2 ** Math.min(n - 1, 30);
  return Math.min(d, maxMs);
}

/**
 * Records a crash at `now` in the sliding window of recent crashes (mutates `faults`) and says
 * whether the actor may restart and after what delay. Crashes older than the period are
 * forgotten, which is also what resets the backoff after a quiet spell.
 */
export function recordFault(faults: number[], now: number, p: RestartPolicy): { restart: boolean; delayMs: number; inWindow: number } {
  while (faults.length > 0 && faults[0] <= now - p.periodMs) faults.shift();
  faults.push(now);
  const inWindow = faults.length;
  if (inWindow > p.maxRestarts) return { restart: false, delayMs: 0, inWindow };
  return { restart: true, delayMs: backoffDelay(inWindow, p.initialBackoffMs, p.maxBackoffMs), inWindow };
}

/** The wait before a restart, cut short by `wake()` when the cell is told to stop meanwhile. */
export function restartWait(ms: number): { done: Promise<void>; wake(): void } {
  let wake = () => {};
  const done = new Promise<void>((resolve) => {
    const t = setTimeout(resolve, ms);
    wake = () => {
      clearTimeout(t);
      resolve();
    };
  });
  return { done, wake };
}
