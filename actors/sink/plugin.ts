// The sink's contribution to the `tickflow` CLI: `tickflow sink migrate` and `tickflow sink run`,
// and in `tickflow up` a sink when DATABASE_URL is set (dialect from SINK_DIALECT).
import type { CommandDef, Plugin } from "../../supervisor/plugin.js";
import { startHealthServer } from "../../supervisor/health.js";
import { connectNats, resolveNatsUrl } from "../../supervisor/nats.js";
import { jetstream, jetstreamManager } from "@nats-io/jetstream";
import { bootstrap } from "../../protocol/streams.js";
import { createPool, migrate, Sink } from "./sink.js";

/** How long `sink migrate` waits for the database before it gives up (and says so). */
const MIGRATE_DEADLINE_MS = 15_000;

export const sinkCommand: CommandDef = {
  name: "sink",
  maxArgs: 1,
  help: `  sink migrate | sink run [--nats URL]
      The RisingWave / PostgreSQL sink (DATABASE_URL; SINK_DIALECT risingwave|postgres; SINK_SCHEMA).
      migrate creates the schema and tables (safe to repeat); run writes candles, indicators,
      sentiment, predictions and outcomes from durable consumers, batched, upserted by key,
      acked after commit. Replicas of \`sink run\` share the work.`,
  async run(ctx) {
    const [sub] = ctx.args;
    const s = ctx.config.sink;
    if (sub !== "migrate" && sub !== "run") ctx.usage(`sink needs a subcommand: migrate or run (got "${sub ?? ""}")`);
    const pool = createPool(s, sub === "run" ? "tickflow-sink" : "tickflow-sink-migrate");
    try {
      if (sub === "migrate") {
        const deadline = new Promise<never>((_, reject) => setTimeout(
          () => reject(new Error(`sink migrate: no answer from the database at ${redact(s.databaseUrl)} within ${MIGRATE_DEADLINE_MS / 1000} s`)),
          MIGRATE_DEADLINE_MS).unref());
        const stmts = await Promise.race([migrate(pool, s.dialect, s.schema), deadline]);
        process.stdout.write(`sink migrate (${s.dialect}, schema ${s.schema}): ${stmts.length} statements applied\n`);
        return;
      }
      const url = resolveNatsUrl(ctx.flags.nats as string | undefined, ctx.config.natsUrl, ctx.config.dataDir);
      const nc = await connectNats(url, "tickflow-sink", ctx.config.natsAuth);
      // Kubernetes probes (TICKFLOW_HEALTH_PORT): live while NATS is connected, ready once consuming.
      let started = false;
      const health = ctx.config.health.port
        ? await startHealthServer({ port: ctx.config.health.port, host: ctx.config.health.host, nc, ready: () => started })
        : null;
      await bootstrap(jetstream(nc), await jetstreamManager(nc), ctx.config.storage);
      const sink = new Sink({ nc, settings: s, log: ctx.log, pool, codec: ctx.config.codec });
      await sink.start();
      started = true;
      process.stderr.write(`tickflow sink: ${s.dialect} ${redact(s.databaseUrl)} schema ${s.schema} · NATS ${url}${health ? ` · health :${health.port}` : ""}\n`);
      await ctx.stopSignal;
      started = false;
      await sink.stop();
      await health?.close();
      await nc.drain().catch(() => {});
    } finally {
      await pool.end().catch(() => {});
    }
  },
};

/** The URL without its password, for messages. */
export function redact(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = "***";
    return u.toString();
  } catch {
    return "(unparsable DATABASE_URL)";
  }
}

export const sinkPlugin: Plugin = {
  name: "sink",
  commands: [sinkCommand],
  upHelp: "      DATABASE_URL    set: up also migrates and runs the sink (SINK_DIALECT, SINK_SCHEMA)",
  async up(ctx) {
    const s = ctx.config.sink;
    if (!s.databaseUrl) return;
    const pool = createPool(s);
    await migrate(pool, s.dialect, s.schema);
    const sink = new Sink({ nc: ctx.nc, settings: s, log: ctx.log, pool, codec: ctx.config.codec });
    return {
      note: `sink → ${s.dialect} ${redact(s.databaseUrl)} (schema ${s.schema})`,
      async started() {
        await sink.start();
      },
      // up --once: every output of the run is in the database before the process exits.
      async drained(sup) {
        await sup.settle();
        await sink.idle();
      },
      async close() {
        await sink.stop();
        await pool.end().catch(() => {});
      },
    };
  },
};
