// Replay server memory: the server runs in a process of its own, replaying a many-pair file at speed
// "max" to the production KrakenTradeFeed (this process) subscribed to every pair; its peak RSS is
// what counts. A reference file 50× shorter, replayed in the same run, shows whether memory grows
// with the file's length (it must not: a 5-million-trade replay in ≤ 300 MB).
//
//   npx tsx bench/replay-memory.ts [--pairs 300] [--trades 5000000] [--replay-limit N]
// --replay-limit stops the replay after N trades (the first pass always reads the whole file).
import { spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { createInterface } from "node:readline";
import { parseArgs } from "node:util";
import { fileURLToPath } from "node:url";
import { KrakenTradeFeed } from "../actors/trades/kraken-ws-client.js";
import { startKrakenReplayServer } from "../actors/trades/kraken-replay-server.js";
import { writeManyPairFile } from "./many-pairs-file.js";

const SELF = fileURLToPath(import.meta.url);

/** Child mode: serve `file`, report peak RSS on SIGTERM. */
async function serve(file: string): Promise<void> {
  let peak = 0;
  const sample = setInterval(() => (peak = Math.max(peak, process.memoryUsage().rss)), 100);
  const t0 = Date.now();
  const srv = await startKrakenReplayServer({ files: [file], speed: "max", startWhen: "all-subscribed", startGraceMs: 60_000 });
  const total = Object.values(srv.lastTradeIds).reduce((a, b) => a + b, 0); // ids are 1..n per pair
  process.stdout.write(`${JSON.stringify({ wsUrl: srv.wsUrl, restUrl: srv.restUrl, pairs: srv.pairs, total, scanMs: Date.now() - t0, rssAfterScan: process.memoryUsage().rss })}\n`);
  process.once("SIGTERM", async () => {
    clearInterval(sample);
    peak = Math.max(peak, process.memoryUsage().rss);
    await srv.close();
    process.stdout.write(`${JSON.stringify({ peakRss: peak, maxRss: process.resourceUsage().maxRSS * 1024 })}\n`);
    process.exit(0);
  });
}

async function measure(file: string, limit: number) {
  const child = spawn(process.execPath, ["--import", "tsx", SELF, "--serve", file], { stdio: ["ignore", "pipe", "inherit"] });
  const lines = createInterface({ input: child.stdout! })[Symbol.asyncIterator]();
  const info = JSON.parse((await lines.next()).value as string);
  const t0 = Date.now();
  let delivered = 0;
  const feed = new KrakenTradeFeed({ wsUrl: info.wsUrl, restUrl: info.restUrl, heartbeatTimeoutMs: 60_000, subscribeAckTimeoutMs: 60_000 });
  for (const pair of info.pairs as string[]) {
    feed.subscribe(pair, { lastSeen: () => null, onTrades: async (b) => void (delivered += b.length), onBadFrame: (r) => { throw new Error(r); } });
  }
  const deadline = Date.now() + 30 * 60_000;
  const target = Math.min(limit, info.total);
  while (delivered < target) {
    if (Date.now() > deadline) throw new Error(`replay of ${file}: ${delivered} of ${info.total} trades after 30 min`);
    await new Promise((r) => setTimeout(r, 200));
  }
  const replayMs = Date.now() - t0;
  await feed.close();
  child.kill("SIGTERM");
  const end = JSON.parse((await lines.next()).value as string);
  return { file, trades: info.total, replayed: delivered, pairs: info.pairs.length, scanMs: info.scanMs, replayMs, rssAfterScan: info.rssAfterScan, peakRss: end.peakRss, maxRss: end.maxRss };
}

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { serve: { type: "string" }, pairs: { type: "string" }, trades: { type: "string" }, "replay-limit": { type: "string" } } });
  if (values.serve) return serve(values.serve);
  const pairs = Number(values.pairs ?? 300);
  const trades = Number(values.trades ?? 5_000_000);
  const mb = (b: number) => `${(b / 2 ** 20).toFixed(0)} MB`;
  const results = [];
  for (const n of [Math.max(pairs, Math.round(trades / 50)), trades]) {
    const file = `/tmp/tickflow-replay-${pairs}p-${n}.jsonl.gz`;
    if (!existsSync(file)) await writeManyPairFile({ pairs, trades: n, out: file });
    const r = await measure(file, Number(values["replay-limit"] ?? Number.POSITIVE_INFINITY));
    results.push(r);
    console.log(`${r.trades} trades, ${r.pairs} pairs: first pass ${(r.scanMs / 1000).toFixed(1)} s, replayed ${r.replayed} in ${(r.replayMs / 1000).toFixed(1)} s (${Math.round(r.replayed / (r.replayMs / 1000))} trades/s), server RSS after first pass ${mb(r.rssAfterScan)}, peak ${mb(r.maxRss)}`);
  }
  console.log(`peak RSS ratio (${results[1].trades} vs ${results[0].trades} trades): ${(results[1].maxRss / results[0].maxRss).toFixed(2)}`);
}

await main();
