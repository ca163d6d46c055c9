// Pairs figure: the same recorded trades dealt over 3, 100, 300 and 1,000 pairs, each run through
// one worker (trades → candles → indicators, leases, checkpoints) exactly as `tickflow up --once`
// runs it. What changes between rows is only how many actors share the work, so each row's rate as
// a ratio of the 3-pair rate says what the runtime's cost per actor does to throughput.
//
// Each row runs the worker in a child process of its own, so its RSS is the worker's alone (the
// replay server runs here, in the parent): peak RSS during the run, idle RSS once every actor has
// caught up, and RSS per actor as the slope of idle RSS over the number of actors.
import { spawn } from "node:child_process";
import { fileURLToPath } from "node:url";
import pino from "pino";
import { candlesActor } from "../actors/candles/actor.js";
import { indicatorsActor } from "../actors/indicators/actor.js";
import { lastPublishedTrade, tradesActor, TRADES_STAGE } from "../actors/trades/actor.js";
import { startKrakenReplayServer } from "../actors/trades/kraken-replay-server.js";
import { loadConfig } from "../supervisor/config.js";
import { addPairs } from "../supervisor/desired-pairs.js";
import { connectNats } from "../supervisor/nats.js";
import { startWorker } from "../supervisor/worker.js";
import { BTC_FILE, ETH_FILE, readTrades } from "../test/harness/data.js";
import { dealOverPairs } from "../test/harness/many-pairs.js";
import { defer } from "./cleanup.js";
import { cpuMeter } from "./cpu.js";
import { startNatsServer } from "./nats.js";

export const PAIR_COUNTS = [3, 100, 300, 1000];

export type PairsRow = {
  pairs: number;
  actors: number;
  trades: number;
  seconds: number;
  tradesPerSec: number;
  /** This row's rate over the 3-pair row's (each the median of its runs). */
  ratio: number;
  /** Each run's rate over the 3-pair rate of the same round. */
  runRatios: number[];
  /** The rate from the moment every actor runs to the end (start-up is allRunningSec, reported apart), and its ratio to the 3-pair row's. */
  runningTradesPerSec: number;
  runningRatio: number;
  /** Seconds from worker start until every actor runs. */
  allRunningSec: number;
  peakRssMb: number;
  idleRssMb: number;
  /** RSS before the worker started (connection, modules). */
  baseRssMb: number;
  natsConnections: number;
  leasesLost: number;
  restarts: number;
  deadLetters: number;
  /** Messages each stream holds at the end: what the run wrote besides the trades themselves. */
  streamMessages: Record<string, number>;
  /** CPU seconds over the run: the worker process and the nats-server (the replay server runs elsewhere). */
  workerCpuSec: number;
  natsCpuSec: number;
};

/** rows: per number of pairs, its median run (by seconds); leases lost, restarts and dead letters are the most of any run. */
export type PairsResult = { rows: PairsRow[]; runs: number; trades: number; kbPerIdleActor: number | null };

type ChildArgs = { natsPid?: number; nats: string; wsUrl: string; restUrl: string; pairs: string[]; endOfInput: Record<string, number>; trades: number };

const TIMEOUT_MS = 600_000;
const monotonicUs = () => Number(process.hrtime.bigint() / 1000n);

/** The recorded BTC/USDT and ETH/USDT trades merged in time order: one exchange-like feed. */
function recorded() {
  return [...readTrades(BTC_FILE), ...readTrades(ETH_FILE)].sort((a, b) => Date.parse(a.timestamp) - Date.parse(b.timestamp));
}

