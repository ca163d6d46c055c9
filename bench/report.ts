// The bench report: one JSON document (bench/results/latest.json) and its compact text form. Every
// rate is shown next to the raw-publish reference measured in the same run, because absolute
// figures from a shared 2-core box say little on their own.
import type { FailoverResult } from "./failover.js";
import type { PairsResult, PairsRow } from "./pairs.js";
import { formatJoined, type JoinedResult } from "./joined.js";
import type { MachineInfo } from "./machine.js";
import type { PipelineResult } from "./pipeline.js";
import type { RawResult } from "./raw-publish.js";
import { fixed, int, median } from "./stats.js";

/** The issue's goal for pipeline throughput, as a fraction of raw publish. */
export const PIPELINE_GOAL = 0.6;

export type PipelineSummary = {
  runs: PipelineResult[];
  /** The run with the median trades/s, whose details (milestones, CPU) are printed. */
  median: PipelineResult;
  tradesPerSec: number;
  candlesPerSec: number;
  /** median pipeline trades/s ÷ median raw msgs/s. */
  ratio: number | null;
  /** Each pipeline run ÷ the raw run just before it. */
  pairedRatios: number[];
  medianPairedRatio: number | null;
  goal: number;
  meetsGoal: boolean | null;
};

export type BenchReport = {
  startedAt: string;
  durationSeconds: number;
  machine: MachineInfo;
  /** 1-minute load average when the bench ended (the start is in machine). */
  loadAvgEnd: number;
  input: { pairs: Record<string, number>; recordedTrades: number; copies: number; trades: number; eventSpanMinutes: number };
  /** Set when the run measured a what-if rather than the code as it is. */
  variant: string | null;
  raw: RawResult | null;
  pipeline: PipelineSummary | null;
  failover: FailoverResult | null;
  pairs: PairsResult | null;
  joined: JoinedResult | null;
  /** Prediction figures (bench/predict.ts, bench/train.ts), when measured. */
  predict?: unknown;
  train?: unknown;
  /** The whole system through `up --once`, 3 against 300 pairs (bench/system.ts), when measured. */
  system?: unknown;
  /** Real time at few and at many pairs (bench/live.ts), when measured. */
  live?: unknown;
  codec?: unknown;
  /** Further numbered sections, already formatted (first line the title). */
  sections: string[][];
  errors: string[];
};

export function summarisePipeline(runs: PipelineResult[], raw: RawResult | null): PipelineSummary {
  const sorted = [...runs].sort((a, b) => a.tradesPerSec - b.tradesPerSec);
  const mid = sorted[(sorted.length - 1) >> 1];
  const tradesPerSec = median(runs.map((r) => r.tradesPerSec));
  const ratio = raw ? tradesPerSec / raw.medianMsgsPerSec : null;
  const pairedRatios = raw ? runs.map((r, i) => r.tradesPerSec / (raw.runs[i] ?? raw.runs[raw.runs.length - 1]).msgsPerSec) : [];
  return {
    runs, median: mid, tradesPerSec, candlesPerSec: median(runs.map((r) => r.candlesPerSec)), ratio, pairedRatios,
    medianPairedRatio: pairedRatios.length ? median(pairedRatios) : null,
    goal: PIPELINE_GOAL, meetsGoal: ratio === null ? null : ratio >= PIPELINE_GOAL,
  };
}

