// The trades stage as the CLI sees it: the per-pair source actor, `tickflow replay serve`, and
// what `tickflow up` needs from it (live Kraken, or a local replay of recorded trades).
import { existsSync, readdirSync } from "node:fs";
import { join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import type { JetStreamClient } from "@nats-io/jetstream";
import type { Plugin, UpContext, UpContribution } from "../../supervisor/plugin.js";
import { pairsForPeople } from "../../protocol/pairs.js";
import { subjects } from "../../protocol/subjects.js";
import { lastPublishedTrade, tradesActor, TRADES_STAGE } from "./actor.js";
import { startKrakenReplayServer } from "./kraken-replay-server.js";
import { startReplayProcess } from "./replay-process.js";

const ROOT = resolve(fileURLToPath(new URL("../..", import.meta.url)));
/** Key in the shared map: the replay's last trade id per pair, after which the source ends (up --once). */
const END_OF_INPUT = "trades.endOfInput";

function parseSpeed(s: string | undefined, usage: (m: string) => never): number | "max" {
  if (s === undefined) return 1;
  if (s === "max") return "max";
  const n = Number(s);
  if (!Number.isFinite(n) || n <= 0) usage(`--speed must be a positive number or "max" (got "${s}")`);
  return n;
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

/** Points the Kraken client at a base URL such as http://127.0.0.1:9000 (WebSocket at /v2, REST at /0/public/Trades). */
export function krakenUrlsFrom(base: string): { wsUrl: string; restUrl: string } {
  const u = new URL(base);
  const http = u.protocol === "wss:" || u.protocol === "https:" ? "https:" : "http:";
  return { restUrl: `${http}//${u.host}`, wsUrl: `${http === "https:" ? "wss:" : "ws:"}//${u.host}/v2` };
}

/**
 * Until every pair's end-of-stream watermark is stored. A trades actor of this process says so in
 * its status (no request); for the others the stream is asked, one pair per poll.
 */
async function waitEndOfStream(js: JetStreamClient, pairs: string[], localEos: (pair: string) => boolean): Promise<void> {
  let left = pairs;
  while (left.length > 0) {
    const next: string[] = [];
    for (const pair of left) {
      if (localEos(pair)) continue;
      // A read that fails (a busy server) counts as "not yet": the next poll asks again.
      if (next.length === 0 && (await lastPublishedTrade(js, pair).catch(() => ({ eos: false }))).eos) continue;
      next.push(pair);
    }
    left = next;
    if (left.length > 0) await new Promise((r) => setTimeout(r, 100));
  }
}

async function up(ctx: UpContext): Promise<UpContribution> {
  const { flags, config, log } = ctx;
  const speed = parseSpeed(flags.speed as string | undefined, ctx.usage);
  let files = (flags.replay as string[] | undefined)?.map((f) => resolve(f));
  if (flags.once && !files) ctx.usage("--once needs --replay FILE… (a live feed never ends)");
  // --kraken-url (applied by configure) names the server to use: no reachability probe, no fallback.
  if (!files && !flags["kraken-url"] && !(await krakenReachable(config.kraken.restUrl))) {
    files = defaultReplayFiles();
    if (files.length === 0) throw new Error("Kraken is unreachable and there are no recorded trades in data/trades to replay");
    log.warn("Kraken is unreachable; replaying recorded trades from data/trades");
  }
  if (!files) return { note: `Kraken at ${config.kraken.wsUrl}` };
  // The clock starts once the trades actor of every pair this run follows has subscribed: with
  // thousands of actors starting, a pair subscribing after the start would get only a snapshot of
  // its recent trades, and its first ones would be missing. The grace only covers a pair whose
  // actor never comes (one that failed).
  const waitFor = ctx.pairs;
  const replay = await startReplayProcess({ files, host: "127.0.0.1", port: 0, speed, startWhen: "all-subscribed", startGraceMs: 120_000, waitFor });
  let closing = false;
  const died = replay.exited.then((why) => {
    if (closing) return new Promise<never>(() => {});
    const msg = `the replay server stopped (${why}) before the replay ended`;
    log.error(msg);
    throw new Error(msg);
  });
  died.catch(() => {});
  config.kraken.wsUrl = replay.wsUrl;
  config.kraken.restUrl = replay.restUrl;
  if (flags.once) ctx.shared.set(END_OF_INPUT, replay.lastTradeIds);
  const pairs = replay.pairs;
  // With --pairs, the run follows those of the recorded pairs only: their end is the replay's end.
  const followed = waitFor ? pairs.filter((p) => waitFor.includes(p)) : pairs;
  return {
    pairs,
    note: `replay of ${files.length} file(s) at speed ${speed} (${replay.wsUrl})`,
    drained: (sup) => Promise.race([waitEndOfStream(ctx.js, followed, (pair) => sup.cell(TRADES_STAGE, pair)?.status().detail.eos === true), died]),
    // Trades the sources have written to TRADES, of all the recorded ones of the followed pairs.
    progress: (sup) => ({
      done: sup.status().filter((s) => s.stage === TRADES_STAGE).reduce((n, s) => n + s.processed, 0),
      total: followed.reduce((a, p) => a + (replay.totals[p] ?? 0), 0),
      unit: "trades",
    }),
    close: () => {
      closing = true;
      return replay.close();
    },
  };
}

export const tradesPlugin: Plugin = {
  name: TRADES_STAGE,
  stages: [{
    stage: TRADES_STAGE,
    create: (ctx) => tradesActor({ endOfInput: ctx.shared.get(END_OF_INPUT) as Record<string, number> | undefined }),
    output: (pair) => ({ stream: "TRADES", subject: subjects.trades(pair) }),
  }],
  options: {
    replay: { type: "string", multiple: true },
    speed: { type: "string" },
    "kraken-url": { type: "string" },
    port: { type: "string" },
    host: { type: "string" },
  },
  upHelp: `      --replay FILE…  replay recorded trades (.jsonl/.jsonl.gz, Kraken v2 trade records) through a
                      local Kraken-protocol server; without it live Kraken when reachable, else
                      the files in data/trades. --speed N|max (1 = real time). --kraken-url URL
                      uses a Kraken-protocol server you run (e.g. \`tickflow replay serve\`).`,
  up,
  configure(flags, config) {
    if (flags["kraken-url"]) Object.assign(config.kraken, krakenUrlsFrom(flags["kraken-url"] as string));
  },
  commands: [{
    name: "replay",
    help: `  replay serve FILE… [--port N] [--host H] [--speed N|max]
      A local Kraken-protocol server replaying recorded trade files (.jsonl or .jsonl.gz).`,
    async run(ctx) {
      const [sub, ...rest] = ctx.args;
      if (sub !== "serve") ctx.usage("replay has one subcommand: replay serve FILE…");
      const files = [...rest, ...((ctx.flags.replay as string[] | undefined) ?? [])].map((f) => resolve(f));
      if (files.length === 0) ctx.usage("replay serve needs at least one recorded trade file");
      const port = ctx.flags.port === undefined ? 0 : Number(ctx.flags.port);
      if (!Number.isInteger(port) || port < 0 || port > 65535) ctx.usage(`--port must be 0–65535 (got "${ctx.flags.port}")`);
      // Workers that start together may subscribe seconds apart; the clock waits for every pair (or 15 s).
      const srv = await startKrakenReplayServer({
        files, port, host: (ctx.flags.host as string | undefined) ?? "127.0.0.1", speed: parseSpeed(ctx.flags.speed as string | undefined, ctx.usage),
        startWhen: "all-subscribed", startGraceMs: 15_000,
      });
      process.stdout.write(`${JSON.stringify({ wsUrl: srv.wsUrl, restUrl: srv.restUrl, pairs: srv.pairs })}\n`);
      // The pairs in full are in the JSON line above; a person reads a thousand of them as a count.
      const shown = pairsForPeople(srv.pairs);
      process.stderr.write(`replaying ${shown} · WebSocket ${srv.wsUrl} · REST ${srv.restUrl}/0/public/Trades\n`);
      await ctx.stopSignal;
      await srv.close();
    },
  }],
};
