// The `tickflow` command, generic over plugins: the commands every deployment has (up, run, tail,
// status, bootstrap, pairs, actors) plus whatever the plugins of the composition root
// (bin/stages.ts) add. This file knows no stage by name.
import { mkdirSync, rmSync, writeFileSync } from "node:fs";
import { hostname } from "node:os";
import { join, resolve } from "node:path";
import { parseArgs } from "node:util";
import { jetstream, jetstreamManager, type JetStreamClient } from "@nats-io/jetstream";
import type { NatsConnection } from "@nats-io/transport-node";
import { decodeMsg, jsonReplacer } from "../protocol/codec.js";
import { ErrorCode, TickflowError } from "../protocol/errors.js";
import { normalizePair, pairsForPeople, pairToToken } from "../protocol/pairs.js";
import { isPlainKey } from "./actor-key.js";
import { bootstrap, openBuckets } from "../protocol/streams.js";
import type { ActorDef } from "./actor.js";
import { loadConfig, type Config } from "./config.js";
import { addPairs, listPairs, removePairs } from "./desired-pairs.js";
import { needsAttention, stageCounts } from "./actor-summary.js";
import { actorMetrics, startHealthServer } from "./health.js";
import { connectNats, dropConsumer, EMBEDDED_URL_FILE, resolveNatsUrl } from "./nats.js";
import { NatsServer } from "./nats-server.js";
import type { CommandContext, CommandDef, Flags, OptionSpec, Plugin, StageContext, StageDef, UpContribution } from "./plugin.js";
import type { OutputOf } from "./status.js";
import { Supervisor } from "./runtime.js";
import { clusterStatus } from "./status.js";
import { startWorker, type Worker } from "./worker.js";
import { makeLogger } from "./log.js";
import { startProgress } from "./progress.js";

/** How long a one-shot command may wait on NATS before it gives up and says what it waited for. */
const DEFAULT_DEADLINE_MS = 30_000;

const CORE_OPTIONS: Record<string, OptionSpec> = {
  nats: { type: "string" },
  pairs: { type: "string" },
  once: { type: "boolean" },
  "data-dir": { type: "string" },
  stages: { type: "string" },
  id: { type: "string" },
  all: { type: "boolean" },
  limit: { type: "string" },
  follow: { type: "boolean", short: "f" },
  meta: { type: "boolean" },
  json: { type: "boolean" },
  problems: { type: "boolean" },
  config: { type: "string" },
  codec: { type: "string" },
  timeout: { type: "string" },
  "health-port": { type: "string" },
  help: { type: "boolean", short: "h" },
};

function usage(msg: string): never {
  throw new TickflowError(ErrorCode.BadArgs, `${msg}\nRun \`tickflow --help\` for usage.`);
}

function configFrom(flags: Flags, plugins: Plugin[]): Config {
  const config = loadConfig({
    file: flags.config as string | undefined,
    overrides: { codec: flags.codec, dataDir: flags["data-dir"], "health.port": flags["health-port"] === undefined ? undefined : Number(flags["health-port"]) },
  });
  for (const p of plugins) p.configure?.(flags, config);
  return config;
}

function parsePairs(s: string | undefined): string[] | undefined {
  if (s === undefined) return undefined;
  const list = s.split(",").map((p) => p.trim()).filter(Boolean);
  if (list.length === 0) usage("--pairs needs at least one pair, e.g. --pairs BTC/USD,ETH/USD");
  return list.map(normalizePair);
}

function deadlineMs(flags: Flags): number {
  if (flags.timeout === undefined) return DEFAULT_DEADLINE_MS;
  const s = Number(flags.timeout);
  if (!Number.isFinite(s) || s <= 0) usage(`--timeout must be a positive number of seconds (got "${flags.timeout}")`);
  return s * 1000;
}

/** Rejects with a message naming what was awaited when `p` takes longer than `ms`. */
export function withDeadline<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let t: NodeJS.Timeout;
  const timeout = new Promise<never>((_, reject) => {
    t = setTimeout(() => reject(new TickflowError(ErrorCode.Timeout, `timed out after ${(ms / 1000).toFixed(0)} s waiting for ${what}`)), ms);
  });
  return Promise.race([p, timeout]).finally(() => clearTimeout(t));
}