export async function pairsBench(opts: { counts?: number[]; runs?: number; log?: (s: string) => void } = {}): Promise<PairsResult> {
  const raw = recorded();
  const counts = opts.counts ?? PAIR_COUNTS;
  const runs = opts.runs ?? 1;
  // Runs are short (a few seconds) on a shared box, so a single run per size scatters. Sizes are
  // taken in turn, run after run (3, 100, 300, 1000, 3, 100, …), so a neighbour's burst hits every
  // size alike; each size reports its median run, and each run's ratio is against the 3-pair run
  // of the same round.
  const byCount = new Map<number, Omit<PairsRow, "ratio" | "runningRatio" | "runRatios">[]>(counts.map((n) => [n, []]));
  const dealt = new Map(counts.map((n) => [n, dealOverPairs(raw, n)]));
  for (let run = 0; run < runs; run++) {
    for (const n of counts) {
      const records = dealt.get(n)!;
      const { server, stop: stopServer } = await startNatsServer(`pairs ${n} nats-server`);
      const replay = await startKrakenReplayServer({ trades: records, host: "127.0.0.1", port: 0, speed: "max", startWhen: "all-subscribed", startGraceMs: 60_000 });
      const closeReplay = defer("pairs replay server", () => replay.close());
      try {
        const args: ChildArgs = { natsPid: server.pid, nats: server.url, wsUrl: replay.wsUrl, restUrl: replay.restUrl, pairs: replay.pairs, endOfInput: replay.lastTradeIds, trades: records.length };
        const r = await runChild(args);
        byCount.get(n)!.push(r);
        opts.log?.(`pairs ${n}${runs > 1 ? ` (run ${run + 1}/${runs})` : ""}: ${Math.round(r.tradesPerSec)} trades/s, all running after ${r.allRunningSec.toFixed(1)} s, peak ${r.peakRssMb} MB, idle ${r.idleRssMb} MB, ${r.natsConnections} NATS connections, ${r.leasesLost} leases lost`);
      } finally {
        await closeReplay();
        await stopServer();
      }
    }
  }
  const baseRuns = byCount.get(counts.includes(3) ? 3 : counts[0])!;
  const medianRun = <T extends { seconds: number }>(xs: T[]): T => [...xs].sort((a, b) => a.seconds - b.seconds)[Math.floor((xs.length - 1) / 2)];
  const base = medianRun(baseRuns);
  const rows: PairsRow[] = counts.map((n) => {
    const all = byCount.get(n)!;
    const m = medianRun(all);
    return {
      ...m,
      // Leases lost, restarts and dead letters: any run's count, not the median's.
      leasesLost: Math.max(...all.map((r) => r.leasesLost)),
      restarts: Math.max(...all.map((r) => r.restarts)),
      deadLetters: Math.max(...all.map((r) => r.deadLetters)),
      ratio: m.tradesPerSec / base.tradesPerSec,
      runningRatio: m.runningTradesPerSec / base.runningTradesPerSec,
      runRatios: all.map((r, i) => r.tradesPerSec / baseRuns[i].tradesPerSec),
    };
  });
  const first = rows[0];
  const last = rows[rows.length - 1];
  const kbPerIdleActor = rows.length > 1 && last.actors > first.actors ? ((last.idleRssMb - first.idleRssMb) * 1024) / (last.actors - first.actors) : null;
  return { rows, runs, trades: first?.trades ?? 0, kbPerIdleActor };
}

function runChild(args: ChildArgs): Promise<Omit<PairsRow, "ratio" | "runningRatio" | "runRatios">> {
  const me = fileURLToPath(import.meta.url);
  return new Promise((resolve, reject) => {
    // For reading a worker's costs: PAIRS_CPU_PROF=DIR profiles each worker (the window to pass to
    // bench/profile-summary.ts goes to stderr); PAIRS_NODE_FLAGS adds node/V8 flags (e.g.
    // "--log-deopt --logfile=/tmp/w.log"), which NODE_OPTIONS does not accept.
    const prof = process.env.PAIRS_CPU_PROF ? ["--cpu-prof", `--cpu-prof-dir=${process.env.PAIRS_CPU_PROF}`] : [];
    const child = spawn(process.execPath, [...prof, ...(process.env.PAIRS_NODE_FLAGS ?? "").split(" ").filter(Boolean), "--expose-gc", "--import", "tsx", me, "child", JSON.stringify(args)], { stdio: ["ignore", "pipe", "inherit"] });
    const kill = defer("pairs worker", () => {
      child.kill("SIGKILL");
    });
    let out = "";
    child.stdout.on("data", (d) => (out += d));
    const timer = setTimeout(() => child.kill("SIGKILL"), TIMEOUT_MS);
    child.on("exit", (code, signal) => {
      clearTimeout(timer);
      kill().catch(() => {});
      if (code !== 0) return reject(new Error(`pairs worker (${args.pairs.length} pairs) exited ${code ?? signal}`));
      try {
        resolve(JSON.parse(out.trim().split("\n").pop()!));
      } catch (err) {
        reject(new Error(`pairs worker printed no result: ${(err as Error).message}`));
      }
    });
  });
}

const mb = (b: number) => Math.round((b / 1048576) * 10) / 10;

