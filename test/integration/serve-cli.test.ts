// Serving through the real CLI, as a user runs it: `tickflow sink migrate`; `tickflow up` with
// DATABASE_URL on a bounded replay leaves exactly one row per candle in PostgreSQL; `tickflow up`
// prints the dashboard URL and serves it; a separate `tickflow gateway` serves the same cluster.
import { after, test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import pg from "pg";
import { ETH_FILE, oracleCandles, readTrades } from "../harness/data.js";
import { check } from "../harness/nats.js";
import { FAST_LEASES, tickflow, tickflowOk, type Proc } from "../harness/procs.js";

const DB = "postgres://postgres@127.0.0.1:5432/test";
const RUN = `${process.pid}_${Date.now().toString(36)}`;
const admin = new pg.Pool({ connectionString: DB, max: 1 });
const dirs: string[] = [];
const schemas: string[] = [];
const procs: Proc[] = [];

function tmp(): string {
  const d = mkdtempSync(join(tmpdir(), "tf-serve-cli-"));
  dirs.push(d);
  return d;
}
function schema(name: string): string {
  const s = `tf_cli_${name}_${RUN}`;
  schemas.push(s);
  return s;
}

after(async () => {
  for (const p of procs) await p.kill("SIGKILL");
  for (const s of schemas) await admin.query(`DROP SCHEMA IF EXISTS "${s}" CASCADE`).catch(() => {});
  await admin.end();
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

test("serve cli - sink migrate, then up --once with DATABASE_URL: PostgreSQL holds exactly one row per candle", async () => {
  const s = schema("once");
  const env = { ...FAST_LEASES, DATABASE_URL: DB, SINK_DIALECT: "postgres", SINK_SCHEMA: s };
  assert.match(await tickflowOk(["sink", "migrate"], env), /sink migrate \(postgres, schema tf_cli_once_.*\): 6 statements applied/);
  await tickflowOk(["up", "--replay", ETH_FILE, "--speed", "max", "--once", "--data-dir", tmp()], env);
  const raw = readTrades(ETH_FILE);
  for (const [tf, ms] of [["1m", 60_000], ["5m", 300_000]] as const) {
    const want = oracleCandles(raw, ms);
    const rows = (await admin.query(`SELECT window_start_ms, close, trades FROM "${s}".candles WHERE pair = 'ETH/USDT' AND tf = $1 ORDER BY window_start_ms`, [tf])).rows;
    assert.deepEqual(rows.map((r) => [Number(r.window_start_ms), r.close, r.trades]), want.map((c) => [c.window_start_ms, c.close, c.trades]), `${tf} candles`);
    const ind = await admin.query(`SELECT count(*) AS n FROM "${s}".indicators WHERE pair = 'ETH/USDT' AND tf = $1`, [tf]);
    assert.equal(Number(ind.rows[0].n), want.length, `${tf} indicators`);
  }
});

test("serve cli - up prints the dashboard URL and serves it; a separate `tickflow gateway` serves the same cluster", async () => {
  const dir = tmp();
  const up = tickflow(["up", "--replay", ETH_FILE, "--speed", "max", "--port", "0", "--data-dir", dir], { ...FAST_LEASES, TICKFLOW_GATEWAY_HOST: "127.0.0.1" });
  procs.push(up);
  const dash = await check(() => /dashboard (http:\/\/\S+\/)/.exec(up.stderr())?.[1], 60_000, "the dashboard URL in up's output");
  const base = dash.replace(/\/$/, "");
  const page = await fetch(dash);
  assert.equal(page.status, 200);
  assert.match(await page.text(), /<title>Tickflow<\/title>/);
  const candles = await check(async () => {
    const r = await (await fetch(`${base}/v1/candles/ETH-USDT?limit=100`)).json();
    return r.candles?.length >= 5 ? r.candles : null;
  }, 60_000, "candles from the gateway");
  assert.equal(candles[0].pair, "ETH/USDT");
  const natsUrl = /NATS (nats:\/\/\S+)/.exec(up.stderr())![1];
  const gw = tickflow(["gateway", "--port", "0", "--host", "127.0.0.1", "--nats", natsUrl], FAST_LEASES);
  procs.push(gw);
  const gwUrl = await check(() => /tickflow gateway: (http:\/\/\S+)/.exec(gw.stderr())?.[1], 30_000, "the second gateway's URL");
  await check(async () => (await fetch(`${gwUrl}/ready`)).status === 200, 10_000, "second gateway ready");
  assert.deepEqual((await (await fetch(`${gwUrl}/v1/pairs`)).json()).pairs.map((p: any) => p.pair), ["ETH/USDT"]);
  const bad = await fetch(`${gwUrl}/v1/candles/ETH-USDT?limit=-1`);
  assert.equal(bad.status, 400);
  assert.match((await bad.json()).message, /querystring\.limit/);
  assert.equal((await gw.kill("SIGTERM")).code, 0);
  assert.equal((await up.kill("SIGTERM")).code, 0);
});
