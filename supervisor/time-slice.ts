// Time slices for the actors of a process. A stream actor takes input that is already queued without
// waiting (actor-cell.ts), so a burst of input for many actors ran as one unbroken chain of
// microtasks, and nothing else in the process ran until it was done: not the gateway's requests,
// not timers (lease renewals, idle checkpoints, the event-loop-delay probe). At 1,000 pairs in real
// time, each minute's close (every pair's candle, indicators, prediction and outcome at once) held
// the event loop for up to 0.45 s. Now an actor checks before each input whether the slice it runs
// in is used up (SLICE_MS of work since the event loop last turned); if so it waits for the loop's
// next check phase, after timers and I/O have had their turn, and checks again: the actors that
// waited go on together in a new slice, and those it does not hold wait for the next. Input readers
// and the gateway's KV mirror check too: they hand out whole fetched batches the same way.
//
// Only in a process that serves requests (the gateway turns slices on when it listens). Slices cost
// a backlog throughput: a 300-pair `up --once` of the four-times-sparser file took a median 15.3 s
// with them against 13.5 s without (twelve runs of each, taken in turn; why was not found). A
// process that serves no one (`up --once`, a `run` worker, whose health probes wait seconds) has
// nobody to give a turn to, so it works without them.
export const SLICE_MS = 10;

let enabled = false;
/** Slices from now on, in this process: called by the gateway once it listens. */
export function enableTimeSlices(): void {
  enabled = true;
}

let generation = 0;
/** The generation of the slice now running; 0 when none has started since the loop last turned. */
let current = 0;
let startedAt = 0;
let turn: Promise<void> | null = null;

/**
 * Whether the slice now running is used up. The first call after the event loop turned starts a
 * new slice, which ends at the loop's next check phase at the latest.
 */
export function sliceUsedUp(): boolean {
  if (!enabled) return false;
  const now = performance.now();
  if (current === 0) {
    const g = ++generation;
    current = g;
    startedAt = now;
    setImmediate(() => {
      if (current === g) current = 0;
    });
    return false;
  }
  return now - startedAt >= SLICE_MS;
}

/** Resolves in the event loop's next check phase (one promise for every actor waiting). */
export function nextTurn(): Promise<void> {
  return (turn ??= new Promise<void>((resolve) =>
    setImmediate(() => {
      turn = null;
      current = 0;
      resolve();
    }),
  ));
}
