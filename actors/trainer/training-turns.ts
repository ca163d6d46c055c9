// Trainings take turns per process, each with its data read. A thousand pairs added together come
// due together (every `retrainEveryCandles` candles, the same minute for all of them), and each
// training first reads its window of candles (up to `maxTrainCandles`, 43,200 by default) into
// memory. The CPU part ran one at a time in a queue of its own, but every due trainer read its
// window first and held it while it waited there: a thousand windows at once. With turns (the one
// limit now, CPU included), one window is in memory at a time, and a trainer waiting for its turn
// holds nothing but its place.

export class TrainingTurns {
  private holding = 0;
  private readonly waiting: (() => void)[] = [];
  /** The most trainings that held a turn at once, and the most that waited for one. */
  peakHolding = 0;
  peakWaiting = 0;

  constructor(readonly size: number) {
    if (!(Number.isInteger(size) && size >= 1)) throw new RangeError(`training turns: size must be an integer ≥ 1 (got ${size})`);
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

/** This process's turns: one training (read and compute) at a time. */
export const trainingTurns = new TrainingTurns(1);
