// Whole-system figure: the scale issue's own check, with its stopwatch. `tickflow up --replay FILE
// --speed max --once` run exactly as a user runs it (a child process, its embedded nats-server and
// replay process, every stage), on many-pair files made from the recorded trades
// (many-pairs-file.ts): the same trades over 3 and over 300 pairs, and the 300-pair rate as a
// ratio of the 3-pair rate. Wall time is the command's, start-up included, as the user waits it.
//
// Why three files: the ratio depends on the file. The 3-pair time hardly depends on how long the
// trades last; the 300-pair time does, because every pair's every minute is a candle, indicators,
// a prediction and an outcome whether it traded or not. So besides a file made from each recording
// there is the BTC one stretched four times in time (a market four times quieter).
//
// After each run the store is opened again with a nats-server of the bench's own to count the
// dead letters; the lease-lost count is read from the command's log. Files are taken in turn
// within a round and sizes in turn within a file, so a neighbour's burst hits both sizes alike.
import { spawn, type ChildProcess } from "node:child_process";
import { closeSync, existsSync, mkdtempSync, openSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { basename, join } from "node:path";
import { fileURLToPath } from "node:url";
import { jetstreamManager } from "@nats-io/jetstream";
import { connectNats } from "../supervisor/nats.js";
import { NatsServer } from "../supervisor/nats-server.js";
import { BTC_FILE, ETH_FILE } from "../test/harness/data.js";
import { defer } from "./cleanup.js";
import { writeManyPairFile } from "./many-pairs-file.js";
import { freePort } from "./nats.js";
import { fixed, median } from "./stats.js";

const BIN = fileURLToPath(new URL("../bin/tickflow.js", import.meta.url));
/** The issue's check: 39,808 trades (two copies of the BTC/USDT recording). */
export const SYSTEM_TRADES = 39_808;
export const SYSTEM_PAIRS = [3, 300] as const;
const RUN_TIMEOUT_MS = 600_000;

export type SystemFile = { name: string; source: string; stretch: number };
export const SYSTEM_FILES: SystemFile[] = [
  { name: "BTC-made", source: BTC_FILE, stretch: 1 },
  { name: "ETH-made", source: ETH_FILE, stretch: 1 },
  { name: "BTC-made, 4× sparser", source: BTC_FILE, stretch: 4 },
];

/** A recording of the user's own (Kraken v2 trade records), checked before any run starts. */
export function systemFileOf(path: string): SystemFile {
  if (!existsSync(path)) throw new Error(`--source: no such file: ${path}`);
  if (!/\.jsonl(\.gz)?$/.test(path)) throw new Error(`--source: expected Kraken v2 trade records as .jsonl or .jsonl.gz (got ${path})`);
  return { name: basename(path).replace(/\.jsonl(\.gz)?$/, ""), source: path, stretch: 1 };
}

export type SystemRun = { seconds: number; exitCode: number | null; leasesLost: number; deadLetters: number; peakRssMb: number };

export type SystemRow = {
  file: string;
  /** Median wall seconds per number of pairs, in SYSTEM_PAIRS order. */
  seconds: number[];
  /** 300-pair rate over the 3-pair rate, of the medians (same trades, so the inverse ratio of the times). */
  ratio: number;
  /** Each round's ratio. */
  roundRatios: number[];
  /** Worst over every run of the file: a run that did not exit 0, leases lost, dead letters. */
  failedRuns: number;
  leasesLost: number;
  deadLetters: number;
  /** Peak RSS of the `up` process (sampled), median per number of pairs. */
  peakRssMb: number[];
};

export type SystemBench = { trades: number; rounds: number; rows: SystemRow[] };

/** Peak RSS so far of a running process (VmHWM), in MB; 0 once it is gone. */
export function peakRssMb(pid: number): number {
  try {
    const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
    return m ? Number(m[1]) / 1024 : 0;
  } catch {
    return 0;
  }
}

/** Dead letters the run left in its store: the store opened by a server of our own, DLQ's message count. */
export async function deadLettersIn(storeDir: string): Promise<number> {
  const server = await NatsServer.start({ storeDir, port: await freePort(), host: "127.0.0.1" });
  try {
    const nc = await connectNats(server.url, "tickflow-bench-system");
    try {
      return (await (await jetstreamManager(nc)).streams.info("DLQ")).state.messages;
    } finally {
      await nc.close();
    }
  } finally {
    await server.stop();
  }
}

/**
 * `tickflow up ARGS --data-dir DIR/data` as a user runs it: the embedded nats-server (no NATS_URL)
 * and no sink (no DATABASE_URL), so every run measures the same stages whatever the shell running
 * the bench has set. The log goes to DIR/up.log; `kill` (also run by the bench's cleanup) SIGKILLs it.
 */
export function spawnUp(dir: string, args: string[], what: string): { child: ChildProcess; logPath: string; kill: () => Promise<void> } {
  const logPath = join(dir, "up.log");
  const fd = openSync(logPath, "w");
  const env = { ...process.env };
  delete env.NATS_URL;
  delete env.DATABASE_URL;
  const child = spawn(process.execPath, [BIN, "up", ...args, "--data-dir", join(dir, "data")], { env, stdio: ["ignore", fd, fd] });
  closeSync(fd);
  const kill = defer(what, () => {
    child.kill("SIGKILL");
  });
  return { child, logPath, kill };
}

/** One `up --once` of `file` in a data dir of its own; the log goes to a file beside the store. */
async function runUp(file: string): Promise<SystemRun> {
  const dir = mkdtempSync(join(tmpdir(), "tf-bench-system-"));
  const removeDir = defer("system bench data dir", () => rmSync(dir, { recursive: true, force: true }));
  try {
    const t0 = performance.now();
    const { child, logPath, kill } = spawnUp(dir, ["--replay", file, "--speed", "max", "--once"], "system bench up");
    let peak = 0;
    const sampler = setInterval(() => (peak = Math.max(peak, peakRssMb(child.pid!))), 100);
    const timer = setTimeout(() => child.kill("SIGKILL"), RUN_TIMEOUT_MS);
    const exitCode = await new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));
    const seconds = (performance.now() - t0) / 1000;
    clearInterval(sampler);
    clearTimeout(timer);
    await kill();
    const log = readFileSync(logPath, "utf8");
    const leasesLost = (log.match(/lease lost/g) ?? []).length;
    // A run that failed before its streams existed has none to count: NaN, and the exit code says why.
    const deadLetters = await deadLettersIn(join(dir, "data", "nats")).catch((err) => {
      if (exitCode === 0) throw err;
      return NaN;
    });
    return { seconds, exitCode, leasesLost, deadLetters, peakRssMb: Math.round(peak) };
  } finally {
    await removeDir();
  }
}

