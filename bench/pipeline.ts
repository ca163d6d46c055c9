// Pipeline figure: trades/s through trades → candles → indicators in one process, through the
// production path and nothing else: the local Kraken-protocol replay server at speed "max" → the
// real trades actor (Kraken WebSocket client, shared feed) → TRADES → candles actor → CANDLES →
// indicators actor → INDICATORS, run by a real Supervisor (leases, checkpoints, micro-service)
// started by supervisor/worker.ts, as `tickflow up --once` starts it. The clock starts when the
// supervisor starts and stops when every candles and indicators actor has applied all its input and checkpointed, the
// condition cli.ts waitReplayProcessed uses for "pipeline done".
import { jetstream, jetstreamManager, type JetStreamClient, type JetStreamManager } from "@nats-io/jetstream";
import { connect } from "@nats-io/transport-node";
import pino from "pino";
import { candlesActor, CANDLES_STAGE } from "../actors/candles/actor.js";
import { indicatorsActor, INDICATORS_STAGE } from "../actors/indicators/actor.js";
import { lastPublishedTrade, tradesActor, TRADES_STAGE } from "../actors/trades/actor.js";
import { startKrakenReplayServer } from "../actors/trades/kraken-replay-server.js";
import { bootstrap } from "../protocol/streams.js";
import { subjects } from "../protocol/subjects.js";
import { loadConfig, type Config } from "../supervisor/config.js";
import { connectNats } from "../supervisor/nats.js";
import { addPairs } from "../supervisor/desired-pairs.js";
import type { Supervisor } from "../supervisor/runtime.js";
import { startWorker } from "../supervisor/worker.js";
import { startNatsServer } from "./nats.js";
import { defer } from "./cleanup.js";
import { cpuMeter, type CpuSplit } from "./cpu.js";
import { expectedCandles, type ReplayInput } from "./replay-input.js";
import { sleep } from "./stats.js";

export type PipelineResult = {
  trades: number;
  pairs: string[];
  copies: number;
  seconds: number;
  tradesPerSec: number;
  candles: number;
  candlesPerSec: number;
  indicators: number;
  deadLetters: number;
  /** Seconds from supervisor start until each milestone (all pairs): first trade stored, end-of-stream in TRADES, candles done, indicators done. */
  milestones: { firstTrade: number; tradesDone: number; candlesDone: number; indicatorsDone: number };
  timeframes: string[];
  checkpointEvery: number;
  cpu: CpuSplit;
  /**
   * The measured interval on the monotonic clock in µs, the clock of V8 CPU profiles: with
   * `node --cpu-prof`, `bench/profile-summary.ts --window start-end` keeps only these samples.
   */
  profileWindowUs: { start: number; end: number };
};

const monotonicUs = () => Number(process.hrtime.bigint() / 1000n);

/** Whole run bound: a stalled pipeline fails the bench instead of hanging it. */
const TIMEOUT_MS = 240_000;
const POLL_MS = 20;

/** The connection is exactly connectNats's, as in `tickflow up`. */
export async function pipelineRun(input: ReplayInput, opts: { log?: (s: string) => void } = {}): Promise<PipelineResult> {
  // Defaults only: a developer's TICKFLOW_* environment must not change what is measured.
  const config: Config = loadConfig({ env: {} });
  const logger = pino({ level: process.env.LOG_LEVEL ?? "error", base: { bench: "pipeline" } }, pino.destination(2));

  const { server, stop: stopServer } = await startNatsServer("pipeline nats-server");
  const replay = await startKrakenReplayServer({ trades: input.records, host: "127.0.0.1", port: 0, speed: "max" });
  const closeReplay = defer("replay server", () => replay.close());
  config.kraken.wsUrl = replay.wsUrl;
  config.kraken.restUrl = replay.restUrl;
  const pairs = replay.pairs;

  const nc = await connectNats(server.url, "tickflow-bench");
  const drainNc = defer("pipeline connection", () => nc.drain().catch(() => {}));
  const jsm = await jetstreamManager(nc);
  // Streams exist before the clock starts (startWorker's own bootstrap is then a no-op check).
  await bootstrap(jetstream(nc), jsm, config.storage);

  const stages = [tradesActor({ endOfInput: replay.lastTradeIds }), candlesActor, indicatorsActor()];
  const windowStartUs = monotonicUs();
  const t0 = performance.now();
  const meter = cpuMeter(server.pid);
  const worker = await startWorker({ nc, config, log: logger, id: "bench-up", stages });
  const stopWorker = defer("pipeline worker", () => worker.stop());
  const { sup, js } = worker;
  await addPairs(js, pairs);

  try {
    const milestones = await waitProcessed(js, jsm, sup, pairs, config, t0);
    const cpu = meter();
    const profileWindowUs = { start: windowStartUs, end: monotonicUs() };
    const seconds = milestones.indicatorsDone;
    const total = input.records.length;
    const published = pairs.reduce((n, p) => n + (sup.cell(TRADES_STAGE, p)?.status().processed ?? 0), 0);
    if (published !== total) throw new Error(`pipeline: the trades actors published ${published} trades, the replay had ${total}`);
    const count = async (stream: string) => (await jsm.streams.info(stream)).state.messages;
    const candles = await count("CANDLES");
    const indicators = await count("INDICATORS");
    const deadLetters = await count("DLQ");
    const want = expectedCandles(input.records, config.timeframes);
    if (candles !== want) throw new Error(`pipeline: ${candles} candles, expected ${want} (every window of every timeframe from first to last trade)`);
    if (indicators !== candles) throw new Error(`pipeline: ${candles} candles but ${indicators} indicator records`);
    opts.log?.(`pipeline: ${total} trades, ${candles} candles in ${seconds.toFixed(2)} s`);
    return {
      trades: total, pairs, copies: input.copies, seconds, tradesPerSec: total / seconds, candles, candlesPerSec: candles / seconds,
      indicators, deadLetters, milestones, timeframes: config.timeframes, checkpointEvery: config.checkpoint.everyMessages, cpu, profileWindowUs,
    };
  } finally {
    await stopWorker();
    await drainNc();
    await closeReplay();
    await stopServer();
  }
}

