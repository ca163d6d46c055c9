// Live accuracy of a model against the persistence baseline, from prediction outcomes. Pure.

/** The outcome fields this needs (DESIGN.md §2: a prediction's fields plus what happened). */
export type OutcomeLike = {
  ts_ms: number;
  predicted_return: number;
  actual_return: number;
  abs_error: number;
  baseline_abs_error: number;
  model?: string;
  model_version?: string | number;
};

export type AccuracySummary = {
  n: number;
  from_ts_ms: number | null;
  to_ts_ms: number | null;
  /** Mean absolute price error of the model, and of "the price stays where it is". */
  mae: number | null;
  mae_persistence: number | null;
  /** 1 − mae / mae_persistence: above 0 the model beats persistence. */
  skill: number | null;
  /** Share of outcomes whose predicted return had the sign of the actual return (non-zero moves only). */
  direction_hit_rate: number | null;
  models: string[];
};

export function summarizeOutcomes(outcomes: OutcomeLike[]): AccuracySummary {
  let n = 0, err = 0, base = 0, dirN = 0, dirHit = 0;
  let from: number | null = null, to: number | null = null;
  const models = new Set<string>();
  for (const o of outcomes) {
    if (!Number.isFinite(o.abs_error) || !Number.isFinite(o.baseline_abs_error)) continue;
    n++;
    err += o.abs_error;
    base += o.baseline_abs_error;
    if (o.actual_return !== 0 && Number.isFinite(o.predicted_return)) {
      dirN++;
      if (Math.sign(o.predicted_return) === Math.sign(o.actual_return)) dirHit++;
    }
    from = from === null ? o.ts_ms : Math.min(from, o.ts_ms);
    to = to === null ? o.ts_ms : Math.max(to, o.ts_ms);
    if (o.model) models.add(o.model_version !== undefined ? `${o.model}@${o.model_version}` : o.model);
  }
  const mae = n ? err / n : null;
  const maeP = n ? base / n : null;
  return {
    n, from_ts_ms: from, to_ts_ms: to, mae, mae_persistence: maeP,
    skill: mae !== null && maeP ? 1 - mae / maeP : null,
    direction_hit_rate: dirN ? dirHit / dirN : null,
    models: [...models],
  };
}
