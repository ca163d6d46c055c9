// The replay server of `tickflow up --replay`, in a process of its own with a small V8 heap.
//
// Why: in the worker's process, a long replay's garbage lived in the worker's large heap, and RSS
// grew with the file's length (472 MB after a million trades); the server's live data is small
// (a bounded read-ahead and the recent trades of each pair), so with a heap limit of its own a
// 5-million-trade replay stays under 200 MB (bench/replay-memory.ts). It also parses and sends on
// another core than the worker's event loop.
import { spawn, type ChildProcess } from "node:child_process";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import type { KrakenReplayOptions } from "./kraken-replay-server.js";

const MAIN = fileURLToPath(new URL("./replay-main.ts", import.meta.url));
// tsx's loader by absolute URL: `--import tsx` would be resolved from the user's working directory.
const TSX = import.meta.resolve("tsx");

export type ReplayProcess = {
  wsUrl: string;
  restUrl: string;
  pairs: string[];
  lastTradeIds: Record<string, number>;
  totals: Record<string, number>;
  /** Set once the server process has exited (with why); a replay that ends early is an error. */
  exited: Promise<string>;
  close(): Promise<void>;
};

export async function startReplayProcess(opts: KrakenReplayOptions & { heapMb?: number; startTimeoutMs?: number }): Promise<ReplayProcess> {
  const { heapMb = 160, startTimeoutMs = 120_000, ...server } = opts;
  const child: ChildProcess = spawn(process.execPath, [`--max-old-space-size=${heapMb}`, "--import", TSX, MAIN, JSON.stringify(server)], {
    stdio: ["pipe", "pipe", "inherit"],
  });
  const exited = new Promise<string>((resolve) => child.once("exit", (code, signal) => resolve(signal ? `signal ${signal}` : `code ${code}`)));
  const lines = createInterface({ input: child.stdout! })[Symbol.asyncIterator]();
  let timer: NodeJS.Timeout | undefined;
  const first = await Promise.race([
    lines.next(),
    exited.then((why) => Promise.reject(new Error(`the replay server exited (${why}) before it was listening`))),
    new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`the replay server was not listening after ${startTimeoutMs} ms (reading ${(server.files ?? []).join(", ")})`)), startTimeoutMs))),
  ]).finally(() => clearTimeout(timer)).catch((err) => {
    child.kill("SIGKILL");
    throw err;
  });
  // Its stdout ended without a line: it failed (and said why on stderr, which is ours).
  if (first.done) throw new Error(`the replay server exited (${await exited}) before it was listening (reading ${(server.files ?? []).join(", ")})`);
  const info = JSON.parse(first.value) as Omit<ReplayProcess, "close" | "exited">;
  return {
    ...info,
    exited,
    async close() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.stdin!.end(); // how it is told to stop (it ignores signals meant for the process group)
      const killer = setTimeout(() => child.kill("SIGKILL"), 5000);
      await exited;
      clearTimeout(killer);
    },
  };
}