function stopSignal(): Promise<void> {
  return new Promise((resolveStop) => {
    let n = 0;
    const handler = () => {
      if (n++ > 0) process.exit(130);
      resolveStop();
    };
    process.on("SIGINT", handler);
    process.on("SIGTERM", handler);
  });
}

/** Test hook: act as if partitioned from every other member and take no leases (see Supervisor). */
const unsafeSplitBrain = () => process.env.TICKFLOW_UNSAFE_SPLIT_BRAIN === "1";

/**
 * node:util parseArgs takes one value per `--opt`; users write `--replay a.gz b.gz c.gz`. Values
 * that follow an option declared `multiple` are folded into repeated options, so the positionals
 * left over are really stray and can be rejected.
 */
export function expandMultiple(argv: string[], options: Record<string, OptionSpec>): string[] {
  const out: string[] = [];
  let multi: string | null = null;
  for (const a of argv) {
    if (a.startsWith("-")) {
      const name = a.replace(/^--?/, "").split("=")[0];
      multi = options[name]?.multiple ? name : null;
      out.push(a);
      continue;
    }
    if (multi && out[out.length - 1] !== `--${multi}`) out.push(`--${multi}`);
    out.push(a);
  }
  return out;
}

class Cli {
  readonly stages = new Map<string, { plugin: Plugin } & StageDef>();
  readonly commands = new Map<string, CommandDef>();
  readonly options: Record<string, OptionSpec> = { ...CORE_OPTIONS };

  constructor(readonly plugins: Plugin[]) {
    for (const p of plugins) {
      for (const s of p.stages ?? []) {
        if (this.stages.has(s.stage)) throw new Error(`stage "${s.stage}" is defined twice (plugins ${this.stages.get(s.stage)!.plugin.name} and ${p.name})`);
        this.stages.set(s.stage, { plugin: p, ...s });
      }
      for (const [k, v] of Object.entries(p.options ?? {})) {
        const have = this.options[k];
        if (have && (have.type !== v.type || !!have.multiple !== !!v.multiple)) throw new Error(`option --${k} of plugin ${p.name} clashes with another definition`);
        this.options[k] = v;
      }
    }
    for (const c of this.core()) this.commands.set(c.name, c);
    for (const p of plugins) {
      for (const c of p.commands ?? []) {
        if (this.commands.has(c.name)) throw new Error(`command "${c.name}" of plugin ${p.name} is defined twice`);
        this.commands.set(c.name, c);
      }
    }
  }

  stageNames(): string[] {
    return [...this.stages.keys()];
  }

  /** Stages whose actors are not one per pair (keyed otherwise, or pools). */
  notPerPair(): string[] {
    return [...this.stages.values()].filter((s) => (s.keyedBy ?? "pair") !== "pair").map((s) => s.stage);
  }

  outputs(): Record<string, OutputOf> {
    const out: Record<string, OutputOf> = {};
    for (const [name, s] of this.stages) if (s.output) out[name] = s.output;
    return out;
  }

  stageDefs(names: string[], ctx: StageContext): ActorDef[] {
    return names.map((n) => {
      const s = this.stages.get(n);
      if (!s) usage(`unknown stage "${n}" (stages: ${this.stageNames().join(", ")})`);
      return s.create(ctx);
    });
  }

  help(): string {
    const upHelp = this.plugins.map((p) => p.upHelp).filter(Boolean).join("\n");
    return `tickflow — real-time crypto market data and prediction on NATS JetStream

Usage: tickflow <command> [options]

Commands:
${[...this.commands.values()].map((c) => c.help.replace("{UP_PLUGINS}", upHelp).replace("{STAGES}", this.stageNames().join(", "))).join("\n")}

Common options:
  --nats URL        NATS server (default: NATS_URL, then the server of a running \`tickflow up\`
                    in --data-dir, then nats://127.0.0.1:4222)
  --timeout S       deadline in seconds for one-shot commands that wait on NATS (default 30)
  --config FILE     JSON config file (also TICKFLOW_CONFIG); see README for every setting
  --codec C         msgpack (default) or json
  --data-dir DIR    local state directory (default .tickflow)
  -h, --help        this help
`;
  }

