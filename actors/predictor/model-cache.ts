// Loaded models per process, keyed by artifact digest (an artifact never changes under its
// digest, so a cached session is always the right one). Actors share it: a champion used by
// a thousand predictors... is used by one, its own pair's; but a swap back and forth, or a
// restart of the actor in the same process, finds the model already loaded.
//
// A model nobody has used for `idleMs` is released. Each predictor runs its champion on every
// candle, so what goes idle is a champion that was replaced: with a thousand pairs retrained
// every day, keeping every champion ever loaded grew a predictor process by a thousand native
// sessions a day. An evicted model that is needed again is fetched and loaded again.
import type { ModelRef } from "./core.js";
import { OnnxModel } from "./onnx-runner.js";

/** Fetches an artifact's bytes, verified against its digest (the registry's object store in production). */
export type ArtifactFetch = (name: string, digest: string) => Promise<Uint8Array>;

export type ModelCacheOptions = {
  /** A model not used for this long is released (default 30 min). */
  idleMs?: number;
  /** The clock of uses (wall time; tests pass their own). */
  now?: () => number;
};

export const DEFAULT_MODEL_IDLE_MS = 30 * 60_000;

export class ModelCache {
  private readonly loaded = new Map<string, { model: OnnxModel; usedAt: number }>();
  private readonly loading = new Map<string, Promise<OnnxModel>>();
  private readonly idleMs: number;
  private readonly now: () => number;
  private sweptAt = 0;
  /** Models released for being idle, since the cache was made. */
  evicted = 0;

  constructor(private readonly fetch: ArtifactFetch, opts: ModelCacheOptions = {}) {
    this.idleMs = opts.idleMs ?? DEFAULT_MODEL_IDLE_MS;
    this.now = opts.now ?? Date.now;
  }

  /** The model's prediction for one row: a number when loaded, a promise the first time. */
  run = (ref: ModelRef, x: number[]): number | Promise<number> => {
    const now = this.now();
    this.sweep(now);
    const e = this.loaded.get(ref.digest!);
    if (e) {
      e.usedAt = now;
      return e.model.runSync([x])[0];
    }
    return this.load(ref).then((mm) => mm.runSync([x])[0]);
  };

  /** Releases the models idle for longer than idleMs; looks at most every tenth of it. */
  private sweep(now: number): void {
    if (now - this.sweptAt < this.idleMs / 10) return;
    this.sweptAt = now;
    for (const [digest, e] of this.loaded) {
      if (now - e.usedAt <= this.idleMs) continue;
      this.loaded.delete(digest);
      this.evicted++;
      // runSync is synchronous, so nothing is running on it now; a later use loads it again.
      e.model.release().catch(() => {});
    }
  }

  private load(ref: ModelRef): Promise<OnnxModel> {
    const key = ref.digest!;
    let p = this.loading.get(key);
    if (!p) {
      p = this.fetch(ref.artifact!, key).then((bytes) => {
        const m = OnnxModel.loadSync(bytes, ref.features.length);
        this.loaded.set(key, { model: m, usedAt: this.now() });
        return m;
      });
      this.loading.set(key, p);
      // A failed load is retried by the next use (the actor restarts), not remembered.
      p.catch(() => this.loading.delete(key)).finally(() => this.loading.delete(key));
    }
    return p;
  }

  get size(): number {
    return this.loaded.size;
  }

  async close(): Promise<void> {
    for (const e of this.loaded.values()) await e.model.release();
    this.loaded.clear();
  }
}
