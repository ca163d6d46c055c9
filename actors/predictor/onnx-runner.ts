// Runs exported models with onnxruntime-node. Sessions are cached by artifact digest, so a model
// is loaded once per process however many times it is swapped in and out. One intra-op thread:
// a prediction is one row, threads would only add scheduling noise (and many actors share a core).
import * as ort from "onnxruntime-node";

export class OnnxModel {
  private constructor(private readonly session: ort.InferenceSession, readonly features: number) {}

  static async load(bytes: Uint8Array, features: number): Promise<OnnxModel> {
    const session = await ort.InferenceSession.create(bytes, { intraOpNumThreads: 1, interOpNumThreads: 1, graphOptimizationLevel: "all" });
    return new OnnxModel(session, features);
  }

  /** Predicted log returns (as float32 values widened to numbers), one per row. */
  async run(rows: number[][]): Promise<number[]> {
    const data = new Float32Array(rows.length * this.features);
    rows.forEach((r, i) => {
      if (r.length !== this.features) throw new RangeError(`row ${i} has ${r.length} features, the model expects ${this.features}`);
      data.set(r, i * this.features);
    });
    const out = await this.session.run({ x: new ort.Tensor("float32", data, [rows.length, this.features]) });
    return Array.from(out.y.data as Float32Array);
  }

  async release(): Promise<void> {
    await this.session.release();
  }
}
