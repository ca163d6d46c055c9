// `npm run bench`: measures, never asserts. Prints a compact report and writes it as JSON to
// bench/results/latest.json. Everything runs on 127.0.0.1 against nats-servers it starts itself
// (temp stores), and everything it starts is stopped at the end, also on failure or Ctrl-C.
//
// Options (after `npm run bench --`):
//   --only raw,pipeline,failover,pairs,joined,gateway,sink,sentiment,predict,train,system,live,codec   run only some parts (default: all)
//   --trades N                     target input size (default 200000; rounded to whole copies of the recorded data)
//   --runs N                       raw and pipeline repetitions, interleaved; also runs per pairs row and
//                                  rounds of the whole-system part, sizes taken in turn (default 3)
//   --rounds N                     failover kills (default 5)
//   --source FILE                  the whole-system part on many-pair files made from this recording
//                                  (Kraken v2 trade records, .jsonl or .jsonl.gz) instead of its own
//                                  three; may be given more than once
//   --seconds N                    the live part's measured window of wall time (default 150)
// Profiling the pipeline alone:
//   node --cpu-prof --cpu-prof-dir=/tmp/prof --import tsx bench/run.ts --only pipeline --runs 1
//   node --import tsx bench/profile-summary.ts /tmp/prof/<the big one>.cpuprofile --window <printed by the run>
import { mkdirSync, writeFileSync } from "node:fs";
import { loadavg } from "node:os";
import { parseArgs } from "node:util";
import { fileURLToPath } from "node:url";
import { cleanupAll } from "./cleanup.js";
import { codecBench, formatCodec } from "./codec.js";
import { failover, type FailoverResult } from "./failover.js";
import { pairsBench } from "./pairs.js";
import { joinedBench } from "./joined.js";
import { machineInfo } from "./machine.js";
import { pipelineRun, type PipelineResult } from "./pipeline.js";
import { rawRun, summariseRaw, type RawRun } from "./raw-publish.js";
import { asTrades, buildReplayInput } from "./replay-input.js";
import { sentimentBench, formatSentiment, type SentimentBench } from "./sentiment.js";
import { formatReport, summarisePipeline, type BenchReport } from "./report.js";
import { formatPredict, predictBench } from "./predict.js";
import { formatServe, gatewayBench, sinkBench, type GatewayBench, type SinkBench } from "./serve.js";
import { formatLive, liveBench } from "./live.js";
import { formatSystem, systemBench, systemFileOf } from "./system.js";
import { formatTrain, trainBench } from "./train.js";

const RESULTS = fileURLToPath(new URL("./results/", import.meta.url));
const PARTS = ["raw", "pipeline", "failover", "pairs", "joined", "gateway", "sink", "sentiment", "predict", "train", "system", "live", "codec"] as const;

const progress = (s: string) => process.stderr.write(`bench: ${s}\n`);
let interrupted = false;

function positiveInt(s: string | undefined, dflt: number, name: string): number {
  if (s === undefined) return dflt;
  const n = Number(s);
  if (!Number.isInteger(n) || n < 1) throw new Error(`--${name} must be a positive whole number (got "${s}")`);
  return n;
}

