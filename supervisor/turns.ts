// Turns: at most `size` holders at once per process, the rest waiting in the order they asked.
// For work that must not all start at once when many actors want it together: trainings (their
// data read and compute), journal recoveries after a crash (a consumer each).

export class Turns {
  private holding = 0;
  private readonly waiting: (() => void)[] = [];
  /** The most that held a turn at once, and the most that waited for one. */
  peakHolding = 0;
  peakWaiting = 0;

  constructor(readonly size: number) {
    if (!(Number.isInteger(size) && size >= 1)) throw new RangeError(`turns: size must be an integer ≥ 1 (got ${size})`);
  }

  /** Waits for a turn; the function returned gives it back (once). Null if `signal` aborts first. */
  async take(signal?: AbortSignal): Promise<(() => void) | null> {
    while (this.holding >= this.size) {
      if (signal?.aborted) return null;
      let wake!: () => void;
      const turn = new Promise<void>((r) => (wake = r));
      this.waiting.push(wake);
      this.peakWaiting = Math.max(this.peakWaiting, this.waiting.length);
      const onAbort = () => {
        const i = this.waiting.indexOf(wake);
        if (i >= 0) this.waiting.splice(i, 1);
        wake();
      };
      signal?.addEventListener("abort", onAbort, { once: true });
      await turn;
      signal?.removeEventListener("abort", onAbort);
    }
    if (signal?.aborted) return null;
    this.holding++;
    this.peakHolding = Math.max(this.peakHolding, this.holding);
    let given = false;
    return () => {
      if (given) return;
      given = true;
      this.holding--;
      this.waiting.shift()?.();
    };
  }
}
