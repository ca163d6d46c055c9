// CLI: `tickflow train …` and `tickflow models ls|show|promote|rollback`.
import type { CommandContext, CommandDef } from "../../supervisor/plugin.js";
import { normalizePair } from "../../protocol/pairs.js";
import { timeframeMs } from "../../protocol/timeframes.js";
import { indicatorsOf, readCandleFile } from "../ml/mod.js";
import { promote, rollback, type RegistryRecord } from "./registry-record.js";
import { Registry } from "./registry.js";
import { readIndicators, readSentiment } from "./stream-data.js";
import { runTraining, type TrainInput } from "./train-run.js";

/** Where commands write: stdout for results, stderr for progress (tests pass their own). */
export type CommandIo = { out(s: string): void; err(s: string): void };
export const STDIO: CommandIo = { out: (s) => void process.stdout.write(s), err: (s) => void process.stderr.write(s) };

/** How long `train` waits for its stream reads before it gives up (it says what it waited for). */
const STREAM_READ_DEADLINE_MS = 120_000;

function parseTime(s: string, flag: string, ctx: CommandContext): number {
  const t = /^[0-9]+$/.test(s) ? Number(s) : Date.parse(s);
  if (!Number.isFinite(t)) ctx.usage(`--${flag}: "${s}" is neither an ISO time (2023-04-01T00:00:00Z) nor milliseconds since 1970`);
  return t;
}

function horizonOf(ctx: CommandContext): string {
  const h = (ctx.flags.horizon as string | undefined) ?? ctx.config.ml.horizons[0];
  try {
    timeframeMs(h);
  } catch (err) {
    ctx.usage(`--horizon: ${(err as Error).message}`);
  }
  return h;
}

function pairOf(ctx: CommandContext, s: string | undefined, what: string): string {
  if (!s) ctx.usage(`${what}: a pair is required (e.g. BTC/USDT)`);
  try {
    return normalizePair(s);
  } catch (err) {
    return ctx.usage(`${what}: ${(err as Error).message}`);
  }
}

export const trainCommand = (io: CommandIo = STDIO): CommandDef => ({
  name: "train",
  help: `  train --pair P [--candles FILE | --from T --to T] [--horizon 5m] [--json] [--nats URL]
      Trains and validates models for one pair (walk-forward folds with an embargo; persistence,
      ridge and gradient-boosted trees with a small hyper-parameter search), exports the best to
      ONNX, records the run and the version in tf_models / tf_artifacts, and promotes it only if
      it beats persistence and the champion (Diebold–Mariano p < ml.alpha). Data: a candle file
      (gzip CSV open_time_ms,open,high,low,close,volume; indicators by the indicators stage's own
      engine) or the INDICATORS stream between --from and --to (ISO or ms). Progress on stderr.`,
  async run(ctx) {
    const pair = pairOf(ctx, ctx.flags.pair as string | undefined, "train --pair");
    const horizon = horizonOf(ctx);
    const file = ctx.flags.candles as string | undefined;
    const from = ctx.flags.from !== undefined ? parseTime(ctx.flags.from as string, "from", ctx) : undefined;
    const to = ctx.flags.to !== undefined ? parseTime(ctx.flags.to as string, "to", ctx) : undefined;
    if (file && (from !== undefined || to !== undefined)) ctx.usage("train: give either --candles FILE or --from/--to, not both");
    const progress = (m: string) => io.err(`train: ${m}\n`);
    await ctx.withNats("tickflow-train", async (_nc, js) => {
      const reg = await Registry.open(js);
      let data: TrainInput;
      if (file) {
        progress(`reading ${file}`);
        let candles;
        try {
          candles = readCandleFile(file, timeframeMs(ctx.config.ml.timeframe));
        } catch (err) {
          ctx.usage(`train --candles: ${(err as Error).message}`);
        }
        data = { inputs: indicatorsOf(candles!), sentiment: [], source: `file:${file}` };
      } else {
        const range = { fromMs: from, toMs: to, deadlineMs: STREAM_READ_DEADLINE_MS };
        progress(`reading md.indicators.${ctx.config.ml.timeframe} and md.sentiment of ${pair} from the INDICATORS and SENTIMENT streams (deadline ${STREAM_READ_DEADLINE_MS / 1000} s)`);
        const { inputs, skipped } = await readIndicators(js, pair, ctx.config.ml.timeframe, range);
        const sentiment = await readSentiment(js, pair, range);
        if (skipped) progress(`${skipped} indicator records skipped (invalid or repeated)`);
        data = { inputs, sentiment, source: `stream:INDICATORS${from !== undefined ? ` from ${new Date(from).toISOString()}` : ""}${to !== undefined ? ` to ${new Date(to).toISOString()}` : ""}` };
      }
      const run = await runTraining(reg, { pair, horizon, data, settings: ctx.config.ml, trigger: "cli", progress });
      if (ctx.flags.json) io.out(`${JSON.stringify(run)}\n`);
      else {
        io.out(`run ${run.run_id}: ${run.status}: ${run.message}\n`);
        for (const c of run.candidates) io.out(`  ${c.name.padEnd(12)} mae ${fmt(c.mae)}  ratio to persistence ${fmt(c.mae_ratio)}  hit rate ${fmt(c.hit_rate)}  DM p ${fmt(c.dm_pvalue)}\n`);
        io.out(`champion: ${run.champion}\n`);
      }
    });
  },
});

