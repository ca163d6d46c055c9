// Serving benchmarks (`npm run bench -- --only gateway,sink`):
// - gateway: latency of GET /v1/predictions/:pair at a fixed request rate (p50/p99 of every
//   response time, measured by autocannon's clock), and its maximum throughput as a ratio of a
//   bare Fastify route returning the same body, both measured in the same run. The servers run in
//   a child process so the load generator does not share their event loop.
// - sink: rows/s from the CANDLES stream into PostgreSQL (127.0.0.1:5432, database `test`),
//   against the same rows upserted straight into PostgreSQL without NATS (reference).
import { spawn } from "node:child_process";
import { fileURLToPath } from "node:url";
import autocannon from "autocannon";
import { jetstream, jetstreamManager } from "@nats-io/jetstream";
import { connect } from "@nats-io/transport-node";
import pg from "pg";
import pino from "pino";
import { createPool, migrate, Sink } from "../actors/sink/sink.js";
import { tableNamed, toRow, upsertSql } from "../actors/sink/tables.js";
import { encode, publishHeaders } from "../protocol/codec.js";
import { bootstrap, DEFAULT_STORAGE } from "../protocol/streams.js";
import { addPairs } from "../supervisor/desired-pairs.js";
import { latestKeys, LatestWriter } from "../supervisor/latest.js";
import { loadConfig } from "../supervisor/config.js";
import { defer } from "./cleanup.js";
import { startNatsServer } from "./nats.js";

/** The q-quantile of sorted values (nearest rank). */
function quantile(sorted: number[], q: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))];
}

const ROOT = fileURLToPath(new URL("..", import.meta.url));
const quiet = pino({ level: "silent" });

export type GatewayBench = {
  rate: number; durationS: number; requests: number; non2xx: number; p50Ms: number; p90Ms: number; p99Ms: number; maxMs: number;
  gatewayMaxRps: number; bareMaxRps: number; ratio: number;
};
export type SinkBench = { rows: number; sinkRowsPerSec: number; directRowsPerSec: number; ratio: number; batchSize: number };

type Cannon = { requests: number; non2xx: number; rps: number; latencies: number[] };

function cannon(url: string, o: { rate?: number; connections: number; durationS: number }): Promise<Cannon> {
  const latencies: number[] = [];
  return new Promise((resolve, reject) => {
    const inst = autocannon({ url, connections: o.connections, duration: o.durationS, overallRate: o.rate }, (err, r) => {
      if (err) return reject(err);
      resolve({ requests: r.requests.total, non2xx: r.non2xx, rps: r.requests.average, latencies });
    });
    inst.on("response", (_c: unknown, _status: number, _bytes: number, ms: number) => latencies.push(ms));
  });
}

export async function gatewayBench(log: (s: string) => void, o: { rate?: number; durationS?: number } = {}): Promise<GatewayBench> {
  const rate = o.rate ?? 2000;
  const durationS = o.durationS ?? 10;
  const { server } = await startNatsServer("gateway bench nats-server");
  const nc = await connect({ servers: server.url });
  const closeNc = defer("gateway bench connection", () => nc.close());
  const js = jetstream(nc);
  await bootstrap(js, await jetstreamManager(nc), DEFAULT_STORAGE);
  await addPairs(js, ["BTC/USD"]);
  const p = { v: 1, pair: "BTC/USD", horizon_s: 300, ts_ms: 1_723_161_600_000, target_ts_ms: 1_723_161_900_000, base_price: 61_607.02,
    predicted_return: 0.00012, predicted_price: 61_614.41, model: "ridge", model_version: "3" };
  const w = new LatestWriter(js, "msgpack", quiet);
  w.offer({ key: latestKeys.predictions("5m", "BTC/USD"), ts: p.ts_ms }, "ml.predictions.5m.BTC-USD", p);
  await w.flush();
  const child = spawn(process.execPath, ["--import", "tsx", `${ROOT}bench/gateway-server.ts`, server.url], { cwd: ROOT, stdio: ["ignore", "pipe", "inherit"] });
  const stopChild = defer("gateway bench server", async () => {
    if (child.exitCode === null) child.kill("SIGTERM");
    await new Promise((r) => (child.exitCode !== null ? r(null) : child.once("exit", r)));
  });
  const urls = await new Promise<{ gateway: string; bare: string }>((resolve, reject) => {
    let buf = "";
    child.stdout!.on("data", (d) => {
      buf += d;
      const line = buf.split("\n")[0];
      if (buf.includes("\n")) resolve(JSON.parse(line));
    });
    child.once("exit", (c) => reject(new Error(`gateway bench server exited (${c})`)));
  });
  const path = "/v1/predictions/BTC-USD";
  // Warm-up (JIT, connection pools), not measured.
  await cannon(urls.gateway + path, { connections: 10, durationS: 2 });
  log(`gateway: fixed rate ${rate} req/s for ${durationS} s`);
  const fixed = await cannon(urls.gateway + path, { rate, connections: 20, durationS });
  const lat = fixed.latencies.sort((a, b) => a - b);
  // Throughput: the two servers alternate, twice each, so a neighbour's burst hits both alike.
  const g: number[] = [];
  const b: number[] = [];
  for (let i = 0; i < 2; i++) {
    g.push((await cannon(urls.gateway + path, { connections: 50, durationS: 4 })).rps);
    b.push((await cannon(urls.bare + path, { connections: 50, durationS: 4 })).rps);
    log(`gateway: max throughput round ${i + 1}: gateway ${Math.round(g[i])} req/s, bare ${Math.round(b[i])} req/s`);
  }
  await stopChild();
  await closeNc();
  const gm = Math.max(...g);
  const bm = Math.max(...b);
  return {
    rate, durationS, requests: fixed.requests, non2xx: fixed.non2xx,
    p50Ms: quantile(lat, 0.5), p90Ms: quantile(lat, 0.9), p99Ms: quantile(lat, 0.99), maxMs: lat[lat.length - 1],
    gatewayMaxRps: gm, bareMaxRps: bm, ratio: gm / bm,
  };
}

