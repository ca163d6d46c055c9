// Starts a nats-server with JetStream as a child process: the embedded server of `tickflow up` and
// the per-test-file server of the test suite. Port -1 lets the server pick a free port, which it
// reports in a ports file; restart() reuses that port and the store so crash tests can bring the
// "same" server back.
import { execFileSync, spawn, type ChildProcess } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { delimiter, join } from "node:path";
import { ErrorCode, TickflowError } from "../protocol/errors.js";

export const INSTALL_HINT = "sudo apt-get install -y nats-server   (Debian/Ubuntu; or see https://docs.nats.io/running-a-nats-service/introduction/installation)";

/** Finds the nats-server binary on PATH (and /usr/sbin, where Debian puts it but a user's PATH may not look). */
export function findNatsServer(): string | null {
  const dirs = [...(process.env.PATH ?? "").split(delimiter), "/usr/sbin", "/usr/local/sbin", "/usr/local/bin"];
  for (const d of dirs) {
    if (!d) continue;
    const p = join(d, "nats-server");
    if (existsSync(p)) return p;
  }
  return null;
}

export type NatsServerOptions = {
  /** JetStream store directory; a temp dir (removed on stop) when omitted. */
  storeDir?: string;
  /** 0 or omitted: a free port chosen by the server. */
  port?: number;
  host?: string;
  /** Extra lines for the server config file. */
  extraConfig?: string;
  /** Forward the server's log to this function (default: kept in memory for error messages). */
  onLog?: (line: string) => void;
  /**
   * Run the server in a process group of its own, out of reach of the terminal's Ctrl-C (which
   * signals the whole foreground group): for a server its owner stops itself, after its actors
   * have checkpointed through it. Tests leave it off, so an interrupted test run takes its
   * servers with it.
   */
  ownProcessGroup?: boolean;
};

/** In a store directory given to start(): the pid of the server running on it. */
const PID_FILE = "tickflow-nats.pid";

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === "EPERM";
  }
}

/** A process's command line, or null when it cannot be told (gone, or no /proc and no ps). */
function commandLine(pid: number): string | null {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, "utf8").replace(/\0/g, " ").trim();
  } catch {
    try {
      return execFileSync("ps", ["-p", String(pid), "-o", "command="], { encoding: "utf8", stdio: ["ignore", "pipe", "ignore"] }).trim() || null;
    } catch {
      return null;
    }
  }
}

/**
 * Stops the server an earlier process started on `storeDir` and never stopped (it was killed or
 * crashed, and its nats-server lived on), before another starts on the same store: two servers
 * writing one JetStream store is how a store gets corrupted. Only a live process whose command
 * line is a nats-server is stopped (a pid reused by something else is left alone). Its pid, or
 * null when there was none.
 */
async function stopLeftover(storeDir: string): Promise<number | null> {
  const file = join(storeDir, PID_FILE);
  let pid: number;
  try {
    pid = Number(readFileSync(file, "utf8").trim());
  } catch {
    return null;
  }
  const cmd = Number.isSafeInteger(pid) && pid > 0 && alive(pid) ? commandLine(pid) : null;
  if (!cmd || !/(^|\/)nats-server(\s|$)/.test(cmd)) {
    rmSync(file, { force: true });
    return null;
  }
  const signal = (sig: NodeJS.Signals) => {
    try {
      process.kill(pid, sig);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === "EPERM") {
        throw new TickflowError(ErrorCode.BadConfig, `a nats-server (pid ${pid}) that this user may not stop runs on the store ${storeDir}: stop it, or give tickflow another data directory (--data-dir)`);
      }
      // ESRCH: it ended by itself meanwhile
    }
  };
  signal("SIGTERM");
  for (let waited = 0; alive(pid); waited += 50) {
    if (waited === 10_000) signal("SIGKILL");
    await new Promise((r) => setTimeout(r, 50));
  }
  // Its config and ports file, in a temp dir of ours.
  const conf = /-c (\S*tickflow-nats-[^/\s]+)\/server\.conf/.exec(cmd);
  if (conf) rmSync(conf[1], { recursive: true, force: true });
  rmSync(file, { force: true });
  return pid;
}

export class NatsServer {
  private child: ChildProcess | null = null;
  /** The pid of a server left running on the given store by an earlier process, stopped before this one started. */
  leftoverStopped: number | null = null;
  private readonly ownsStore: boolean;
  readonly storeDir: string;
  private readonly workDir: string;
  port = 0;
  private logTail: string[] = [];

  private constructor(private readonly bin: string, private readonly opts: NatsServerOptions) {
    this.workDir = mkdtempSync(join(tmpdir(), "tickflow-nats-"));
    this.ownsStore = !opts.storeDir;
    this.storeDir = opts.storeDir ?? join(this.workDir, "store");
    mkdirSync(this.storeDir, { recursive: true });
    this.port = opts.port ?? 0;
  }

