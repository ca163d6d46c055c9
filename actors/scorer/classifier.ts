// The bundled headline classifier at inference: the committed vocabulary (vocab.json) turns text into
// TF-IDF features in TypeScript (the same code as training), and the committed ONNX model (linear
// layer + softmax) runs in onnxruntime-node. Needs nothing else: no network, no Ollama.
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import * as ort from "onnxruntime-node";
import { ErrorCode, TickflowError } from "../../protocol/errors.js";
import type { SignalLabel } from "../../protocol/news.js";
import { featurize, toDense, vocabularyFrom, type Vocabulary } from "./features.js";
import { ONNX_INPUT, ONNX_OUTPUT } from "./onnx-export.js";

export const MODEL_VERSION_PREFIX = "tfidf-softmax";
export const DEFAULT_MODEL_DIR = fileURLToPath(new URL("./model/", import.meta.url));

export type ClassProbs = { signal: SignalLabel; confidence: number; probs: Record<SignalLabel, number> };

export class HeadlineClassifier {
  private constructor(
    readonly version: string,
    private readonly classes: SignalLabel[],
    private readonly vocab: Vocabulary,
    private readonly session: ort.InferenceSession,
  ) {}

  static async load(dir = DEFAULT_MODEL_DIR): Promise<HeadlineClassifier> {
    let meta: { version: string; classes: SignalLabel[]; terms: string[]; idf: number[] };
    try {
      meta = JSON.parse(readFileSync(`${dir}/vocab.json`, "utf8"));
    } catch (err) {
      throw new TickflowError(ErrorCode.BadModel, `sentiment model: cannot read ${dir}/vocab.json (${(err as Error).message}); run scripts/train-sentiment.ts`, { cause: err });
    }
    const vocab = vocabularyFrom(meta.terms, meta.idf);
    let session: ort.InferenceSession;
    try {
      session = await ort.InferenceSession.create(readFileSync(`${dir}/model.onnx`), { intraOpNumThreads: 1, interOpNumThreads: 1 });
    } catch (err) {
      throw new TickflowError(ErrorCode.BadModel, `sentiment model: cannot load ${dir}/model.onnx (${(err as Error).message})`, { cause: err });
    }
    const c = new HeadlineClassifier(meta.version, meta.classes, vocab, session);
    // A vocabulary and a model of different trainings would give silent nonsense: check the width.
    const probe = await c.probs([""]).catch((err) => {
      throw new TickflowError(ErrorCode.BadModel, `sentiment model in ${dir}: model.onnx does not take ${vocab.idf.length} features as vocab.json says (${(err as Error).message})`, { cause: err });
    });
    if (probe[0].length !== meta.classes.length) throw new TickflowError(ErrorCode.BadModel, `sentiment model in ${dir}: ${probe[0].length} outputs, vocab.json names ${meta.classes.length} classes`);
    return c;
  }

  get dim(): number {
    return this.vocab.idf.length;
  }

  /** Raw class probabilities (model class order) for a batch of texts. */
  async probs(texts: string[]): Promise<Float32Array[]> {
    const rows = texts.map((t) => featurize(t, this.vocab));
    const input = new ort.Tensor("float32", toDense(rows, this.dim), [texts.length, this.dim]);
    const out = await this.session.run({ [ONNX_INPUT]: input });
    const p = out[ONNX_OUTPUT].data as Float32Array;
    const C = this.classes.length;
    return texts.map((_, i) => p.subarray(i * C, (i + 1) * C));
  }

  async classify(texts: string[]): Promise<ClassProbs[]> {
    const ps = await this.probs(texts);
    return ps.map((p) => {
      let best = 0;
      for (let c = 1; c < p.length; c++) if (p[c] > p[best]) best = c;
      const probs = Object.fromEntries(this.classes.map((c, i) => [c, p[i]])) as Record<SignalLabel, number>;
      return { signal: this.classes[best], confidence: p[best], probs };
    });
  }

  async close(): Promise<void> {
    await this.session.release();
  }
}
