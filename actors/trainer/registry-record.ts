// The model registry record of one (pair, horizon), as stored in KV `tf_models` under
// `<PAIR-TOKEN>.<h>` (JSON): every registered version, the champion alias, and the recorded runs.
// Pure data and pure transitions (promote, rollback, add a run), unit-testable without NATS.
import type { ForecastMetrics } from "../ml/mod.js";

/** Walk-forward metrics as recorded: the names (`mae`, `mae_persistence`, `mae_ratio`, `hit_rate`, `dm_pvalue`) and a few more. */
export type WfMetrics = {
  mae: number;
  mae_persistence: number;
  mae_ratio: number;
  hit_rate: number | null;
  hit_pvalue: number | null;
  dm_pvalue: number | null;
  rmse: number;
  rmse_persistence: number;
  n: number;
};

export function wfMetrics(m: ForecastMetrics): WfMetrics {
  return {
    mae: m.mae, mae_persistence: m.mae_persistence, mae_ratio: m.mae_ratio, hit_rate: m.hit_rate, hit_pvalue: m.hit_pvalue,
    dm_pvalue: m.dm_pvalue, rmse: m.rmse, rmse_persistence: m.rmse_persistence, n: m.n,
  };
}

/** What a run trained on: rows from `from_ms` to `to_ms` (candle ends), read from `source`. */
export type DataRange = { source: string; from_ms: number | null; to_ms: number | null; candles: number; rows: number; input_to_ms?: number | null; input_to_seq?: number | null };

export type ModelVersion = {
  version: number;
  name: string;
  params: unknown;
  features: string[];
  /** Object name in `tf_artifacts` and the SHA-256 of its bytes. */
  artifact: string;
  digest: string;
  metrics: WfMetrics;
  data: DataRange;
  run_id: string;
  code_version: string;
  gate: { promote: boolean; reasons: string[] };
};

export type Champion = {
  name: string;
  /** 0 for persistence (no model). */
  version: number;
  horizon: string;
  artifact: string | null;
  digest: string | null;
  features: string[];
  since_run: string | null;
  /** Why this champion is in force: "gate", "manual promote", "rollback", "no model has beaten persistence". */
  reason: string;
} & WfMetrics;

export type RunSummary = {
  run_id: string;
  started_at: string;
  duration_ms: number;
  trigger: string;
  status: "done" | "skipped" | "failed";
  message: string;
  data: DataRange;
  /** The best non-persistence candidate of the run and its walk-forward metrics. */
  best: string | null;
  /** The best candidate's settings for its final fit (chosen on all rows); candidates' `params` are per fold. */
  best_params?: unknown;
  version: number | null;
  promoted: boolean;
  candidates: ({ name: string; params: unknown } & WfMetrics)[];
  code_version: string;
};

export type RegistryRecord = {
  v: 1;
  pair: string;
  horizon: string;
  horizon_s: number;
  champion: Champion;
  /** Earlier champions' versions, newest last (what `rollback` returns to). */
  champion_history: number[];
  versions: ModelVersion[];
  /** Most recent runs, newest last (the full run is under `run.<key>.<run_id>`). */
  runs: RunSummary[];
};

/** Runs kept in the record; each run also has a key of its own. */
export const MAX_RUNS_IN_RECORD = 100;
/** Versions kept in the record (their artifacts stay in the object store). */
export const MAX_VERSIONS_IN_RECORD = 50;

export function persistenceChampion(horizon: string, metrics: WfMetrics | null, reason: string): Champion {
  const m = metrics ?? { mae: NaN, mae_persistence: NaN, mae_ratio: 1, hit_rate: null, hit_pvalue: null, dm_pvalue: null, rmse: NaN, rmse_persistence: NaN, n: 0 };
  return {
    name: "persistence", version: 0, horizon, artifact: null, digest: null, features: [], since_run: null, reason,
    ...m, mae: m.mae_persistence, rmse: m.rmse_persistence, mae_ratio: 1, hit_rate: null, hit_pvalue: null, dm_pvalue: null,
  };
}

export function emptyRecord(pair: string, horizon: string, horizonS: number): RegistryRecord {
  return { v: 1, pair, horizon, horizon_s: horizonS, champion: persistenceChampion(horizon, null, "no model has been trained"), champion_history: [], versions: [], runs: [] };
}

export function championOf(v: ModelVersion, horizon: string, reason: string): Champion {
  return { name: v.name, version: v.version, horizon, artifact: v.artifact, digest: v.digest, features: v.features, since_run: v.run_id, reason, ...v.metrics };
}

/** Makes `version` the champion (0 = persistence), remembering the previous one for rollback. */
export function promote(r: RegistryRecord, version: number, reason: string): RegistryRecord {
  if (r.champion.version === version) return r;
  let champion: Champion;
  if (version === 0) champion = persistenceChampion(r.horizon, r.runs.length ? lastPersistenceMetrics(r) : null, reason);
  else {
    const v = r.versions.find((x) => x.version === version);
    if (!v) throw new RangeError(`${r.pair} ${r.horizon}: no version ${version} (versions: ${r.versions.map((x) => x.version).join(", ") || "none"})`);
    champion = championOf(v, r.horizon, reason);
  }
  return { ...r, champion, champion_history: [...r.champion_history, r.champion.version] };
}

/** Back to the previous champion. */
export function rollback(r: RegistryRecord): RegistryRecord {
  const hist = [...r.champion_history];
  const prev = hist.pop();
  if (prev === undefined) throw new RangeError(`${r.pair} ${r.horizon}: no earlier champion to roll back to`);
  const next = promote({ ...r, champion_history: hist }, prev, "rollback");
  return { ...next, champion_history: hist };
}

export function addRun(r: RegistryRecord, run: RunSummary, version: ModelVersion | null): RegistryRecord {
  const versions = version ? [...r.versions, version].slice(-MAX_VERSIONS_IN_RECORD) : r.versions;
  return { ...r, versions, runs: [...r.runs, run].slice(-MAX_RUNS_IN_RECORD) };
}

function lastPersistenceMetrics(r: RegistryRecord): WfMetrics | null {
  for (let i = r.runs.length - 1; i >= 0; i--) {
    const p = r.runs[i].candidates.find((c) => c.name === "persistence");
    if (p) return p;
  }
  return null;
}