  static async start(opts: NatsServerOptions = {}): Promise<NatsServer> {
    const bin = findNatsServer();
    if (!bin) {
      throw new TickflowError(ErrorCode.NatsServerMissing, `nats-server was not found on PATH. Install it with:\n  ${INSTALL_HINT}\nor point Tickflow at a running server with --nats URL / NATS_URL.`);
    }
    const s = new NatsServer(bin, opts);
    try {
      if (opts.storeDir) s.leftoverStopped = await stopLeftover(s.storeDir);
      await s.launch();
    } catch (err) {
      await s.stop(); // never leave a half-started server (and its temp dir) behind
      throw err;
    }
    return s;
  }

  get url(): string {
    return `nats://${this.opts.host ?? "127.0.0.1"}:${this.port}`;
  }

  get pid(): number | undefined {
    return this.child?.pid;
  }

  private async launch(): Promise<void> {
    const portsDir = join(this.workDir, "ports");
    rmSync(portsDir, { recursive: true, force: true });
    mkdirSync(portsDir, { recursive: true });
    const conf = join(this.workDir, "server.conf");
    writeFileSync(conf, [
      `listen: "${this.opts.host ?? "127.0.0.1"}:${this.port || -1}"`,
      `ports_file_dir: "${portsDir}"`,
      `jetstream { store_dir: "${this.storeDir}" }`,
      this.opts.extraConfig ?? "",
    ].join("\n"));
    const child = spawn(this.bin, ["-c", conf], { stdio: ["ignore", "ignore", "pipe"], detached: !!this.opts.ownProcessGroup });
    this.child = child;
    if (this.opts.ownProcessGroup) {
      // Out of the terminal's reach, it must not outlive an owner that exits without stopping it
      // (a second Ctrl-C exits at once): its store is then as after a crash, which the next start recovers.
      const onOwnerExit = () => {
        if (child.exitCode === null && child.signalCode === null) child.kill("SIGTERM");
      };
      process.once("exit", onOwnerExit);
      child.once("exit", () => process.off("exit", onOwnerExit));
    }
    this.logTail = [];
    let ready = false;
    const readyP = new Promise<void>((resolve, reject) => {
      let buf = "";
      child.stderr!.setEncoding("utf8");
      child.stderr!.on("data", (chunk: string) => {
        buf += chunk;
        let i: number;
        while ((i = buf.indexOf("\n")) >= 0) {
          const line = buf.slice(0, i);
          buf = buf.slice(i + 1);
          this.logTail.push(line);
          if (this.logTail.length > 50) this.logTail.shift();
          this.opts.onLog?.(line);
          if (!ready && line.includes("Server is ready")) {
            ready = true;
            resolve();
          }
        }
      });
      child.once("exit", (code, sig) => {
        if (!ready) reject(new Error(`nats-server exited before it was ready (code ${code}, signal ${sig}):\n${this.logTail.join("\n")}`));
      });
      child.once("error", reject);
    });
    const timer = setTimeout(() => child.kill("SIGKILL"), 15_000);
    try {
      await readyP;
    } finally {
      clearTimeout(timer);
    }
    if (!this.ownsStore) writeFileSync(join(this.storeDir, PID_FILE), `${child.pid}\n`);
    // The ports file can land a moment after the "ready" line.
    for (let i = 0; !this.port; i++) {
      try {
        this.port = readPort(portsDir);
      } catch (err) {
        if (i >= 100) throw err;
        await new Promise((r) => setTimeout(r, 20));
      }
    }
  }

  /** Stops the server (SIGTERM, or SIGKILL to simulate a crash) and starts it again on the same port and store. */
  async restart(signal: NodeJS.Signals = "SIGTERM"): Promise<void> {
    await this.kill(signal);
    await this.launch();
  }

  /** Ends the process and waits for it; the store is kept. */
  async kill(signal: NodeJS.Signals = "SIGTERM"): Promise<void> {
    const c = this.child;
    if (!c || c.exitCode !== null || c.signalCode !== null) return;
    const exited = new Promise<void>((r) => c.once("exit", () => r()));
    c.kill(signal);
    const t = setTimeout(() => c.kill("SIGKILL"), 10_000);
    await exited;
    clearTimeout(t);
    this.child = null;
    if (!this.ownsStore) rmSync(join(this.storeDir, PID_FILE), { force: true });
  }

  /** Stops the server and removes its temp files (and the store, when it made it). */
  async stop(): Promise<void> {
    await this.kill("SIGTERM");
    rmSync(this.workDir, { recursive: true, force: true });
    if (this.ownsStore) rmSync(this.storeDir, { recursive: true, force: true });
  }

  recentLog(): string {
    return this.logTail.join("\n");
  }
}

function readPort(portsDir: string): number {
  const f = readdirSync(portsDir).find((n) => n.endsWith(".ports"));
  if (!f) throw new Error("nats-server did not write its ports file");
  const info = JSON.parse(readFileSync(join(portsDir, f), "utf8")) as { nats?: string[] };
  const u = info.nats?.[0];
  if (!u) throw new Error(`nats-server ports file has no client URL: ${JSON.stringify(info)}`);
  return Number(new URL(u).port);
}