/** The worker side: one process, one Supervisor, every stage, as `tickflow up --once`. */
async function child(a: ChildArgs): Promise<void> {
  const config = loadConfig({ env: {} });
  config.kraken.wsUrl = a.wsUrl;
  config.kraken.restUrl = a.restUrl;
  const log = pino({ level: process.env.LOG_LEVEL ?? "error" }, pino.destination(2));
  const nc = await connectNats(a.nats, "tickflow-bench-pairs");
  global.gc?.();
  const baseRss = process.memoryUsage().rss;
  let peak = baseRss;
  const sampler = setInterval(() => (peak = Math.max(peak, process.memoryUsage().rss)), 50);
  const t0 = performance.now();
  const windowStartUs = monotonicUs();
  const cpu = cpuMeter(a.natsPid);
  const worker = await startWorker({ nc, config, log, id: "bench-pairs", stages: [tradesActor({ endOfInput: a.endOfInput }), candlesActor, indicatorsActor()] });
  const { sup, js } = worker;
  await addPairs(js, a.pairs);
  while (!sup.runsAllItOwns()) await new Promise((r) => setTimeout(r, 20));
  const allRunningSec = (performance.now() - t0) / 1000;
  // End of input: every trades actor has stored its pair's end-of-stream watermark (its status
  // says so, as `up --once` learns it: asking the stream pair by pair was a request per pair
  // inside the measured time)…
  const eos = (pair: string) => sup.cell(TRADES_STAGE, pair)?.status().detail.eos === true;
  while (!a.pairs.every(eos)) await new Promise((r) => setTimeout(r, 20));
  // …and every stream actor has applied all of its input, with its outputs acked.
  await sup.settle(20);
  const seconds = (performance.now() - t0) / 1000;
  if (process.env.PAIRS_CPU_PROF) process.stderr.write(`pairs ${a.pairs.length}: profile window ${windowStartUs}-${monotonicUs()}\n`);
  const used = cpu();
  clearInterval(sampler);
  for (const pair of a.pairs) if (!(await lastPublishedTrade(js, pair)).eos) throw new Error(`${pair}: its trades actor reported the end of input, but the stream holds no end-of-stream watermark`);
  const status = sup.status();
  const published = status.filter((s) => s.stage === TRADES_STAGE).reduce((n, s) => n + s.processed, 0);
  if (published !== a.trades) throw new Error(`the trades actors published ${published} trades, the replay had ${a.trades}`);
  const jsm = await js.jetstreamManager();
  const streamMessages: Record<string, number> = {};
  for (const name of ["TRADES", "CANDLES", "INDICATORS", "DLQ"]) streamMessages[name] = (await jsm.streams.info(name)).state.messages;
  // KV buckets: writes over the run (their stream's last sequence), not the keys they hold.
  for (const name of ["KV_tf_state", "KV_tf_latest", "KV_tf_leases"]) streamMessages[name] = (await jsm.streams.info(name)).state.last_seq;
  const deadLetters = streamMessages.DLQ;
  await new Promise((r) => setTimeout(r, 2000));
  global.gc?.();
  const idleRss = process.memoryUsage().rss;
  const row: Omit<PairsRow, "ratio" | "runningRatio" | "runRatios"> = {
    pairs: a.pairs.length, actors: status.length, trades: a.trades, seconds, tradesPerSec: a.trades / seconds, allRunningSec,
    // The replay server holds its trades until every followed pair has subscribed, so no trade moves before every trades actor runs.
    runningTradesPerSec: a.trades / (seconds - allRunningSec),
    peakRssMb: mb(peak), idleRssMb: mb(idleRss), baseRssMb: mb(baseRss),
    natsConnections: 1 + sup.publishConnections(), leasesLost: sup.leasesLost,
    restarts: status.reduce((n, s) => n + s.restarts, 0), deadLetters, streamMessages,
    workerCpuSec: used.nodeCpuSeconds, natsCpuSec: used.serverCpuSeconds,
  };
  await worker.stop();
  await nc.drain().catch(() => {});
  process.stdout.write(JSON.stringify(row) + "\n");
}

if (process.argv[2] === "child") {
  child(JSON.parse(process.argv[3])).then(() => process.exit(0), (err) => {
    process.stderr.write(`pairs worker: ${(err as Error).stack ?? err}\n`);
    process.exit(1);
  });
}
