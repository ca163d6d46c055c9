// Supervision policy as data and its maths as pure functions (OTP intensity/period, exponential
// backoff), and the one restart loop that actor cells and pool workers both run.
import type { Logger } from "pino";

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

/** The part of a cell's status the restart loop keeps up to date. */
export type SupervisedStatus = { state: "starting" | "running" | "restarting" | "failed" | "stopped"; restarts: number; lastError: string | null };

/**
 * Runs `run` until `stopping()`: a crash is recorded against the policy and followed by a restart
 * after the backoff (cut short by the wake handed to `onWait`), or, past the budget, ends the loop
 * with status "failed". Resolves with the failure reason then, or null once stopping. A `run` that
 * returns while not stopping is simply run again (a cell for which that is an error throws).
 */
export async function superviseRuns(o: {
  st: SupervisedStatus;
  faults: number[];
  policy: RestartPolicy;
  stopping(): boolean;
  run(): Promise<void>;
  onWait(wake: (() => void) | null): void;
  log: Logger;
  key: string;
  /** What the cell is called in the log: "actor", "pool worker". */
  noun: string;
}): Promise<string | null> {
  const { st, policy: p } = o;
  while (!o.stopping()) {
    try {
      st.state = st.restarts > 0 ? "restarting" : "starting";
      await o.run();
    } catch (err) {
      if (o.stopping()) break;
      const e = err as Error;
      st.lastError = e.message;
      const verdict = recordFault(o.faults, Date.now(), p);
      st.restarts++;
      if (!verdict.restart) {
        st.state = "failed";
        const reason = `${verdict.inWindow} crashes within ${p.periodMs} ms; last: ${e.message}`;
        st.lastError = reason;
        o.log.error({ actor: o.key, err: e }, `${o.noun} failed: ${reason}`);
        return reason;
      }
      st.state = "restarting";
      o.log.warn({ actor: o.key, err: e.message, delayMs: verdict.delayMs }, `${o.noun} crashed; restarting`);
      const wait = restartWait(verdict.delayMs);
      o.onWait(wait.wake);
      await wait.done;
      o.onWait(null);
    }
  }
  return null;
}