export function formatReport(r: BenchReport): string {
  const m = r.machine;
  const out: string[] = [];
  const line = (s = "") => out.push(s);
  line(`Tickflow bench · ${r.startedAt} · ${fixed(r.durationSeconds, 0)} s`);
  line(`machine   ${m.cpuModel} · ${m.cores} cores · ${m.ramGiB} GiB RAM · ${m.platform} · load ${m.loadAvg1m} at start, ${r.loadAvgEnd} at end`);
  line(`software  node ${m.node} · nats-server ${m.natsServer}`);
  if (Math.max(m.loadAvg1m, r.loadAvgEnd) > m.cores) line(`WARNING   the box was busy (load above ${m.cores} cores): rates are depressed and noisy; ratios hold up better`);
  if (r.variant) line(`VARIANT   ${r.variant}`);
  const pairs = Object.entries(r.input.pairs).map(([p, n]) => `${p} ${int(n)}`).join(", ");
  line(`input     ${int(r.input.recordedTrades)} recorded trades × ${r.input.copies} copies = ${int(r.input.trades)} trades (${pairs}), ~${int(r.input.eventSpanMinutes)} min of event time per pair`);

  if (r.raw) {
    const x = r.raw;
    line();
    line(`1. Reference: raw JetStream async publish (file storage, dedup window ${x.duplicateWindowMs / 1000} s, Nats-Msg-Id, msgpack, ${x.window} acks in flight)`);
    line(`   runs      ${x.runs.map((k) => int(k.msgsPerSec)).join(" · ")} msgs/s`);
    line(`   median    ${int(x.medianMsgsPerSec)} msgs/s`);
    const c = x.runs.map((k) => k.cpu);
    line(`   CPU       node ${pct(c.map((k) => k.nodeCpuSeconds / k.wallSeconds))} of a core · nats-server ${pct(c.map((k) => k.serverCpuSeconds / k.wallSeconds))} (median over runs)`);
  }

  if (r.pipeline) {
    const p = r.pipeline;
    const d = p.median;
    line();
    line(`2. Pipeline: replay (speed max) → trades → TRADES → candles → CANDLES → indicators → INDICATORS, one process, file storage`);
    line(`   runs      ${p.runs.map((k) => `${int(k.tradesPerSec)} trades/s (${fixed(k.seconds, 1)} s)`).join(" · ")}`);
    line(`   median    ${int(p.tradesPerSec)} trades/s · ${fixed(p.candlesPerSec, 1)} candles/s (${int(d.candles)} candles: ${d.timeframes.join(", ")}, incl. flat) · ${int(d.indicators)} indicator records`);
    if (p.ratio !== null) {
      const verdict = p.meetsGoal ? "meets" : "BELOW";
      line(`   ratio     pipeline / raw = ${fixed(p.ratio, 2)} (median / median; ${verdict} the goal of ≥ ${p.goal}) · run by run ${p.pairedRatios.map((k) => fixed(k, 2)).join(" · ")} (median ${fixed(p.medianPairedRatio ?? NaN, 2)})`);
    }
    const ms = d.milestones;
    line(`   timeline  (median run) first trade stored ${fixed(ms.firstTrade, 2)} s · end-of-stream in TRADES ${fixed(ms.tradesDone, 2)} s · candles done ${fixed(ms.candlesDone, 2)} s · indicators done ${fixed(ms.indicatorsDone, 2)} s`);
    line(`   CPU       node ${pct([d.cpu.nodeCpuSeconds / d.cpu.wallSeconds])} of a core · nats-server ${pct([d.cpu.serverCpuSeconds / d.cpu.wallSeconds])} (median run) · dead letters ${d.deadLetters}`);
    if (d.cpu.nodeCpuSeconds / d.cpu.wallSeconds > 0.85 && d.cpu.serverCpuSeconds / d.cpu.wallSeconds < 0.5) {
      line(`             → bound by the Node process's CPU (JavaScript runs on one core), not by nats-server`);
    }
  }

  if (r.failover) {
    const f = r.failover;
    line();
    line(`3. Failover: SIGKILL the worker holding candles.<pair> (${f.workers} workers, \`tickflow run --stages candles\`)`);
    line(`   settings  lease TTL ${f.leaseTtlMs} ms (renew ${f.leaseRenewMs} ms) · member TTL ${f.memberTtlMs} ms (heartbeat ${f.heartbeatMs} ms)`);
    line(`   rounds    ${f.rounds.map((k) => `${int(k.runningMs)}`).join(" · ")} ms from kill until another worker reports the actor running`);
    line(`   result    median ${int(f.medianMs)} ms · max ${int(f.maxMs)} ms`);
    line(`   breakdown failover = TTL expiry + detection. Expiry: ${int(f.medianExpiryMs)} ms after the kill (median) — a TTL counts from the`);
    line(`             dead owner's last lease renewal (every ${f.leaseRenewMs} ms) or heartbeat (every ${f.heartbeatMs} ms), whichever is later, so it is`);
    line(`             TTL minus 0–${Math.max(f.leaseRenewMs, f.heartbeatMs)} ms. Detection (expiry → lease won → actor running): median ${int(f.medianDetectionMs)} ms, max ${int(f.maxDetectionMs)} ms.`);
  }

  if (r.pairs) {
    const p = r.pairs;
    line();
    line(`4. Pairs: the same ${int(p.trades)} recorded trades dealt over N pairs, one worker (trades → candles → indicators)`);
    line(`   trades/s and its ratio count from the worker's start; "once running" counts from when every actor runs (the start-up is "all running")`);
    line(`   ${p.runs} run${p.runs === 1 ? "" : "s"} per row, sizes taken in turn; each row is its median run; "runs" is each run's ratio to the 3-pair run of its round`);
    line(`   pairs  actors  trades/s  ratio to 3  runs              once running  ratio to 3  all running  peak RSS  idle RSS  NATS conns  leases lost  restarts  dead letters`);
    for (const w of p.rows) {
      const runRatios = (w.runRatios ?? []).map((x) => fixed(x, 2)).join(" ");
      line(`   ${String(w.pairs).padStart(5)}  ${String(w.actors).padStart(6)}  ${int(w.tradesPerSec).padStart(8)}  ${fixed(w.ratio, 2).padStart(10)}  ${runRatios.padEnd(16)}  ${int(w.runningTradesPerSec).padStart(12)}  ${fixed(w.runningRatio, 2).padStart(10)}  ${(fixed(w.allRunningSec, 1) + " s").padStart(11)}  ${(w.peakRssMb + " MB").padStart(8)}  ${(w.idleRssMb + " MB").padStart(8)}  ${String(w.natsConnections).padStart(10)}  ${String(w.leasesLost).padStart(11)}  ${String(w.restarts).padStart(8)}  ${String(w.deadLetters).padStart(12)}`);
    }
    if (p.kbPerIdleActor !== null) line(`   RSS per idle actor: ${fixed(p.kbPerIdleActor, 1)} KB (slope of idle RSS from the fewest to the most actors)`);
    // What the ratio is made of: more pairs make more messages from the same trades. At the
    // first row's cost per message the ratio would be the count ratio, so the two columns say
    // whether a change made messages cheaper or fewer.
    const base = p.rows[0];
    const written = (w: PairsRow) => Object.entries(w.streamMessages).reduce((n, [k, v]) => (k === "DLQ" ? n : n + v), 0);
    if (base) {
      line(`   what each run wrote (stream messages; KV buckets: writes):`);
      line(`   pairs  messages  trades  candles+indicators  checkpoints+latest+leases  count ratio  µs per message`);
      for (const w of p.rows) {
        const m = w.streamMessages;
        const kv = (m.KV_tf_state ?? 0) + (m.KV_tf_latest ?? 0) + (m.KV_tf_leases ?? 0);
        line(`   ${String(w.pairs).padStart(5)}  ${int(written(w)).padStart(8)}  ${int(m.TRADES ?? 0).padStart(6)}  ${int((m.CANDLES ?? 0) + (m.INDICATORS ?? 0)).padStart(18)}  ${int(kv).padStart(25)}  ${fixed(written(base) / written(w), 2).padStart(11)}  ${fixed((w.seconds * 1e6) / written(w), 0).padStart(14)}`);
      }
    }
  }
  if (r.joined) formatJoined(r.joined, line);
  let n = 5;
  for (const sec of r.sections) {
    line();
    line(`${n++}. ${sec[0]}`);
    for (const l of sec.slice(1)) line(l);
  }

  if (r.errors.length) {
    line();
    for (const e of r.errors) line(`ERROR ${e}`);
  }
  return out.join("\n") + "\n";
}

function pct(xs: number[]): string {
  return `${Math.round(median(xs) * 100)}%`;
}