/**
 * cli.ts waitReplayProcessed, with every pair checked in one polling loop (so the time of each
 * milestone is seen, not only the last) and a finer poll (20 ms; a 100 ms poll would be a few % of
 * a run). Per pair: the end-of-stream watermark is in TRADES; the candles actor has applied up to
 * it and checkpointed (its candles are acked); the indicators actor has applied the last candle.
 */
async function waitProcessed(js: JetStreamClient, jsm: JetStreamManager, sup: Supervisor, pairs: string[], config: Config, t0: number): Promise<PipelineResult["milestones"]> {
  const lastSeq = async (stream: string, subject: string) =>
    (await jsm.streams.getMessage(stream, { last_by_subj: subject }).catch(() => null))?.seq ?? 0;
  type P = { tradesSeq: number | null; candleSeq: number | null; done: boolean };
  const st = new Map<string, P>(pairs.map((p) => [p, { tradesSeq: null, candleSeq: null, done: false }]));
  const at = { firstTrade: NaN, tradesDone: NaN, candlesDone: NaN, indicatorsDone: NaN };
  const since = () => (performance.now() - t0) / 1000;
  const deadline = Date.now() + TIMEOUT_MS;
  for (;;) {
    if (Number.isNaN(at.firstTrade) && pairs.some((p) => (sup.cell(TRADES_STAGE, p)?.status().processed ?? 0) > 0)) at.firstTrade = since();
    for (const [pair, s] of st) {
      if (s.tradesSeq === null && (await lastPublishedTrade(js, pair)).eos) s.tradesSeq = await lastSeq("TRADES", subjects.trades(pair));
      if (s.tradesSeq !== null && s.candleSeq === null) {
        const cell = sup.cell(CANDLES_STAGE, pair);
        if ((cell?.status().lastSeq ?? 0) >= s.tradesSeq) {
          await cell?.checkpointIfRunning();
          let seq = 0;
          for (const tf of config.timeframes) seq = Math.max(seq, await lastSeq("CANDLES", subjects.candles(tf, pair)));
          s.candleSeq = seq;
        }
      }
      if (s.candleSeq !== null && !s.done) {
        const cell = sup.cell(INDICATORS_STAGE, pair);
        if ((cell?.status().lastSeq ?? 0) >= s.candleSeq) {
          await cell?.checkpointIfRunning();
          s.done = true;
        }
      }
    }
    const all = [...st.values()];
    if (Number.isNaN(at.tradesDone) && all.every((s) => s.tradesSeq !== null)) at.tradesDone = since();
    if (Number.isNaN(at.candlesDone) && all.every((s) => s.candleSeq !== null)) at.candlesDone = since();
    if (all.every((s) => s.done)) {
      at.indicatorsDone = since();
      return at;
    }
    if (Date.now() > deadline) {
      const detail = sup.status().map((a) => `${a.stage}.${a.pair}: ${a.state} seq ${a.lastSeq} processed ${a.processed}${a.lastError ? ` (${a.lastError})` : ""}`).join("; ");
      throw new Error(`pipeline did not finish within ${TIMEOUT_MS / 1000} s: ${detail}`);
    }
    await sleep(POLL_MS);
  }
}
