// Live figure: what following many pairs costs in real time, where the whole-system part
// (system.ts) measures how fast a backlog is worked off. `tickflow up --replay FILE --speed 1`
// (the recorded trades at the pace they were recorded, every stage, the gateway, an embedded
// nats-server) over 3 and over 999 pairs of the same trades, so the trade rate is the same and
// only the number of pairs differs: a candle, indicators, a prediction and an outcome per pair and
// minute, and 6 actors per pair.
//
// Each run starts the command, waits until its actors start and its gateway answers, lets it settle
// (every pair subscribed, the first trades through), then measures a fixed window of wall time (at least two minute closes, when every pair's
// candles and everything downstream of them are made at once): CPU of the command and of its
// children (the nats-server and the replay process) from /proc, peak RSS, and the event-loop delay
// of the process the stages run in (its gateway's `/metrics`, which reports the delay since the
// previous scrape: one scrape at the start of the window, one at its end). Then SIGINT, as a
// user stops it; the store is reopened to count dead letters and the log is read for lost leases.
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { jetstreamManager, type JetStreamManager } from "@nats-io/jetstream";
import { connectNats } from "../supervisor/nats.js";
import { BTC_FILE } from "../test/harness/data.js";
import { defer } from "./cleanup.js";
import { procCpuSeconds } from "./cpu.js";
import { writeManyPairFile } from "./many-pairs-file.js";
import { freePort } from "./nats.js";
import { fixed, sleep } from "./stats.js";
import { deadLettersIn, peakRssMb, spawnUp } from "./system.js";

/** The same trades over few and over many pairs (999: the most the file builder names, C001…C999). */
export const LIVE_PAIRS = [3, 999] as const;
/** Two copies of the BTC/USDT recording: about 22 minutes at speed 1, longer than any window. */
const LIVE_TRADES = 39_808;
const START_TIMEOUT_MS = 120_000;
const STOP_TIMEOUT_MS = 60_000;

export type LiveRun = {
  pairs: number;
  windowSec: number;
  /** CPU over the window as a percentage of one core: the `up` process, its nats-server, its replay process. */
  cpuPct: { up: number; nats: number; replay: number; total: number };
  /** Messages written to TRADES over the window, per second: the trades (the feed's pace, the same at both sizes) and the watermarks of quiet pairs. */
  tradesStreamPerSec: number;
  /** Messages written to every stream and bucket over the window, per second. */
  messagesPerSec: number;
  peakRssMb: number;
  /** Event-loop delay of the stages' process over the window (monitorEventLoopDelay via prom-client). */
  lagP99Ms: number;
  lagMaxMs: number;
  exitCode: number | null;
  leasesLost: number;
  deadLetters: number;
};

export type LiveBench = { seconds: number; settleSec: number; runs: LiveRun[] };

/** Processes started by `pid` (any of its threads), read from /proc. */
function childrenOf(pid: number): number[] {
  const out: number[] = [];
  try {
    for (const t of readdirSync(`/proc/${pid}/task`)) {
      const list = readFileSync(`/proc/${pid}/task/${t}/children`, "utf8").trim();
      if (list) out.push(...list.split(/\s+/).map(Number));
    }
  } catch {
    // gone, or /proc without children lists: no children known
  }
  return out;
}

function commOf(pid: number): string {
  try {
    return readFileSync(`/proc/${pid}/comm`, "utf8").trim();
  } catch {
    return "";
  }
}

/** One value of a Prometheus text exposition, NaN when absent. */
export function metricValue(text: string, name: string): number {
  const m = new RegExp(`^${name} ([0-9.eE+-]+|NaN)$`, "m").exec(text);
  return m ? Number(m[1]) : NaN;
}

async function scrape(port: number): Promise<string> {
  const res = await fetch(`http://127.0.0.1:${port}/metrics`, { signal: AbortSignal.timeout(10_000) });
  if (!res.ok) throw new Error(`/metrics answered ${res.status}`);
  return res.text();
}

/** What the run's streams and buckets hold: every stream's last sequence (messages written so far), and TRADES'. */
async function written(jsm: JetStreamManager): Promise<{ trades: number; all: number }> {
  let trades = 0;
  let all = 0;
  for await (const si of jsm.streams.list()) {
    all += si.state.last_seq;
    if (si.config.name === "TRADES") trades = si.state.last_seq;
  }
  return { trades, all };
}

async function waitFor(what: string, ms: number, ok: () => boolean | Promise<boolean>): Promise<void> {
  const until = Date.now() + ms;
  while (!(await ok())) {
    if (Date.now() > until) throw new Error(`live bench: no ${what} within ${ms / 1000} s`);
    await sleep(250);
  }
}

