// Real `tickflow` processes for end-to-end and fault tests: spawned from bin/tickflow.js exactly
// as a user runs it, killed with real signals.
import { spawn, type ChildProcess } from "node:child_process";
import { join } from "node:path";
import { ROOT } from "./data.js";

const BIN = join(ROOT, "bin", "tickflow.js");

/** Short leases so failover tests take seconds, not tens of seconds. */
export const FAST_LEASES: Record<string, string> = {
  TICKFLOW_LEASE_TTL_MS: "2000",
  TICKFLOW_LEASE_RENEW_MS: "500",
  TICKFLOW_HEARTBEAT_MS: "500",
  TICKFLOW_MEMBER_TTL_MS: "2000",
  LOG_LEVEL: process.env.TEST_LOG ?? "warn",
};

export type Proc = {
  child: ChildProcess;
  stdout: () => string;
  stderr: () => string;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  kill(signal?: NodeJS.Signals): Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
};

/** `group`: the process leads a process group of its own, as a command started from a terminal does (Ctrl-C signals the group). */
export function tickflow(args: string[], env: Record<string, string> = {}, opts: { group?: boolean } = {}): Proc {
  const child = spawn(process.execPath, [BIN, ...args], {
    cwd: ROOT,
    detached: !!opts.group,
    env: { ...process.env, ...env, NATS_URL: env.NATS_URL ?? "" },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let out = "";
  let err = "";
  child.stdout!.setEncoding("utf8").on("data", (d: string) => (out += d));
  child.stderr!.setEncoding("utf8").on("data", (d: string) => {
    err += d;
    if (process.env.TEST_LOG) process.stderr.write(d);
  });
  // The exit code, once stdout has been read to its end (or closed) too: "exit" can come before the
  // last of what the process wrote. A grandchild holding stdout open (none should) costs at most 10 s.
  const ended = new Promise<void>((resolve) => {
    child.stdout!.once("close", resolve);
    child.once("exit", () => setTimeout(resolve, 10_000).unref());
  });
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.once("exit", (code, signal) => void ended.then(() => resolve({ code, signal }))),
  );
  return {
    child,
    stdout: () => out,
    stderr: () => err,
    exited,
    async kill(signal: NodeJS.Signals = "SIGTERM") {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal);
      return exited;
    },
  };
}

/** Runs a tickflow command to completion; rejects with its stderr when it fails. */
export async function tickflowOk(args: string[], env: Record<string, string> = {}, timeoutMs = 120_000): Promise<string> {
  const p = tickflow(args, env);
  const t = setTimeout(() => p.child.kill("SIGKILL"), timeoutMs);
  const r = await p.exited;
  clearTimeout(t);
  if (r.code !== 0) throw new Error(`tickflow ${args.join(" ")} exited ${r.code ?? r.signal}:\n${p.stderr()}`);
  return p.stdout();
}

export function jsonLines(s: string): any[] {
  return s.split("\n").filter(Boolean).map((l) => JSON.parse(l));
}
