// Periodic chores of many actors on one timer per period (DESIGN: timers per worker do not grow
// with the number of actors). A stream actor checks every few seconds whether it has applied input
// it has not checkpointed (an idle checkpoint); with a timer each, a worker following a thousand
// pairs kept six thousand.
//
// Jobs are spread over `SLOTS` phases of the period, each phase a tick of the one timer: every job
// still runs once per period, and the jobs added together (the actors a worker starts at once,
// which all go idle at the same minute's close) do not all run in the same turn of the event loop.

export const SLOTS = 8;

export class SharedTimer {
  private readonly slots: Set<() => void>[] = Array.from({ length: SLOTS }, () => new Set());
  private size = 0;
  private nextSlot = 0;
  private tickSlot = 0;
  private timer: NodeJS.Timeout | null = null;

  constructor(readonly periodMs: number) {}

  /** Runs `job` once per period until the returned function is called. A job that throws is skipped for that round. */
  add(job: () => void): () => void {
    const slot = this.slots[this.nextSlot];
    this.nextSlot = (this.nextSlot + 1) % SLOTS;
    slot.add(job);
    this.size++;
    this.timer ??= setInterval(() => this.tick(), Math.max(1, Math.floor(this.periodMs / SLOTS)));
    let removed = false;
    return () => {
      if (removed) return;
      removed = true;
      slot.delete(job);
      if (--this.size === 0 && this.timer) {
        clearInterval(this.timer);
        this.timer = null;
      }
    };
  }

  /** True while any job is registered (the timer exists only then). */
  active(): boolean {
    return this.timer !== null;
  }

  private tick(): void {
    const slot = this.slots[this.tickSlot];
    this.tickSlot = (this.tickSlot + 1) % SLOTS;
    for (const job of slot) {
      try {
        job();
      } catch {
        // a chore's own failure is its owner's to report; the others still run
      }
    }
  }
}

const timers = new Map<number, SharedTimer>();

/** The process's shared timer for `periodMs`. */
export function sharedTimer(periodMs: number): SharedTimer {
  let t = timers.get(periodMs);
  if (!t) timers.set(periodMs, (t = new SharedTimer(periodMs)));
  return t;
}