export async function sinkBench(log: (s: string) => void, o: { rows?: number } = {}): Promise<SinkBench> {
  const n = o.rows ?? 50_000;
  const db = process.env.BENCH_DATABASE_URL ?? "postgres://postgres@127.0.0.1:5432/test";
  const schemaA = `tf_bench_sink_${process.pid}`;
  const schemaB = `tf_bench_direct_${process.pid}`;
  const admin = new pg.Pool({ connectionString: db, max: 1 });
  const dropSchemas = defer("sink bench schemas", async () => {
    for (const s of [schemaA, schemaB]) await admin.query(`DROP SCHEMA IF EXISTS "${s}" CASCADE`).catch(() => {});
    await admin.end();
  });
  const candles = Array.from({ length: n }, (_, i) => ({
    v: 1, pair: `B${i % 50}/USD`, tf: "1m", window_start_ms: 1_700_000_000_000 + Math.floor(i / 50) * 60_000, window_end_ms: 1_700_000_060_000 + Math.floor(i / 50) * 60_000,
    open: 100, high: 101, low: 99, close: 100.5, volume: 1, vwap: 100.2, trades: 3, flat: false,
  }));
  const { server } = await startNatsServer("sink bench nats-server");
  const nc = await connect({ servers: server.url });
  const closeNc = defer("sink bench connection", () => nc.close());
  const js = jetstream(nc);
  await bootstrap(js, await jetstreamManager(nc), DEFAULT_STORAGE);
  for (let i = 0; i < n; i += 1000) {
    await Promise.all(candles.slice(i, i + 1000).map((c) => js.publish(`md.candles.1m.${c.pair.replace("/", "-")}`, encode(c, "msgpack"),
      { msgID: `${c.pair}:${c.window_start_ms}`, headers: publishHeaders("msgpack") })));
  }
  const settings = { ...loadConfig({ env: {} }).sink, databaseUrl: db, schema: schemaA, durablePrefix: `bench_${process.pid}` };
  const pool = createPool(settings, "tf-bench-sink");
  await migrate(pool, "postgres", schemaA);
  await migrate(pool, "postgres", schemaB);
  // Reference: the same rows, the same statements and batch size, straight into PostgreSQL.
  const t = tableNamed("candles");
  const rows = candles.map((c, i) => toRow(t, c, i + 1, "bench"));
  const t0 = performance.now();
  for (let i = 0; i < rows.length; i += settings.batchSize) {
    const chunk = rows.slice(i, i + settings.batchSize);
    await pool.query(upsertSql("postgres", schemaB, t, chunk.length), chunk.flat());
  }
  const directS = (performance.now() - t0) / 1000;
  log(`sink: direct upserts ${Math.round(n / directS)} rows/s`);
  const sink = new Sink({ nc, settings, log: quiet, pool, codec: "msgpack", tables: ["candles"] });
  const t1 = performance.now();
  await sink.start();
  while (sink.status()[0].rows < n) await new Promise((r) => setTimeout(r, 20));
  const sinkS = (performance.now() - t1) / 1000;
  await sink.stop();
  await pool.end();
  log(`sink: ${Math.round(n / sinkS)} rows/s`);
  await closeNc();
  await dropSchemas();
  return { rows: n, sinkRowsPerSec: n / sinkS, directRowsPerSec: n / directS, ratio: directS / sinkS, batchSize: settings.batchSize };
}

export function formatServe(g: GatewayBench | null, s: SinkBench | null): string {
  const r = (x: number) => Math.round(x).toLocaleString("en-US");
  const lines = ["", "Serving"];
  if (g) {
    lines.push(`  gateway GET /v1/predictions/:pair at ${r(g.rate)} req/s for ${g.durationS} s: ${r(g.requests)} requests, ${g.non2xx} non-2xx; ` +
      `latency p50 ${g.p50Ms.toFixed(2)} ms · p90 ${g.p90Ms.toFixed(2)} ms · p99 ${g.p99Ms.toFixed(2)} ms · max ${g.maxMs.toFixed(1)} ms`);
    lines.push(`  gateway max throughput ${r(g.gatewayMaxRps)} req/s vs bare Fastify route ${r(g.bareMaxRps)} req/s: ratio ${g.ratio.toFixed(2)}`);
  }
  if (s) {
    lines.push(`  sink: ${r(s.rows)} candles CANDLES → PostgreSQL at ${r(s.sinkRowsPerSec)} rows/s; direct upserts (no NATS) ${r(s.directRowsPerSec)} rows/s: ratio ${s.ratio.toFixed(2)} (batch ${s.batchSize})`);
  }
  return lines.join("\n") + "\n";
}