export async function systemBench(opts: { rounds?: number; files?: SystemFile[]; log?: (s: string) => void } = {}): Promise<SystemBench> {
  const rounds = opts.rounds ?? 3;
  const files = opts.files ?? SYSTEM_FILES;
  const dir = mkdtempSync(join(tmpdir(), "tf-bench-system-files-"));
  const removeDir = defer("system bench files", () => rmSync(dir, { recursive: true, force: true }));
  try {
    const paths = new Map<string, string>();
    for (const [i, f] of files.entries()) {
      for (const n of SYSTEM_PAIRS) {
        const out = join(dir, `f${i}-${n}.jsonl.gz`);
        await writeManyPairFile({ pairs: n, trades: SYSTEM_TRADES, out, source: f.source, stretch: f.stretch });
        paths.set(`${i}/${n}`, out);
      }
    }
    const runs = new Map<string, SystemRun[]>();
    for (let r = 0; r < rounds; r++) {
      for (const [i, f] of files.entries()) {
        for (const n of SYSTEM_PAIRS) {
          const run = await runUp(paths.get(`${i}/${n}`)!);
          runs.set(`${i}/${n}`, [...(runs.get(`${i}/${n}`) ?? []), run]);
          opts.log?.(`system ${f.name}, ${n} pairs (round ${r + 1}/${rounds}): ${fixed(run.seconds)} s, exit ${run.exitCode}, ${run.leasesLost} leases lost, ${run.deadLetters} dead letters, peak ${run.peakRssMb} MB`);
        }
      }
    }
    const rows = files.map((f, i): SystemRow => {
      const per = SYSTEM_PAIRS.map((n) => runs.get(`${i}/${n}`)!);
      const all = per.flat();
      const seconds = per.map((rs) => median(rs.map((x) => x.seconds)));
      return {
        file: f.name,
        seconds,
        ratio: seconds[0] / seconds[1],
        roundRatios: per[0].map((small, k) => small.seconds / per[1][k].seconds),
        failedRuns: all.filter((x) => x.exitCode !== 0).length,
        leasesLost: Math.max(...all.map((x) => x.leasesLost)),
        deadLetters: Math.max(...all.map((x) => x.deadLetters)),
        peakRssMb: per.map((rs) => median(rs.map((x) => x.peakRssMb))),
      };
    });
    return { trades: SYSTEM_TRADES, rounds, rows };
  } finally {
    await removeDir();
  }
}

export function formatSystem(s: SystemBench): string[] {
  const [small, big] = SYSTEM_PAIRS;
  const lines = [
    `Whole system: \`tickflow up --replay FILE --speed max --once\` (every stage, embedded nats-server), ${s.trades.toLocaleString("en-US")} trades over ${small} and over ${big} pairs`,
    `   wall time of the command, start-up included; ${s.rounds} round(s), files and sizes in turn; medians; ratio = ${big}-pair rate ÷ ${small}-pair rate (goal of the scale issue's check: ≥ 0.5)`,
    `   file                    ${`${small} pairs`.padStart(9)} ${`${big} pairs`.padStart(10)}  ratio  rounds              failed  leases lost  dead letters  peak RSS (${small} · ${big})`,
  ];
  for (const r of s.rows) {
    lines.push(
      `   ${r.file.padEnd(23)} ${`${fixed(r.seconds[0])} s`.padStart(9)} ${`${fixed(r.seconds[1])} s`.padStart(10)}  ${fixed(r.ratio).padStart(5)}  ${r.roundRatios.map((x) => fixed(x)).join(" · ").padEnd(18)}  ${String(r.failedRuns).padStart(6)}  ${String(r.leasesLost).padStart(11)}  ${String(r.deadLetters).padStart(12)}  ${r.peakRssMb[0]} · ${r.peakRssMb[1]} MB`,
    );
  }
  return lines;
}
