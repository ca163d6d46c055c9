// Runs exported models with onnxruntime-node. One intra-op thread: a prediction is one row, and
// threads would only add scheduling noise (many actors share a core).
//
// Two ways to run: `run` through the public async API, and `runSync`, which calls the native
// session of onnxruntime-node directly. The package's own async `run` only wraps that same
// synchronous native call in a setImmediate (dist/backend.js), so runSync computes the same
// thing; it lets the predictor run a model inside its (synchronous) receive, with no extra event
// loop turn per candle. The deep import is pinned by package-lock and guarded: if the binding
// is not where we expect it, runSync is unavailable and `OnnxModel.syncAvailable` says why.
import { createRequire } from "node:module";
import * as ort from "onnxruntime-node";

type NativeSession = {
  loadModel(buf: ArrayBufferLike, offset: number, length: number, opts: object): void;
  run(feeds: Record<string, ort.Tensor>, fetches: Record<string, null>, opts: object): Record<string, { data: Float32Array } | ort.Tensor>;
  dispose(): void;
};

let native: { make(): NativeSession } | null = null;
let nativeError: string | null = null;
try {
  const require = createRequire(import.meta.url);
  const b = require("onnxruntime-node/dist/binding.js") as { binding: { InferenceSession: new () => NativeSession }; initOrt(): void };
  native = {
    make: () => {
      b.initOrt();
      return new b.binding.InferenceSession();
    },
  };
} catch (err) {
  nativeError = `onnxruntime-node's native binding could not be loaded synchronously: ${(err as Error).message}`;
}

const SESSION_OPTIONS = { intraOpNumThreads: 1, interOpNumThreads: 1, graphOptimizationLevel: "all" as const };

export class OnnxModel {
  private constructor(private readonly session: ort.InferenceSession | null, private readonly nativeSession: NativeSession | null, readonly features: number) {}

  /** Null when runSync works here, else the reason. */
  static get syncUnavailable(): string | null {
    return nativeError;
  }

  static async load(bytes: Uint8Array, features: number): Promise<OnnxModel> {
    const session = await ort.InferenceSession.create(bytes, SESSION_OPTIONS);
    return new OnnxModel(session, null, features);
  }

  /** Loads for runSync (the native session, synchronously). */
  static loadSync(bytes: Uint8Array, features: number): OnnxModel {
    if (!native) throw new Error(nativeError ?? "no native onnxruntime binding");
    const s = native.make();
    s.loadModel(bytes.buffer, bytes.byteOffset, bytes.byteLength, { ...SESSION_OPTIONS, executionProviders: ["cpu"] });
    return new OnnxModel(null, s, features);
  }

  private tensor(rows: number[][]): ort.Tensor {
    const data = new Float32Array(rows.length * this.features);
    rows.forEach((r, i) => {
      if (r.length !== this.features) throw new RangeError(`row ${i} has ${r.length} features, the model expects ${this.features}`);
      data.set(r, i * this.features);
    });
    return new ort.Tensor("float32", data, [rows.length, this.features]);
  }

  /** Predicted log returns (float32 values widened to numbers), one per row. */
  async run(rows: number[][]): Promise<number[]> {
    if (!this.session) return this.runSync(rows);
    const out = await this.session.run({ x: this.tensor(rows) });
    return Array.from(out.y.data as Float32Array);
  }

  runSync(rows: number[][]): number[] {
    if (!this.nativeSession) throw new Error("this model was loaded with load(); use loadSync() for runSync()");
    const out = this.nativeSession.run({ x: this.tensor(rows) }, { y: null }, {});
    return Array.from(out.y.data as Float32Array);
  }

  async release(): Promise<void> {
    if (this.session) await this.session.release();
    this.nativeSession?.dispose();
  }
}