async function main(): Promise<number> {
  const { values } = parseArgs({
    options: {
      only: { type: "string" }, trades: { type: "string" }, runs: { type: "string" }, rounds: { type: "string" },
      source: { type: "string", multiple: true }, seconds: { type: "string" },
    },
    strict: true,
  });
  const only = new Set((values.only ?? PARTS.join(",")).split(",").map((s) => s.trim()).filter(Boolean));
  for (const p of only) if (!(PARTS as readonly string[]).includes(p)) throw new Error(`--only: unknown part "${p}" (parts: ${PARTS.join(", ")})`);
  const runs = positiveInt(values.runs, 3, "runs");
  const rounds = positiveInt(values.rounds, 5, "rounds");
  const target = positiveInt(values.trades, 200_000, "trades");
  if (values.source && !only.has("system")) throw new Error("--source is for the whole-system part: add system to --only");
  const systemFiles = values.source?.map(systemFileOf);
  if (values.seconds !== undefined && !only.has("live")) throw new Error("--seconds is for the live part: add live to --only");
  const liveSeconds = positiveInt(values.seconds, 150, "seconds");

  const started = new Date();
  const t0 = performance.now();
  const machine = machineInfo();
  // The pipeline input is built only for the parts that replay it.
  const input = only.has("raw") || only.has("pipeline") ? buildReplayInput({ targetTrades: target }) : buildReplayInput({ copies: 1 });
  const spans = Object.values(input.spanMs);
  const report: BenchReport = {
    startedAt: started.toISOString(), durationSeconds: 0, machine, loadAvgEnd: NaN,
    input: {
      pairs: input.perPair, recordedTrades: input.recordedTrades, copies: input.copies, trades: input.records.length,
      eventSpanMinutes: spans.length ? Math.max(...spans) / 60_000 : 0,
    },
    variant: null,
    raw: null, pipeline: null, failover: null, pairs: null, joined: null, errors: [], sections: [],
  };
  progress(`input: ${input.records.length} trades (${input.copies} copies of ${input.recordedTrades})`);

  // Raw and pipeline runs alternate, so a neighbour's burst on this shared box hits both figures
  // alike instead of skewing their ratio.
  const rawRuns: RawRun[] = [];
  const pipeRuns: PipelineResult[] = [];
  try {
    const trades = only.has("raw") ? asTrades(input.records) : [];
    for (let i = 0; i < runs; i++) {
      if (only.has("raw")) {
        const r = await rawRun(trades);
        rawRuns.push(r);
        progress(`raw ${i + 1}/${runs}: ${Math.round(r.msgsPerSec)} msgs/s (${r.seconds.toFixed(2)} s)`);
      }
      if (only.has("pipeline")) {
        const p = await pipelineRun(input);
        pipeRuns.push(p);
        progress(`pipeline ${i + 1}/${runs}: ${Math.round(p.tradesPerSec)} trades/s (${p.seconds.toFixed(2)} s; profile window ${p.profileWindowUs.start}-${p.profileWindowUs.end})`);
      }
    }
  } catch (err) {
    report.errors.push(`raw/pipeline: ${(err as Error).stack ?? err}`);
  }
  if (rawRuns.length) report.raw = summariseRaw(rawRuns);
  if (pipeRuns.length) report.pipeline = summarisePipeline(pipeRuns, report.raw);
  await cleanupAll();

  if (only.has("failover")) {
    try {
      const f: FailoverResult = await failover({ rounds, log: progress });
      report.failover = f;
    } catch (err) {
      report.errors.push(`failover: ${(err as Error).stack ?? err}`);
    }
    await cleanupAll();
  }

  if (only.has("pairs")) {
    try {
      report.pairs = await pairsBench({ runs, log: progress });
    } catch (err) {
      report.errors.push(`pairs: ${(err as Error).stack ?? err}`);
    }
    await cleanupAll();
  }

  if (only.has("joined")) {
    try {
      report.joined = await joinedBench({ messages: 20_000, runs, log: progress });
    } catch (err) {
      report.errors.push(`joined: ${(err as Error).stack ?? err}`);
    }
    await cleanupAll();
  }

  // Serving (gateway latency and throughput, sink rows/s): own section, own results file.
  let gw: GatewayBench | null = null;
  let sk: SinkBench | null = null;
  if (only.has("gateway")) {
    try {
      gw = await gatewayBench(progress);
    } catch (err) {
      report.errors.push(`gateway: ${(err as Error).stack ?? err}`);
    }
    await cleanupAll();
  }
  if (only.has("sink")) {
    try {
      sk = await sinkBench(progress);
    } catch (err) {
      report.errors.push(`sink: ${(err as Error).stack ?? err}`);
    }
    await cleanupAll();
  }

  let sentiment: SentimentBench | null = null;
  if (only.has("sentiment")) {
    try {
      sentiment = await sentimentBench(progress);
    } catch (err) {
      report.errors.push(`sentiment: ${(err as Error).stack ?? err}`);
    }
    await cleanupAll();
  }

  if (only.has("predict")) {
    try {
      const p = await predictBench(progress);
      report.predict = p;
      report.sections.push(formatPredict(p));
    } catch (err) {
      report.errors.push(`predict: ${(err as Error).stack ?? err}`);
    }
    await cleanupAll();
  }

  if (only.has("train")) {
    try {
      const t = await trainBench(progress);
      report.train = t;
      report.sections.push(formatTrain(t));
    } catch (err) {
      report.errors.push(`train: ${(err as Error).stack ?? err}`);
    }
  }

  if (only.has("system")) {
    try {
      const sys = await systemBench({ rounds: runs, log: progress, files: systemFiles });
      report.system = sys;
      report.sections.push(formatSystem(sys));
    } catch (err) {
      report.errors.push(`system: ${(err as Error).stack ?? err}`);
    }
    await cleanupAll();
  }

  if (only.has("live")) {
    try {
      const live = await liveBench({ seconds: liveSeconds, log: progress });
      report.live = live;
      report.sections.push(formatLive(live));
    } catch (err) {
      report.errors.push(`live: ${(err as Error).stack ?? err}`);
    }
    await cleanupAll();
  }

  if (only.has("codec")) {
    try {
      const codec = codecBench({ log: progress });
      report.codec = codec;
      report.sections.push(formatCodec(codec));
    } catch (err) {
      report.errors.push(`codec: ${(err as Error).stack ?? err}`);
    }
  }

  // Interrupted: the teardown is already under way; a partial report must not replace latest.json.
  if (interrupted) return 130;
  report.durationSeconds = (performance.now() - t0) / 1000;
  report.loadAvgEnd = Math.round(loadavg()[0] * 100) / 100;
  process.stdout.write(formatReport(report));
  if (gw || sk) {
    process.stdout.write(formatServe(gw, sk));
    mkdirSync(RESULTS, { recursive: true });
    writeFileSync(`${RESULTS}serve.json`, JSON.stringify({ startedAt: report.startedAt, machine, gateway: gw, sink: sk }, null, 2) + "\n");
  }
  if (sentiment) process.stdout.write(formatSentiment(sentiment));
  mkdirSync(RESULTS, { recursive: true });
  writeFileSync(`${RESULTS}latest.json`, JSON.stringify(sentiment ? { ...report, sentiment } : report, null, 2) + "\n");
  progress(`wrote ${RESULTS}latest.json`);
  return report.errors.length ? 1 : 0;
}

// Ctrl-C or a kill: stop servers and workers, remove temp dirs, then exit.
for (const sig of ["SIGINT", "SIGTERM"] as const) {
  process.on(sig, () => {
    if (interrupted) process.exit(130);
    interrupted = true;
    progress(`${sig}: cleaning up`);
    cleanupAll().finally(() => process.exit(130));
  });
}

main().then(
  async (code) => {
    await cleanupAll();
    process.exit(code);
  },
  async (err) => {
    if (interrupted) return;
    process.stderr.write(`bench: ${(err as Error).stack ?? err}\n`);
    await cleanupAll();
    process.exit(1);
  },
);