  context(args: string[], flags: Flags): CommandContext {
    const config = configFrom(flags, this.plugins);
    const log = makeLogger(config);
    const ms = deadlineMs(flags);
    return {
      args, flags, config, log, usage, stopSignal: stopSignal(),
      async withNats<T>(name: string, fn: (nc: NatsConnection, js: JetStreamClient) => Promise<T>): Promise<T> {
        const url = resolveNatsUrl(flags.nats as string | undefined, config.natsUrl, config.dataDir);
        const nc = await withDeadline(connectNats(url, name, config.natsAuth), ms, `a connection to NATS at ${url}`);
        try {
          return await fn(nc, jetstream(nc));
        } finally {
          await withDeadline(nc.drain(), 5000, "the NATS connection to drain").catch(() => nc.close());
        }
      },
    };
  }

  private core(): CommandDef[] {
    const cli = this;
    const oneShot = (what: string, ctx: CommandContext, fn: (nc: NatsConnection, js: JetStreamClient) => Promise<void>) =>
      withDeadline(ctx.withNats(`tickflow-${what}`, fn), deadlineMs(ctx.flags), `${what} to finish (NATS answered too slowly)`);
    return [
      {
        name: "up", maxArgs: 0,
        help: `  up [--nats URL] [--pairs P,…] [--once] [--data-dir DIR] [plugin options]
      The whole system in one process. Without --nats / NATS_URL it starts an embedded
      nats-server (from PATH; store in <data-dir>/nats) and stops it on exit. --pairs defaults
      to the pairs of the inputs (replay files; live: BTC/USD,ETH/USD). --once (bounded inputs
      only) exits when every input is fully processed and every output is published.
{UP_PLUGINS}`,
        run: (ctx) => cli.up(ctx),
      },
      {
        name: "run", maxArgs: 0,
        help: `  run --stages S,… [--id NAME] [--nats URL] [--kraken-url URL] [--health-port N]
      A worker for some stages ({STAGES}); run several against one NATS and
      every (stage, key) runs in exactly one of them. --kraken-url is the base of a
      Kraken-protocol server (e.g. one from \`tickflow replay serve\`). --health-port (also
      TICKFLOW_HEALTH_PORT) serves /healthz (NATS connected), /readyz (supervisor ready)
      and /metrics over HTTP for Kubernetes probes.`,
        run: (ctx) => cli.runWorker(ctx),
      },
      {
        name: "tail", maxArgs: 1,
        help: `  tail SUBJECT [--all] [--limit N] [--follow] [--meta] [--nats URL]
      Decoded messages as JSON lines: the last N (default 10), or with --all every message from
      the start of the stream; exits when none are pending unless --follow.`,
        run: (ctx) => tail(ctx),
      },
      {
        name: "status", maxArgs: 0,
        help: `  status [--json] [--stages S,…] [--problems] [--nats URL]
      Every actor: stage, key, state, owner, last input sequence and time, lag, restarts,
      dead letters, then a line per stage (actors by state, restarts, dead letters).
      --stages: only those stages. --problems: only actors not running, or with restarts or
      dead letters. --json prints {"actors": [...], "members": [...]}.`,
        run: (ctx) => oneShot("status", ctx, (nc) => status(nc, ctx, cli.stageNames(), cli.outputs(), cli.notPerPair())),
      },
      {
        name: "bootstrap", maxArgs: 0,
        help: "  bootstrap [--nats URL]             Create or update the streams and KV buckets.",
        run: (ctx) => oneShot("bootstrap", ctx, async (nc, js) => {
          const r = await bootstrap(js, await jetstreamManager(nc), ctx.config.storage);
          for (const [k, list] of Object.entries(r)) if (list.length) process.stdout.write(`${k}: ${list.join(", ")}\n`);
        }),
      },
      {
        name: "pairs",
        help: "  pairs add P… | rm P… | ls         Desired pairs (the tf_pairs bucket); actors follow.",
        run: (ctx) => oneShot("pairs", ctx, (nc, js) => pairs(ctx, nc, js)),
      },
      {
        name: "actors", maxArgs: 3,
        help: "  actors restart STAGE KEY           Clear a failed actor so it starts again.",
        run: (ctx) => {
          const [sub, stage, keyArg] = ctx.args;
          if (sub !== "restart" || !stage || !keyArg) usage("usage: tickflow actors restart STAGE KEY");
          // Any stage name: the runtime is generic, and a deployment may run stages this CLI does not know.
          if (!/^[a-z][a-z0-9_-]*$/.test(stage)) usage(`"${stage}" is not a stage name (stages: ${cli.stageNames().join(", ")})`);
          // A plain key (lower case: a news source such as rss-coindesk) as it is; otherwise a pair (BTC/USD, BTC-USD).
          const key = isPlainKey(keyArg) ? keyArg : pairToToken(normalizePair(keyArg));
          return oneShot("actors", ctx, async (_nc, js) => {
            const kv = await openBuckets(js);
            await kv.leases.delete(`${stage}.${key}`);
            process.stdout.write(`cleared ${stage}.${key}: its owner will start it again\n`);
          });
        },
      },
    ];
  }

