// Inside the training worker: one request in, progress lines and one result (or error) out.
import { parentPort } from "node:worker_threads";
import { computeRun, type ComputeRequest } from "./compute-run.js";

parentPort!.once("message", (req: Omit<ComputeRequest, "progress">) => {
  try {
    const r = computeRun({ ...req, progress: (m) => parentPort!.postMessage({ progress: m }) });
    parentPort!.postMessage({ result: r }, r.status === "done" ? [r.onnx.buffer as ArrayBuffer] : []);
  } catch (err) {
    const e = err as Error & { code?: string };
    parentPort!.postMessage({ error: { message: e.message, code: e.code ?? null } });
  }
});
