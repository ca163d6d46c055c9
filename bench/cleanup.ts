// One place that knows everything the benchmark has started (nats-servers, worker processes, temp
// dirs, connections), so a failing or interrupted run leaves nothing behind: each scenario registers
// a teardown as soon as it owns a resource, and run.ts calls `cleanupAll()` in a finally block and
// on SIGINT/SIGTERM.
import type { ChildProcess } from "node:child_process";
import { rmSync } from "node:fs";

type Teardown = { what: string; fn: () => Promise<void> | void };

const stack: Teardown[] = [];

/** Registers a teardown; the returned function runs it now (once) and unregisters it. */
export function defer(what: string, fn: () => Promise<void> | void): () => Promise<void> {
  const t: Teardown = { what, fn };
  stack.push(t);
  let done: Promise<void> | null = null;
  return () => {
    done ??= (async () => {
      const i = stack.indexOf(t);
      if (i >= 0) stack.splice(i, 1);
      await t.fn();
    })();
    return done;
  };
}

/** Runs every registered teardown, newest first; a failing one is reported and the rest still run. */
export async function cleanupAll(): Promise<void> {
  while (stack.length > 0) {
    const t = stack.pop()!;
    try {
      await withTimeout(Promise.resolve().then(t.fn), 15_000, t.what);
    } catch (err) {
      process.stderr.write(`bench: cleanup of ${t.what} failed: ${(err as Error).message}\n`);
    }
  }
}

/** Removes a temp dir at cleanup. */
export function deferRemoveDir(dir: string): () => Promise<void> {
  return defer(`temp dir ${dir}`, () => rmSync(dir, { recursive: true, force: true }));
}

/** SIGKILLs a child process (by its own pid only) at cleanup, unless it already exited. */
export function deferKill(child: ChildProcess, what: string): () => Promise<void> {
  return defer(what, () => killAndWait(child, "SIGKILL"));
}

export async function killAndWait(child: ChildProcess, signal: NodeJS.Signals): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((r) => child.once("exit", () => r()));
  child.kill(signal);
  await withTimeout(exited, 10_000, `exit of pid ${child.pid}`);
}

export async function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let t: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    t = setTimeout(() => reject(new Error(`timed out after ${ms} ms waiting for ${what}`)), ms);
  });
  try {
    return await Promise.race([p, timeout]);
  } finally {
    clearTimeout(t);
  }
}