function fmt(x: number | null): string {
  return x === null || !Number.isFinite(x) ? "-" : Math.abs(x) < 0.01 ? x.toExponential(3) : x.toFixed(4);
}

function table(rows: string[][]): string {
  const w = rows[0].map((_, i) => Math.max(...rows.map((r) => r[i].length)));
  return rows.map((r) => r.map((c, i) => c.padEnd(w[i])).join("  ").trimEnd()).join("\n") + "\n";
}

function showText(r: RegistryRecord): string {
  const c = r.champion;
  let s = `${r.pair} ${r.horizon}: champion ${c.name} v${c.version} (${c.reason})\n`;
  s += `  walk-forward: mae ${fmt(c.mae)}  mae_persistence ${fmt(c.mae_persistence)}  mae_ratio ${fmt(c.mae_ratio)}  hit_rate ${fmt(c.hit_rate)}  dm_pvalue ${fmt(c.dm_pvalue)}\n`;
  if (r.versions.length) {
    s += "\nversions:\n" + table([["VERSION", "MODEL", "MAE_RATIO", "HIT_RATE", "DM_P", "GATE", "DATA"],
      ...r.versions.map((v) => [`v${v.version}`, v.name, fmt(v.metrics.mae_ratio), fmt(v.metrics.hit_rate), fmt(v.metrics.dm_pvalue), v.gate.promote ? "passed" : "failed",
        `${v.data.rows} rows ${v.data.from_ms ? new Date(v.data.from_ms).toISOString().slice(0, 16) : "?"}..${v.data.to_ms ? new Date(v.data.to_ms).toISOString().slice(0, 16) : "?"}`])]);
  }
  if (r.runs.length) {
    s += "\nruns:\n" + table([["RUN", "STARTED", "TRIGGER", "STATUS", "BEST", "MAE_RATIO", "DM_P", "PROMOTED", "SECONDS"],
      ...r.runs.map((x) => {
        const b = x.candidates.find((c) => c.name === x.best);
        return [x.run_id, x.started_at.slice(0, 19), x.trigger, x.status, x.best ? `${x.best} v${x.version}` : "-", fmt(b?.mae_ratio ?? null), fmt(b?.dm_pvalue ?? null), x.promoted ? "yes" : "no", (x.duration_ms / 1000).toFixed(1)];
      })]);
  }
  return s;
}

export const modelsCommand = (io: CommandIo = STDIO): CommandDef => ({
  name: "models",
  help: `  models ls | show PAIR [--json] | promote PAIR VERSION | rollback PAIR   [--horizon 5m]
      The model registry (KV tf_models): champions, versions and recorded runs with their
      walk-forward metrics (mae, mae_persistence, mae_ratio, hit_rate, dm_pvalue). promote makes
      a registered version (0 = persistence) the champion by hand; rollback returns to the
      previous champion. Predictors swap models at their next input after the change.`,
  async run(ctx) {
    const [sub, ...rest] = ctx.args;
    if (!sub || !["ls", "show", "promote", "rollback"].includes(sub)) ctx.usage("models: expected ls, show, promote or rollback");
    const horizon = horizonOf(ctx);
    await ctx.withNats("tickflow-models", async (_nc, js) => {
      const reg = await Registry.open(js);
      if (sub === "ls") {
        const rows: string[][] = [["PAIR", "HORIZON", "CHAMPION", "MAE_RATIO", "DM_P", "VERSIONS", "RUNS", "LAST RUN"]];
        const all: RegistryRecord[] = [];
        for (const k of await reg.list()) {
          const { record: r } = await reg.get(k.pair, k.horizon);
          all.push(r);
          const last = r.runs[r.runs.length - 1];
          rows.push([r.pair, r.horizon, `${r.champion.name} v${r.champion.version}`, fmt(r.champion.mae_ratio), fmt(r.champion.dm_pvalue), String(r.versions.length), String(r.runs.length), last ? `${last.started_at.slice(0, 19)} ${last.status}` : "-"]);
        }
        io.out(ctx.flags.json ? `${JSON.stringify(all.map((r) => ({ pair: r.pair, horizon: r.horizon, champion: r.champion, versions: r.versions.length, runs: r.runs.length })))}\n` : rows.length > 1 ? table(rows) : "no models registered (tickflow train --pair P …)\n");
        return;
      }
      const pair = pairOf(ctx, rest[0], `models ${sub}`);
      if (sub === "show") {
        const { record, revision } = await reg.get(pair, horizon);
        if (revision === 0 && !ctx.flags.json) io.out(`${pair} ${horizon}: nothing trained yet; persistence serves\n`);
        else io.out(ctx.flags.json ? `${JSON.stringify(record, null, 2)}\n` : showText(record));
        return;
      }
      let change: (r: RegistryRecord) => RegistryRecord;
      if (sub === "promote") {
        const v = Number(rest[1]);
        if (!Number.isInteger(v) || v < 0) ctx.usage(`models promote ${pair}: VERSION must be a version number (0 = persistence), got "${rest[1] ?? ""}"`);
        change = (r) => promote(r, v, "manual promote");
      } else change = (r) => rollback(r);
      let rec: RegistryRecord;
      try {
        rec = await reg.update(pair, horizon, change);
      } catch (err) {
        if (err instanceof RangeError) ctx.usage(err.message);
        throw err;
      }
      io.out(`${pair} ${horizon}: champion is now ${rec.champion.name} v${rec.champion.version} (${rec.champion.reason})\n`);
    });
  },
});