  private async up(ctx: CommandContext): Promise<void> {
    const { flags, config, log } = ctx;
    let natsUrl = (flags.nats as string | undefined) ?? config.natsUrl;
    let server: NatsServer | null = null;
    mkdirSync(config.dataDir, { recursive: true });
    if (!natsUrl) {
      // Its own process group: Ctrl-C must reach `up` only, which stops its actors (they checkpoint
      // through this server) and then the server.
      server = await NatsServer.start({ storeDir: resolve(config.dataDir, "nats"), ownProcessGroup: true });
      natsUrl = server.url;
      writeFileSync(join(config.dataDir, EMBEDDED_URL_FILE), natsUrl + "\n");
      if (server.leftoverStopped !== null) {
        process.stderr.write(`tickflow up: stopped the nats-server (pid ${server.leftoverStopped}) that an earlier up left running on ${server.storeDir} (it did not stop cleanly)\n`);
      }
      log.info({ url: natsUrl }, "embedded nats-server started");
    }
    const contributions: UpContribution[] = [];
    let nc: NatsConnection | null = null;
    let worker: Awaited<ReturnType<typeof startWorker>> | null = null;
    const shutdown = async () => {
      await worker?.stop();
      for (const c of contributions.reverse()) await c.close?.().catch((err) => log.warn({ err: (err as Error).message }, "plugin shutdown failed"));
      await nc?.drain().catch(() => {});
      await server?.stop();
      if (server) rmSync(join(config.dataDir, EMBEDDED_URL_FILE), { force: true });
    };
    try {
      nc = await withDeadline(connectNats(natsUrl, "tickflow-up", config.natsAuth), deadlineMs(flags), `a connection to NATS at ${natsUrl}`);
      const js = jetstream(nc);
      await bootstrap(js, await jetstreamManager(nc), config.storage);
      const shared = new Map<string, unknown>();
      const given = parsePairs(flags.pairs as string | undefined);
      for (const p of this.plugins) {
        const c = await p.up?.({ flags, config, log, nc, js, shared, pairs: given, usage });
        if (c) contributions.push(c);
      }
      const pairList = given ?? [...new Set(contributions.flatMap((c) => c.pairs ?? []))];
      if (pairList.length === 0) pairList.push("BTC/USD", "ETH/USD");
      const names = flags.stages ? (flags.stages as string).split(",").map((s) => s.trim()).filter(Boolean) : this.stageNames();
      const defs = this.stageDefs(names, { config, log, bounded: !!flags.once, shared });
      worker = await startWorker({ nc, config, log, id: `up-${hostname()}`, stages: defs, ignoreLeases: unsafeSplitBrain() });
      await addPairs(js, pairList);
      const notes = contributions.map((c) => c.note).filter(Boolean);
      process.stderr.write(`tickflow up: NATS ${natsUrl} · ${pairList.length <= 8 ? `pairs ${pairsForPeople(pairList)}` : pairsForPeople(pairList)}${notes.length ? ` · ${notes.join(" · ")}` : ""}\n`);
      for (const c of contributions) await c.started?.(worker.sup);
      if (flags.once) {
        const sup = worker.sup;
        const source = contributions.find((c) => c.progress);
        const bar = source ? startProgress({ label: "tickflow up", sample: () => source.progress!(sup) }) : null;
        // Ctrl-C (or SIGTERM) while the inputs are being processed stops the run as it would stop
        // a live `up`: the actors checkpoint what they applied and the embedded server stops. It
        // was not listened to until the inputs were done, so at hundreds of pairs, with trainings
        // due, a Ctrl-C went unanswered for minutes (and a second one exited without a checkpoint).
        const processed = (async () => {
          for (const c of contributions) await c.drained?.(sup);
          await sup.settle();
          return true;
        })();
        let finished: boolean;
        try {
          finished = await Promise.race([processed, ctx.stopSignal.then(() => false)]);
        } finally {
          bar?.stop();
        }
        // Interrupted: the wait is left behind (shutdown ends what it waits on; the process exits after).
        processed.catch(() => {});
        const p = finished ? null : source?.progress?.(sup);
        await shutdown();
        if (!finished) {
          process.stderr.write(`tickflow up: interrupted before every input was processed${p ? ` (${p.done} of ${p.total} ${p.unit})` : ""}; the actors stopped with their checkpoints saved\n`);
          process.exitCode = 130;
          return;
        }
        process.stderr.write(`tickflow up: inputs processed for ${pairList.length} pair(s)\n`);
        return;
      }
    } catch (err) {
      await shutdown().catch(() => {});
      throw err;
    }
    await ctx.stopSignal;
    await shutdown();
  }

