// Runs compute-run.ts in a worker thread: training is seconds to minutes of CPU, and on the
// actors' thread it would stall lease renewals, heartbeats and every other actor of the process.
// How many run at once is the trainer actor's turns (training-turns.ts: one per process, its data
// read included), not this module's.
import { Worker } from "node:worker_threads";
import { ErrorCode, TickflowError } from "../../protocol/errors.js";
import type { ComputedRun, ComputeRequest } from "./compute-run.js";

export function computeInWorker(req: ComputeRequest, signal?: AbortSignal): Promise<ComputedRun> {
  if (signal?.aborted) return Promise.reject(new Error("training aborted before it started"));
  const { progress, ...msg } = req;
  const w = new Worker(new URL("./train-worker.mjs", import.meta.url));
  let abort = () => {};
  return new Promise<ComputedRun>((resolve, reject) => {
    abort = () => {
      void w.terminate();
      reject(new Error("training aborted"));
    };
    signal?.addEventListener("abort", abort, { once: true });
    w.on("message", (m: { progress?: string; result?: ComputedRun; error?: { message: string; code: string | null } }) => {
      if (m.progress !== undefined) progress?.(m.progress);
      else if (m.result) resolve(m.result);
      else if (m.error) reject(m.error.code ? new TickflowError(m.error.code as ErrorCode, m.error.message) : new Error(m.error.message));
    });
    w.on("error", reject);
    w.on("exit", (code) => reject(new Error(`training worker exited with code ${code} before answering`)));
    w.postMessage(msg);
  }).finally(() => {
    signal?.removeEventListener("abort", abort);
    void w.terminate();
  });
}
