// Loaded models per process, keyed by artifact digest (an artifact never changes under its
// digest, so a cached session is always the right one). Actors share it: a champion used by
// a thousand predictors... is used by one, its own pair's; but a swap back and forth, or a
// restart of the actor in the same process, finds the model already loaded.
import type { ModelRef } from "./core.js";
import { OnnxModel } from "./onnx-runner.js";

/** Fetches an artifact's bytes, verified against its digest (the registry's object store in production). */
export type ArtifactFetch = (name: string, digest: string) => Promise<Uint8Array>;

export class ModelCache {
  private readonly loaded = new Map<string, OnnxModel>();
  private readonly loading = new Map<string, Promise<OnnxModel>>();

  constructor(private readonly fetch: ArtifactFetch) {}

  /** The model's prediction for one row: a number when loaded, a promise the first time. */
  run = (ref: ModelRef, x: number[]): number | Promise<number> => {
    const m = this.loaded.get(ref.digest!);
    if (m) return m.runSync([x])[0];
    return this.load(ref).then((mm) => mm.runSync([x])[0]);
  };

  private load(ref: ModelRef): Promise<OnnxModel> {
    const key = ref.digest!;
    let p = this.loading.get(key);
    if (!p) {
      p = this.fetch(ref.artifact!, key).then((bytes) => {
        const m = OnnxModel.loadSync(bytes, ref.features.length);
        this.loaded.set(key, m);
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
    for (const m of this.loaded.values()) await m.release();
    this.loaded.clear();
  }
}