  private async runWorker(ctx: CommandContext): Promise<void> {
    const { flags, config, log } = ctx;
    const names = ((flags.stages as string | undefined) ?? "").split(",").map((s) => s.trim()).filter(Boolean);
    if (names.length === 0) usage(`run needs --stages, e.g. --stages ${this.stageNames().join(",")}`);
    const defs = this.stageDefs(names, { config, log, bounded: false, shared: new Map() });
    const url = resolveNatsUrl(flags.nats as string | undefined, config.natsUrl, config.dataDir);
    const id = (flags.id as string | undefined) ?? Supervisor.defaultId();
    const nc = await withDeadline(connectNats(url, `tickflow-${id}`, config.natsAuth), deadlineMs(flags), `a connection to NATS at ${url}`);
    // The probe endpoint listens before the worker starts: liveness holds during a slow start, readiness waits for it.
    let worker: Worker | null = null;
    const health = config.health.port
      ? await startHealthServer({
        port: config.health.port, host: config.health.host, nc,
        ready: () => worker?.sup.isReady() ?? false,
        metrics: () => actorMetrics(id, worker?.sup.status() ?? [], config.metrics.perActor),
      })
      : null;
    worker = await startWorker({ nc, config, log, id, stages: defs, ignoreLeases: unsafeSplitBrain() });
    process.stderr.write(`tickflow run: member ${id} · stages ${names.join(",")} · NATS ${url}${health ? ` · health :${health.port}` : ""}\n`);
    await ctx.stopSignal;
    await worker.stop();
    await health?.close();
    await nc.drain().catch(() => {});
  }
}

