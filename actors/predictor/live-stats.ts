// Rolling live accuracy of one horizon: the last `window` outcomes' absolute errors (model and
// persistence) and directional hits, as plain data (checkpointed with the predictor).

export type LiveStats = {
  window: number;
  /** Rings, parallel: model |error|, persistence |error|, hit (1), miss (0) or no direction (-1). */
  err: number[];
  base: number[];
  hit: number[];
  /** Outcomes seen in total (also the ring's write position). */
  n: number;
};

export type LiveSummary = { live_n: number; live_mae: number; live_mae_persistence: number; live_mae_ratio: number | null; live_hit_rate: number | null };

export function createLiveStats(window: number): LiveStats {
  return { window, err: [], base: [], hit: [], n: 0 };
}

export function addOutcome(s: LiveStats, absError: number, baselineAbsError: number, actual: number, predicted: number): LiveSummary {
  const i = s.n % s.window;
  s.err[i] = absError;
  s.base[i] = baselineAbsError;
  s.hit[i] = actual === 0 || predicted === 0 ? -1 : actual > 0 === predicted > 0 ? 1 : 0;
  s.n++;
  return summarize(s);
}

export function summarize(s: LiveStats): LiveSummary {
  const k = s.err.length;
  let e = 0, b = 0, h = 0, hn = 0;
  for (let i = 0; i < k; i++) {
    e += s.err[i];
    b += s.base[i];
    if (s.hit[i] >= 0) {
      hn++;
      h += s.hit[i];
    }
  }
  return {
    live_n: k, live_mae: k ? e / k : 0, live_mae_persistence: k ? b / k : 0,
    live_mae_ratio: b > 0 ? e / b : null, live_hit_rate: hn ? h / hn : null,
  };
}