async function runLive(file: string, pairs: number, seconds: number, settleSec: number): Promise<LiveRun> {
  const dir = mkdtempSync(join(tmpdir(), "tf-bench-live-"));
  const removeDir = defer("live bench data dir", () => rmSync(dir, { recursive: true, force: true }));
  try {
    const port = await freePort();
    const { child, logPath, kill } = spawnUp(dir, ["--replay", file, "--speed", "1", "--port", String(port)], "live bench up");
    let exitCode: number | null | undefined;
    const exited = new Promise<void>((resolve) => child.once("exit", (code) => ((exitCode = code), resolve())));
    try {
      const log = () => (existsSync(logPath) ? readFileSync(logPath, "utf8") : "");
      await waitFor("start (its actors starting and its gateway answering)", START_TIMEOUT_MS, async () => {
        if (exitCode !== undefined) throw new Error(`live bench: up exited ${exitCode} before it ran:\n${log().slice(-2000)}`);
        return /actors starting/.test(log()) && (await scrape(port).then(() => true, () => false));
      });
      await sleep(settleSec * 1000);
      const kids = childrenOf(child.pid!);
      const nats = kids.find((p) => commOf(p) === "nats-server");
      const replay = kids.find((p) => commOf(p) !== "nats-server");
      // The embedded server's URL, as `up` writes it next to its store.
      const urlFile = join(dir, "data", "nats.url");
      const url = existsSync(urlFile) ? readFileSync(urlFile, "utf8").trim() : "";
      if (!url) throw new Error(`live bench: up wrote no ${urlFile}:\n${log().slice(-2000)}`);
      const nc = await connectNats(url, "tickflow-bench-live");
      const closeNc = defer("live bench NATS connection", () => nc.close());
      const jsm = await jetstreamManager(nc);
      await scrape(port); // the window's event-loop delay starts here (each scrape resets it)
      const cpu0 = [procCpuSeconds(child.pid), procCpuSeconds(nats), procCpuSeconds(replay)];
      const w0 = await written(jsm);
      const t0 = performance.now();
      let peak = 0;
      const sampler = setInterval(() => (peak = Math.max(peak, peakRssMb(child.pid!))), 500);
      await sleep(seconds * 1000);
      clearInterval(sampler);
      const text = await scrape(port);
      const windowSec = (performance.now() - t0) / 1000;
      const cpu1 = [procCpuSeconds(child.pid), procCpuSeconds(nats), procCpuSeconds(replay)];
      const w1 = await written(jsm);
      await closeNc();
      peak = Math.max(peak, peakRssMb(child.pid!));
      const pct = (i: number) => (100 * (cpu1[i] - cpu0[i])) / windowSec;
      child.kill("SIGINT");
      await Promise.race([exited, sleep(STOP_TIMEOUT_MS).then(() => child.kill("SIGKILL"))]);
      await exited;
      const leasesLost = (log().match(/lease lost/g) ?? []).length;
      const deadLetters = await deadLettersIn(join(dir, "data", "nats")).catch(() => NaN);
      return {
        pairs, windowSec,
        cpuPct: { up: pct(0), nats: pct(1), replay: pct(2), total: pct(0) + pct(1) + pct(2) },
        tradesStreamPerSec: (w1.trades - w0.trades) / windowSec,
        messagesPerSec: (w1.all - w0.all) / windowSec,
        peakRssMb: Math.round(peak),
        lagP99Ms: metricValue(text, "tickflow_gateway_nodejs_eventloop_lag_p99_seconds") * 1000,
        lagMaxMs: metricValue(text, "tickflow_gateway_nodejs_eventloop_lag_max_seconds") * 1000,
        exitCode: exitCode ?? null, leasesLost, deadLetters,
      };
    } finally {
      await kill();
    }
  } finally {
    await removeDir();
  }
}

export async function liveBench(opts: { seconds?: number; settleSec?: number; log?: (s: string) => void } = {}): Promise<LiveBench> {
  const seconds = opts.seconds ?? 150;
  const settleSec = opts.settleSec ?? 20;
  const dir = mkdtempSync(join(tmpdir(), "tf-bench-live-files-"));
  const removeDir = defer("live bench files", () => rmSync(dir, { recursive: true, force: true }));
  try {
    const runs: LiveRun[] = [];
    for (const n of LIVE_PAIRS) {
      const file = join(dir, `live-${n}.jsonl.gz`);
      await writeManyPairFile({ pairs: n, trades: LIVE_TRADES, out: file, source: BTC_FILE, stretch: 1 });
      const run = await runLive(file, n, seconds, settleSec);
      runs.push(run);
      opts.log?.(`live ${n} pairs: ${fixed(run.cpuPct.total)} % of a core in all (up ${fixed(run.cpuPct.up)} %), ${Math.round(run.tradesStreamPerSec)} messages/s on TRADES, event-loop delay p99 ${fixed(run.lagP99Ms)} ms, peak ${run.peakRssMb} MB`);
    }
    return { seconds, settleSec, runs };
  } finally {
    await removeDir();
  }
}

export function formatLive(b: LiveBench): string[] {
  const [few, many] = b.runs;
  const lines = [
    `Live: \`tickflow up --replay FILE --speed 1\` (the recorded pace, every stage, the gateway), the same trades over ${b.runs.map((r) => r.pairs).join(" and ")} pairs`,
    `   CPU over ${b.seconds} s of wall time (from ${b.settleSec} s after start-up) as % of one core; event-loop delay of the stages' process over the same window`,
    "   pairs  TRADES/s  messages/s   up %  nats %  replay %  total %  loop p99  loop max  peak RSS  exit  leases lost  dead letters",
  ];
  for (const r of b.runs) {
    lines.push(
      `   ${String(r.pairs).padStart(5)}  ${fixed(r.tradesStreamPerSec).padStart(8)}  ${fixed(r.messagesPerSec).padStart(10)}  ${fixed(r.cpuPct.up).padStart(5)}  ${fixed(r.cpuPct.nats).padStart(6)}  ${fixed(r.cpuPct.replay).padStart(8)}  ${fixed(r.cpuPct.total).padStart(7)}  ${`${fixed(r.lagP99Ms)} ms`.padStart(8)}  ${`${fixed(r.lagMaxMs)} ms`.padStart(8)}  ${`${r.peakRssMb} MB`.padStart(8)}  ${String(r.exitCode).padStart(4)}  ${String(r.leasesLost).padStart(11)}  ${String(r.deadLetters).padStart(12)}`,
    );
  }
  if (few && many) lines.push(`   CPU of ${many.pairs} pairs ÷ CPU of ${few.pairs} pairs at the same trade rate: ${fixed(many.cpuPct.total / few.cpuPct.total)}`);
  return lines;
}