async function tail(ctx: CommandContext): Promise<void> {
  const { flags } = ctx;
  const subject = ctx.args[0];
  if (!subject) usage("tail needs a SUBJECT, e.g. tickflow tail md.candles.1m.BTC-USD --all");
  const limit = flags.limit === undefined ? (flags.all ? Infinity : 10) : Number(flags.limit);
  if (!(limit === Infinity || (Number.isInteger(limit) && limit > 0))) usage(`--limit must be a positive whole number (got "${flags.limit}")`);
  const ms = deadlineMs(flags);
  await ctx.withNats("tickflow-tail", async (nc, js) => {
    const jsm = await withDeadline(jetstreamManager(nc), ms, "JetStream to answer");
    const stream = await withDeadline(jsm.streams.find(subject), ms, `the stream that holds ${subject}`).catch((err) =>
      (err as TickflowError).code === ErrorCode.Timeout ? Promise.reject(err) : usage(`no stream holds subject "${subject}"`));
    const consumer = await js.consumers.get(stream, { filter_subjects: subject });
    // Deleted when done: a tail's consumer would otherwise stay on the server for five minutes.
    try {
      const total = (await withDeadline(consumer.info(), ms, `consumer info on ${stream}`)).num_pending;
      // Without --all only the last `limit` are printed; with --all and --limit, the first `limit`.
      let skip = flags.all ? 0 : Math.max(0, total - (limit === Infinity ? total : limit));
      let printed = 0;
      if (total === 0 && !flags.follow) return;
      const iter = await consumer.consume({ max_messages: 1000 });
      // Without --follow the messages counted above must arrive; a stall past the deadline is an error, not a hang.
      let last = Date.now();
      const watchdog = flags.follow ? null : setInterval(() => {
        if (Date.now() - last > ms) iter.stop(new TickflowError(ErrorCode.Timeout, `timed out after ${ms / 1000} s waiting for messages of ${subject} (${printed + skip} of ${total} read)`));
      }, 500);
      try {
        for await (const m of iter) {
          last = Date.now();
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
        const closed = await iter.closed();
        if (closed instanceof Error) throw closed;
      } finally {
        if (watchdog) clearInterval(watchdog);
        iter.stop();
      }
    } finally {
      await dropConsumer(consumer);
    }
  });
}

async function status(nc: NatsConnection, ctx: CommandContext, stages: string[], outputs: Record<string, OutputOf>, notPerPair: string[]): Promise<void> {
  // Thousands of actors at a thousand pairs: narrowed to some stages, or to what needs a look.
  const only = ctx.flags.stages ? (ctx.flags.stages as string).split(",").map((x) => x.trim()).filter(Boolean) : null;
  for (const st of only ?? []) if (!stages.includes(st)) usage(`status --stages: unknown stage "${st}" (stages: ${stages.join(", ")})`);
  const s = await clusterStatus(nc, stages, { outputs, notPerPair });
  const ofStages = only ? s.actors.filter((a) => only.includes(a.stage)) : s.actors;
  const shown = ctx.flags.problems ? ofStages.filter(needsAttention) : ofStages;
  if (ctx.flags.json) {
    process.stdout.write(JSON.stringify({ ...s, actors: shown }, null, 2) + "\n");
    return;
  }
  const now = Date.now();
  const rows = [["STAGE", "KEY", "STATE", "OWNER", "LAST SEQ", "LAST INPUT", "LAG", "RESTARTS", "DLQ"]];
  for (const a of shown) {
    rows.push([a.stage, a.key, a.state, a.owner ?? "-", String(a.lastSeq), a.lastInputAt ? `${((now - a.lastInputAt) / 1000).toFixed(1)}s ago` : "-",
      a.lag === null ? "-" : String(a.lag), String(a.restarts), String(a.deadLetters)]);
  }
  const w = rows[0].map((_, i) => Math.max(...rows.map((r) => r[i].length)));
  for (const r of rows) process.stdout.write(r.map((c, i) => c.padEnd(w[i])).join("  ").trimEnd() + "\n");
  process.stdout.write("\n" + stageSummary(ofStages).join("\n") + "\n");
  process.stdout.write(`\n${s.members.length} member(s): ${s.members.map((m) => `${m.id} [${m.stages.join(",")}]`).join("; ") || "none"}\n`);
}

/** A line per stage: its actors by state, and their restarts and dead letters (e.g. `candles  999 actors: 998 running, 1 failed · 3 restarts`). */
export function stageSummary(actors: { stage: string; state: string; restarts: number; deadLetters: number }[]): string[] {
  const by = Object.entries(stageCounts(actors));
  const w = Math.max(0, ...by.map(([k]) => k.length));
  return by.map(([stage, x]) => {
    const states = Object.entries(x.states).sort((p, q) => q[1] - p[1]).map(([st, n]) => `${n} ${st}`).join(", ");
    const extra = [x.restarts ? `${x.restarts} restart${x.restarts === 1 ? "" : "s"}` : "", x.deadLetters ? `${x.deadLetters} dead letter${x.deadLetters === 1 ? "" : "s"}` : ""].filter(Boolean);
    return `${stage.padEnd(w)}  ${x.actors} actor${x.actors === 1 ? "" : "s"}: ${states}${extra.length ? ` · ${extra.join(" · ")}` : ""}`;
  });
}

async function pairs(ctx: CommandContext, nc: NatsConnection, js: JetStreamClient): Promise<void> {
  const [sub, ...rest] = ctx.args;
  await bootstrap(js, await jetstreamManager(nc), ctx.config.storage);
  if (sub === "add") {
    if (rest.length === 0) usage("pairs add needs at least one pair, e.g. pairs add BTC/USD");
    const list = rest.flatMap((p) => p.split(",")).filter(Boolean).map(normalizePair);
    await addPairs(js, list);
    process.stdout.write(`added: ${pairsForPeople(list)}\n`);
  } else if (sub === "rm") {
    if (rest.length === 0) usage("pairs rm needs at least one pair");
    const list = rest.flatMap((p) => p.split(",")).filter(Boolean).map(normalizePair);
    await removePairs(js, list);
    process.stdout.write(`removed: ${pairsForPeople(list)}\n`);
  } else if (sub === "ls" || sub === undefined) {
    if (rest.length > 0) usage(`pairs ls takes no arguments (got "${rest.join(" ")}")`);
    for (const p of await listPairs(js)) process.stdout.write(`${p}\n`);
  } else usage(`unknown pairs subcommand "${sub}" (add, rm, ls)`);
}

export async function main(argv: string[], plugins: Plugin[]): Promise<void> {
  const cli = new Cli(plugins);
  let parsed;
  try {
    parsed = parseArgs({ args: expandMultiple(argv, cli.options), options: cli.options as never, allowPositionals: true, strict: true });
  } catch (err) {
    usage((err as Error).message);
  }
  const flags = parsed.values as Flags;
  const [cmd, ...args] = parsed.positionals;
  if (flags.help || !cmd || cmd === "help") {
    process.stdout.write(cli.help());
    return;
  }
  const def = cli.commands.get(cmd);
  if (!def) usage(`unknown command "${cmd}" (commands: ${[...cli.commands.keys()].join(", ")})`);
  if (def.maxArgs !== undefined && args.length > def.maxArgs) {
    usage(`${cmd} does not take ${def.maxArgs === 0 ? "positional arguments" : `more than ${def.maxArgs} argument(s)`}: unexpected "${args.slice(def.maxArgs).join(" ")}"`);
  }
  await def.run(cli.context(args, flags));
}

/** The process entry (bin/tickflow.js): runs a command and exits with 0, 1 (failure) or 2 (bad arguments). */
export function run(argv: string[], plugins: Plugin[]): void {
  // A reader that went away (`tickflow tail … --follow | head`): stop quietly, as Unix tools do.
  for (const out of [process.stdout, process.stderr]) {
    out.on("error", (err: NodeJS.ErrnoException) => {
      if (err.code === "EPIPE") process.exit(0);
      throw err;
    });
  }
  main(argv, plugins).then(
    () => exitWhenWritten(Number(process.exitCode ?? 0)),
    (err) => {
      const e = err as Error & { code?: string };
      process.stderr.write(`tickflow: ${e.message}\n`);
      if (process.env.TICKFLOW_DEBUG) process.stderr.write(`${e.stack}\n`);
      exitWhenWritten(e.code === ErrorCode.BadArgs ? 2 : 1);
    },
  );
}

/**
 * Exits once stdout and stderr have handed everything to the OS. Into a pipe, a write the pipe
 * cannot take at once waits in the process, and process.exit() dropped it: `tickflow status
 * --json | jq` at 1,000 pairs got 192 KB of 2.5 MB. An empty write's callback comes after every
 * write before it (or with the error of a reader that went away).
 */
function exitWhenWritten(code: number): void {
  let left = 2;
  const done = () => {
    if (--left === 0) process.exit(code);
  };
  process.stdout.write("", done);
  process.stderr.write("", done);
}
