// The `tickflow` command: the composition root that wires the generic runtime to the stages.
import { existsSync, mkdirSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { hostname } from "node:os";
import { join, resolve } from "node:path";
import { parseArgs } from "node:util";
import { fileURLToPath } from "node:url";
import { jetstream, jetstreamManager, type JetStreamClient } from "@nats-io/jetstream";
import type { NatsConnection } from "@nats-io/transport-node";
import pino, { type Logger } from "pino";
import { candlesActor, CANDLES_STAGE } from "../actors/candles/actor.js";
import { indicatorsActor, INDICATORS_STAGE } from "../actors/indicators/actor.js";
import { lastPublishedTrade, tradesActor, TRADES_STAGE, type TradesActorOptions } from "../actors/trades/actor.js";
import { startKrakenReplayServer } from "../actors/trades/kraken-replay-server.js";
import { decodeMsg, jsonReplacer } from "../protocol/codec.js";
import { ErrorCode, TickflowError } from "../protocol/errors.js";
import { normalizePair } from "../protocol/pairs.js";
import { bootstrap, openBuckets } from "../protocol/streams.js";
import { subjects } from "../protocol/subjects.js";
import type { ActorDef } from "./actor.js";
import { loadConfig, type Config } from "./config.js";
import { connectNats, EMBEDDED_URL_FILE, resolveNatsUrl } from "./nats.js";
import { NatsServer } from "./nats-server.js";
import { Supervisor } from "./runtime.js";
import { startWorker } from "./worker.js";
import { addPairs, listPairs, removePairs } from "./desired-pairs.js";
import { clusterStatus } from "./status.js";
import { actorKey, isPlainKey } from "./actor-key.js";

const ROOT = resolve(fileURLToPath(new URL("..", import.meta.url)));
const ALL_STAGES = [TRADES_STAGE, CANDLES_STAGE, INDICATORS_STAGE];

const HELP = `tickflow — real-time crypto market data and prediction on NATS JetStream

Usage: tickflow <command> [options]

Commands:
  up [--nats URL] [--replay FILE…] [--speed N|max] [--pairs P,…] [--once] [--data-dir DIR]
      The whole system in one process. Without --nats / NATS_URL it starts an embedded
      nats-server (from PATH; store in <data-dir>/nats) and stops it on exit. Source: live
      Kraken when reachable; otherwise (or with --replay) a local Kraken-protocol server that
      replays recorded trades (default: the files in data/trades). --pairs defaults to the
      pairs in the replay files (live: BTC/USD,ETH/USD). --once (needs a replay) exits when
      the replay is fully processed and every output is published. --speed 1 is real time.
  run --stages S,… [--id NAME] [--nats URL] [--kraken-url URL]
      A worker for some stages (${ALL_STAGES.join(", ")}); run several against one NATS and
      every (stage, pair) runs in exactly one of them. --kraken-url is the base of a
      Kraken-protocol server (e.g. one from \`tickflow replay serve\`): WebSocket at /v2,
      REST at /0/public/Trades.
  replay serve FILE… [--port N] [--host H] [--speed N|max]
      A local Kraken-protocol server replaying recorded trade files (.jsonl or .jsonl.gz).
  tail SUBJECT [--all] [--limit N] [--follow] [--meta] [--nats URL]
      Decoded messages as JSON lines: the last N (default 10), or with --all every message from
      the start of the stream; exits when none are pending unless --follow.
  status [--json] [--nats URL]
      Every actor: stage, pair, state, owner, last input sequence and time, lag, restarts,
      dead letters. --json prints {"actors": [...], "members": [...]}.
  bootstrap [--nats URL]             Create or update the streams and KV buckets.
  pairs add P… | rm P… | ls         Desired pairs (the tf_pairs bucket); actors follow.
  actors restart STAGE PAIR|KEY      Clear a failed actor so it starts again.

Common options:
  --nats URL        NATS server (default: NATS_URL, then the server of a running \`tickflow up\`
                    in --data-dir, then nats://127.0.0.1:4222)
  --config FILE     JSON config file (also TICKFLOW_CONFIG); see README for every setting
  --codec C         msgpack (default) or json
  --data-dir DIR    local state directory (default .tickflow)
  -h, --help        this help
`;

type Flags = Record<string, string | boolean | string[] | undefined>;

const OPTIONS = {
  nats: { type: "string" },
  replay: { type: "string", multiple: true },
  speed: { type: "string" },
  pairs: { type: "string" },
  once: { type: "boolean" },
  "data-dir": { type: "string" },
  stages: { type: "string" },
  id: { type: "string" },
  "kraken-url": { type: "string" },
  port: { type: "string" },
  host: { type: "string" },
  all: { type: "boolean" },
  limit: { type: "string" },
  follow: { type: "boolean", short: "f" },
  meta: { type: "boolean" },
  json: { type: "boolean" },
  config: { type: "string" },
  codec: { type: "string" },
  help: { type: "boolean", short: "h" },
} as const;

function usage(msg: string): never {
  throw new TickflowError(ErrorCode.BadArgs, `${msg}\nRun \`tickflow --help\` for usage.`);
}

function makeLogger(config: Config): Logger {
  return pino({ level: config.log.level, base: { pid: process.pid } }, pino.destination(2));
}

function configFrom(flags: Flags): Config {
  return loadConfig({
    file: flags.config as string | undefined,
    overrides: { codec: flags.codec, dataDir: flags["data-dir"] },
  });
}

function parseSpeed(s: string | undefined): number | "max" {
  if (s === undefined) return 1;
  if (s === "max") return "max";
  const n = Number(s);
  if (!Number.isFinite(n) || n <= 0) usage(`--speed must be a positive number or "max" (got "${s}")`);
  return n;
}

function parsePairs(s: string | undefined): string[] | undefined {
  if (s === undefined) return undefined;
  const list = s.split(",").map((p) => p.trim()).filter(Boolean);
  if (list.length === 0) usage("--pairs needs at least one pair, e.g. --pairs BTC/USD,ETH/USD");
  return list.map(normalizePair);
}

function stageDefs(names: string[], tradesOpts: TradesActorOptions = {}): ActorDef[] {
  const out: ActorDef[] = [];
  for (const n of names) {
    if (n === TRADES_STAGE) out.push(tradesActor(tradesOpts));
    else if (n === CANDLES_STAGE) out.push(candlesActor);
    else if (n === INDICATORS_STAGE) out.push(indicatorsActor());
    else usage(`unknown stage "${n}" (stages: ${ALL_STAGES.join(", ")})`);
  }
  return out;
}

async function withNats<T>(flags: Flags, name: string, fn: (nc: NatsConnection, config: Config) => Promise<T>): Promise<T> {
  const config = configFrom(flags);
  const url = resolveNatsUrl(flags.nats as string | undefined, config.natsUrl, config.dataDir);
  const nc = await connectNats(url, name);
  try {
    return await fn(nc, config);
  } finally {
    await nc.drain().catch(() => {});
  }
}

function defaultReplayFiles(): string[] {
  const dir = join(ROOT, "data", "trades");
  if (!existsSync(dir)) return [];
  return readdirSync(dir).filter((f) => /\.jsonl(\.gz)?$/.test(f)).sort().map((f) => join(dir, f));
}

/** Live Kraken if its REST API answers quickly; this machine may well be offline. */
async function krakenReachable(restUrl: string): Promise<boolean> {
  try {
    const r = await fetch(`${restUrl}/0/public/Time`, { signal: AbortSignal.timeout(3000) });
    return r.ok;
  } catch {
    return false;
  }
}

function onSignals(fn: () => Promise<void>): void {
  let n = 0;
  const handler = () => {
    if (n++ > 0) process.exit(130);
    fn().then(() => process.exit(0), (err) => {
      console.error(err);
      process.exit(1);
    });
  };
  process.on("SIGINT", handler);
  process.on("SIGTERM", handler);
}

/** Test hook: act as if partitioned from every other member and take no leases (see Supervisor). */
const unsafeSplitBrain = () => process.env.TICKFLOW_UNSAFE_SPLIT_BRAIN === "1";

// --- commands -------------------------------------------------------------------------------

async function cmdUp(flags: Flags): Promise<void> {
  const config = configFrom(flags);
  const log = makeLogger(config);
  const speed = parseSpeed(flags.speed as string | undefined);
  let replayFiles = (flags.replay as string[] | undefined)?.map((f) => resolve(f));
  if (flags.once && !replayFiles) usage("--once needs --replay FILE… (a live feed never ends)");
  let natsUrl = (flags.nats as string | undefined) ?? config.natsUrl;
  let server: NatsServer | null = null;
  mkdirSync(config.dataDir, { recursive: true });
  if (!natsUrl) {
    server = await NatsServer.start({ storeDir: resolve(config.dataDir, "nats") });
    natsUrl = server.url;
    writeFileSync(join(config.dataDir, EMBEDDED_URL_FILE), natsUrl + "\n");
    log.info({ url: natsUrl }, "embedded nats-server started");
  }
  let replay: Awaited<ReturnType<typeof startKrakenReplayServer>> | null = null;
  let pairs = parsePairs(flags.pairs as string | undefined);
  let sourceNote: string;
  if (!replayFiles && !(await krakenReachable(config.kraken.restUrl))) {
    replayFiles = defaultReplayFiles();
    if (replayFiles.length === 0) throw new Error("Kraken is unreachable and there are no recorded trades in data/trades to replay");
    log.warn("Kraken is unreachable; replaying recorded trades from data/trades");
  }
  const tradesOpts: TradesActorOptions = {};
  if (replayFiles) {
    replay = await startKrakenReplayServer({ files: replayFiles, host: "127.0.0.1", port: 0, speed });
    config.kraken.wsUrl = replay.wsUrl;
    config.kraken.restUrl = replay.restUrl;
    pairs ??= replay.pairs;
    if (flags.once) tradesOpts.endOfInput = replay.lastTradeIds;
    sourceNote = `replay of ${replayFiles.length} file(s) at speed ${speed} (${replay.wsUrl})`;
  } else {
    pairs ??= ["BTC/USD", "ETH/USD"];
    sourceNote = `live Kraken (${config.kraken.wsUrl})`;
  }
  const nc = await connectNats(natsUrl, "tickflow-up");
  const worker = await startWorker({ nc, config, log, id: `up-${hostname()}`, stages: stageDefs(ALL_STAGES, tradesOpts), ignoreLeases: unsafeSplitBrain() });
  const { sup, js } = worker;
  await addPairs(js, pairs);
  process.stderr.write(`tickflow up: NATS ${natsUrl} · pairs ${pairs.join(", ")} · source ${sourceNote}\n`);

  const shutdown = async () => {
    await worker.stop();
    await nc.drain().catch(() => {});
    await replay?.close();
    await server?.stop();
    if (server) rmSync(join(config.dataDir, EMBEDDED_URL_FILE), { force: true });
  };
  if (flags.once) {
    await waitReplayProcessed(js, sup, pairs, config);
    await shutdown();
    process.stderr.write(`tickflow up: replay processed for ${pairs.join(", ")}\n`);
    return;
  }
  onSignals(shutdown);
  await new Promise(() => {});
}

/** --once: the replay's end-of-stream watermark is in TRADES, and every downstream actor has applied all of its input. */
async function waitReplayProcessed(js: JetStreamClient, sup: Supervisor, pairs: string[], config: Config): Promise<void> {
  const jsm = await js.jetstreamManager();
  const lastSeq = async (stream: string, subject: string) =>
    (await jsm.streams.getMessage(stream, { last_by_subj: subject }).catch(() => null))?.seq ?? 0;
  const until = async (what: () => Promise<boolean>) => {
    while (!(await what())) await new Promise((r) => setTimeout(r, 100));
  };
  for (const pair of pairs) {
    await until(async () => (await lastPublishedTrade(js, pair)).eos);
    const tradesSeq = await lastSeq("TRADES", subjects.trades(pair));
    await until(async () => (sup.cell(CANDLES_STAGE, pair)?.status().lastSeq ?? 0) >= tradesSeq);
    await sup.cell(CANDLES_STAGE, pair)?.checkpointIfRunning();
    let candleSeq = 0;
    for (const tf of config.timeframes) candleSeq = Math.max(candleSeq, await lastSeq("CANDLES", subjects.candles(tf, pair)));
    await until(async () => (sup.cell(INDICATORS_STAGE, pair)?.status().lastSeq ?? 0) >= candleSeq);
    await sup.cell(INDICATORS_STAGE, pair)?.checkpointIfRunning();
  }
}

async function cmdRun(flags: Flags): Promise<void> {
  const config = configFrom(flags);
  const log = makeLogger(config);
  const names = ((flags.stages as string | undefined) ?? "").split(",").map((s) => s.trim()).filter(Boolean);
  if (names.length === 0) usage(`run needs --stages, e.g. --stages ${ALL_STAGES.join(",")}`);
  const base = flags["kraken-url"] as string | undefined;
  if (base) {
    const u = new URL(base);
    const http = u.protocol === "wss:" || u.protocol === "https:" ? "https:" : "http:";
    config.kraken.restUrl = `${http}//${u.host}`;
    config.kraken.wsUrl = `${http === "https:" ? "wss:" : "ws:"}//${u.host}/v2`;
  }
  const url = resolveNatsUrl(flags.nats as string | undefined, config.natsUrl, config.dataDir);
  const id = (flags.id as string | undefined) ?? Supervisor.defaultId();
  const nc = await connectNats(url, `tickflow-${id}`);
  const worker = await startWorker({ nc, config, log, id, stages: stageDefs(names), ignoreLeases: unsafeSplitBrain() });
  process.stderr.write(`tickflow run: member ${id} · stages ${names.join(",")} · NATS ${url}\n`);
  onSignals(async () => {
    await worker.stop();
    await nc.drain().catch(() => {});
  });
  await new Promise(() => {});
}

async function cmdReplayServe(args: string[], flags: Flags): Promise<void> {
  if (args[0] !== "serve") usage("replay has one subcommand: replay serve FILE…");
  const files = args.slice(1).map((f) => resolve(f));
  if (files.length === 0) usage("replay serve needs at least one recorded trade file");
  const port = flags.port === undefined ? 0 : Number(flags.port);
  if (!Number.isInteger(port) || port < 0 || port > 65535) usage(`--port must be 0–65535 (got "${flags.port}")`);
  // Workers that start together may subscribe seconds apart; the clock waits for every pair (or 15 s).
  const srv = await startKrakenReplayServer({
    files, port, host: (flags.host as string | undefined) ?? "127.0.0.1", speed: parseSpeed(flags.speed as string | undefined),
    startWhen: "all-subscribed", startGraceMs: 15_000,
  });
  process.stdout.write(`${JSON.stringify({ wsUrl: srv.wsUrl, restUrl: srv.restUrl, pairs: srv.pairs })}\n`);
  process.stderr.write(`replaying ${srv.pairs.join(", ")} · WebSocket ${srv.wsUrl} · REST ${srv.restUrl}/0/public/Trades\n`);
  onSignals(() => srv.close());
  await new Promise(() => {});
}

async function cmdTail(args: string[], flags: Flags): Promise<void> {
  const subject = args[0];
  if (!subject) usage("tail needs a SUBJECT, e.g. tickflow tail md.candles.1m.BTC-USD --all");
  const limit = flags.limit === undefined ? (flags.all ? Infinity : 10) : Number(flags.limit);
  if (!(limit === Infinity || (Number.isInteger(limit) && limit > 0))) usage(`--limit must be a positive whole number (got "${flags.limit}")`);
  await withNats(flags, "tickflow-tail", async (nc) => {
    const js = jetstream(nc);
    const jsm = await jetstreamManager(nc);
    const stream = await jsm.streams.find(subject).catch(() => usage(`no stream holds subject "${subject}"`));
    const consumer = await js.consumers.get(stream, { filter_subjects: subject });
    const total = (await consumer.info()).num_pending;
    // Without --all only the last `limit` are printed; with --all and --limit, the first `limit`.
    let skip = flags.all ? 0 : Math.max(0, total - (limit === Infinity ? total : limit));
    let printed = 0;
    if (total === 0 && !flags.follow) return;
    const iter = await consumer.consume({ max_messages: 1000 });
    for await (const m of iter) {
      if (skip > 0) skip--;
      else if (printed < limit) {
        let data: unknown;
        try {
          data = decodeMsg(m);
        } catch (err) {
          data = { undecodable: (err as Error).message };
        }
        const line = flags.meta ? { subject: m.subject, seq: m.seq, time: new Date(m.info.timestampNanos / 1e6).toISOString(), data } : data;
        process.stdout.write(JSON.stringify(line, jsonReplacer) + "\n");
        printed++;
      }
      if ((!flags.follow && m.info.pending === 0) || (flags.all && printed >= limit && !flags.follow)) break;
    }
    iter.stop();
  });
}

async function cmdStatus(flags: Flags): Promise<void> {
  await withNats(flags, "tickflow-status", async (nc) => {
    const s = await clusterStatus(nc, ALL_STAGES);
    if (flags.json) {
      process.stdout.write(JSON.stringify(s, null, 2) + "\n");
      return;
    }
    const now = Date.now();
    const rows = [["STAGE", "KEY", "STATE", "OWNER", "LAST SEQ", "LAST INPUT", "LAG", "RESTARTS", "DLQ"]];
    for (const a of s.actors) {
      rows.push([a.stage, a.key, a.state, a.owner ?? "-", String(a.lastSeq), a.lastInputAt ? `${((now - a.lastInputAt) / 1000).toFixed(1)}s ago` : "-",
        a.lag === null ? "-" : String(a.lag), String(a.restarts), String(a.deadLetters)]);
    }
    const w = rows[0].map((_, i) => Math.max(...rows.map((r) => r[i].length)));
    for (const r of rows) process.stdout.write(r.map((c, i) => c.padEnd(w[i])).join("  ").trimEnd() + "\n");
    process.stdout.write(`\n${s.members.length} member(s): ${s.members.map((m) => `${m.id} [${m.stages.join(",")}]`).join("; ") || "none"}\n`);
  });
}

async function cmdBootstrap(flags: Flags): Promise<void> {
  await withNats(flags, "tickflow-bootstrap", async (nc, config) => {
    const r = await bootstrap(jetstream(nc), await jetstreamManager(nc), config.storage);
    for (const [k, list] of Object.entries(r)) if (list.length) process.stdout.write(`${k}: ${list.join(", ")}\n`);
  });
}

async function cmdPairs(args: string[], flags: Flags): Promise<void> {
  const [sub, ...rest] = args;
  await withNats(flags, "tickflow-pairs", async (nc, config) => {
    const js = jetstream(nc);
    await bootstrap(js, await jetstreamManager(nc), config.storage);
    if (sub === "add") {
      if (rest.length === 0) usage("pairs add needs at least one pair, e.g. pairs add BTC/USD");
      const pairs = rest.flatMap((p) => p.split(",")).filter(Boolean).map(normalizePair);
      await addPairs(js, pairs);
      process.stdout.write(`added: ${pairs.join(", ")}\n`);
    } else if (sub === "rm") {
      if (rest.length === 0) usage("pairs rm needs at least one pair");
      const pairs = rest.flatMap((p) => p.split(",")).filter(Boolean).map(normalizePair);
      await removePairs(js, pairs);
      process.stdout.write(`removed: ${pairs.join(", ")}\n`);
    } else if (sub === "ls" || sub === undefined) {
      for (const p of await listPairs(js)) process.stdout.write(`${p}\n`);
    } else usage(`unknown pairs subcommand "${sub}" (add, rm, ls)`);
  });
}

async function cmdActors(args: string[], flags: Flags): Promise<void> {
  const [sub, stage, pairArg] = args;
  if (sub !== "restart" || !stage || !pairArg) usage("usage: tickflow actors restart STAGE PAIR|KEY");
  // Any stage name: the runtime is generic, and a deployment may run stages this CLI does not know.
  if (!/^[a-z][a-z0-9_-]*$/.test(stage)) usage(`"${stage}" is not a stage name (stages: ${ALL_STAGES.join(", ")})`);
  // A plain key (a news source) as it is; anything else must be a pair.
  const actor = isPlainKey(pairArg) ? pairArg : normalizePair(pairArg);
  await withNats(flags, "tickflow-actors", async (nc) => {
    const kv = await openBuckets(jetstream(nc));
    const key = actorKey(stage, actor);
    await kv.leases.delete(key);
    process.stdout.write(`cleared ${key}: its owner will start it again\n`);
  });
}

export async function main(argv: string[]): Promise<void> {
  let parsed;
  try {
    parsed = parseArgs({ args: argv, options: OPTIONS, allowPositionals: true, strict: true });
  } catch (err) {
    usage((err as Error).message);
  }
  const { values: flags, positionals } = parsed;
  const [cmd, ...args] = positionals;
  if (flags.help || !cmd || cmd === "help") {
    process.stdout.write(HELP);
    return;
  }
  switch (cmd) {
    case "up": return cmdUp(flags);
    case "run": return cmdRun(flags);
    case "replay": return cmdReplayServe(args, flags);
    case "tail": return cmdTail(args, flags);
    case "status": return cmdStatus(flags);
    case "bootstrap": return cmdBootstrap(flags);
    case "pairs": return cmdPairs(args, flags);
    case "actors": return cmdActors(args, flags);
    default: usage(`unknown command "${cmd}"`);
  }
}

/** The process entry (bin/tickflow.js): runs a command and exits with 0, 1 (failure) or 2 (bad arguments). */
export function run(argv: string[]): void {
  main(argv).then(
    () => process.exit(0),
    (err) => {
      const e = err as Error & { code?: string };
      process.stderr.write(`tickflow: ${e.message}\n`);
      if (process.env.TICKFLOW_DEBUG) process.stderr.write(`${e.stack}\n`);
      process.exit(e.code === ErrorCode.BadArgs ? 2 : 1);
    },
  );
}
