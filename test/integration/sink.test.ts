// The sink against the real PostgreSQL on 127.0.0.1:5432 (database `test`, a schema per test)
// and a real nats-server: rows equal the streams, a replay writes nothing twice, and with the
// database's connections killed or the database unreachable mid-stream, nothing is lost or doubled.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import pg from "pg";
import { candlesActor } from "../../actors/candles/actor.js";
import { indicatorsActor } from "../../actors/indicators/actor.js";
import { createPool, migrate, Sink } from "../../actors/sink/sink.js";
import { encode, publishHeaders } from "../../protocol/codec.js";
import { ETH_FILE, readTrades } from "../harness/data.js";
import { pipelineDone, predictionsFrom, publishMl, publishSentiment, sentimentSignal } from "../harness/ml-fixtures.js";
import { check, cleanup, readAll, setup, type Env } from "../harness/nats.js";
import { addPair, publishEos, publishTrades, quietLog, startSupervisor, testConfig } from "../harness/pipeline.js";
import { startTcpProxy } from "../harness/tcp-proxy.js";

const DB = "postgres://postgres@127.0.0.1:5432/test";
const RUN = `${process.pid}_${Date.now().toString(36)}`;
let env: Env;
let admin: pg.Pool;
const schemas: string[] = [];

before(async () => {
  env = await setup();
  admin = new pg.Pool({ connectionString: DB, max: 2 });
});
after(async () => {
  for (const s of schemas) await admin.query(`DROP SCHEMA IF EXISTS "${s}" CASCADE`).catch(() => {});
  await admin.end();
  await cleanup(env);
});

function settings(name: string, over: Partial<ReturnType<typeof testConfig>["sink"]> = {}) {
  const schema = `tf_sink_${name}_${RUN}`.toLowerCase();
  schemas.push(schema);
  return { ...testConfig().sink, databaseUrl: DB, dialect: "postgres" as const, schema, durablePrefix: `s_${name}_${RUN}`.slice(0, 32), ...over };
}

async function count(schema: string, table: string, where = "true"): Promise<number> {
  return Number((await admin.query(`SELECT count(*) AS n FROM "${schema}"."${table}" WHERE ${where}`)).rows[0].n);
}

test("sink - after a replay every table holds exactly the stream's messages; a second replay writes nothing twice; bad input is dead-lettered", async () => {
  const raw = readTrades(ETH_FILE);
  const pair = "ETH/USDT";
  await addPair(env.js, pair);
  const sup = await startSupervisor(env, "sink-w", [candlesActor, indicatorsActor()]);
  await publishTrades(env.js, raw);
  await pipelineDone(env.js, sup, pair, await publishEos(env.js, pair, raw[raw.length - 1]));
  const candles = await readAll(env.js, "CANDLES", "md.candles.>");
  await sup.stop();
  const oneMin = candles.filter((m) => m.data.tf === "1m").map((m) => m.data);
  const { preds, outcomes } = predictionsFrom(oneMin);
  await publishMl(env.js, preds, outcomes);
  await publishSentiment(env.js, [sentimentSignal(pair, oneMin[2].window_end_ms, 0.4), sentimentSignal(pair, oneMin[5].window_end_ms, -0.1)]);
  await env.js.publish("md.sentiment.ETH-USDT", encode({ v: 1, pair, score: "very" }, "json"), { headers: publishHeaders("json") });

  const s = settings("replay");
  const pool = createPool(s, "tf-sink-test-replay");
  await migrate(pool, "postgres", s.schema);
  await migrate(pool, "postgres", s.schema); // again: a no-op
  const want = { candles: candles.length, indicators: candles.length, predictions: preds.length, outcomes: outcomes.length, sentiment: 2 };
  const expectCounts = () => check(async () => {
    for (const [t, n] of Object.entries(want)) if ((await count(s.schema, t)) !== n) return false;
    return true;
  }, 30_000, `row counts ${JSON.stringify(want)}`);
  let sink = new Sink({ nc: env.nc, settings: s, log: quietLog, pool, codec: "msgpack" });
  await sink.start();
  try {
    await expectCounts();
    await check(() => sink.status().find((x) => x.table === "sentiment")!.deadLetters === 1, 10_000, "the bad sentiment message dead-lettered");
  } finally {
    await sink.stop();
  }
  const dlq = await readAll(env.js, "DLQ", "dlq.sink.ETH-USDT");
  assert.equal(dlq.length, 1);
  assert.match(dlq[0].data.reason, /^sentiment: md\.sentiment\.ETH-USDT#\d+: field coin is missing/);

  const rows = (await admin.query(`SELECT * FROM "${s.schema}".candles ORDER BY tf, window_start_ms`)).rows;
  const fromStream = candles.map((m) => m.data).sort((a, b) => a.tf.localeCompare(b.tf) || a.window_start_ms - b.window_start_ms);
  assert.deepEqual(rows.map((r) => ({ ...r, window_start_ms: Number(r.window_start_ms), window_end_ms: Number(r.window_end_ms), seq: undefined })),
    fromStream.map((c) => ({ pair: c.pair, tf: c.tf, window_start_ms: c.window_start_ms, window_end_ms: c.window_end_ms, open: c.open, high: c.high, low: c.low, close: c.close, volume: c.volume, vwap: c.vwap, trades: c.trades, flat: c.flat, seq: undefined })));
  const ind = (await admin.query(`SELECT "values" FROM "${s.schema}".indicators WHERE tf = '1m' ORDER BY window_start_ms DESC LIMIT 1`)).rows[0];
  assert.equal(typeof ind.values.sma_7, "number");
  const out = (await admin.query(`SELECT avg(abs_error) AS mae, avg(baseline_abs_error) AS base FROM "${s.schema}".outcomes`)).rows[0];
  assert.ok(Math.abs(out.mae - outcomes.reduce((x, o) => x + o.abs_error, 0) / outcomes.length) < 1e-9);

  // Replay: new durable consumers deliver every message again; the upserts leave the same rows.
  for (const t of ["candles", "indicators", "sentiment", "predictions", "outcomes"]) {
    const stream = { candles: "CANDLES", indicators: "INDICATORS", sentiment: "SENTIMENT", predictions: "PREDICTIONS", outcomes: "PREDICTIONS" }[t]!;
    await env.jsm.consumers.delete(stream, `${s.durablePrefix}_${t}`);
  }
  sink = new Sink({ nc: env.nc, settings: s, log: quietLog, pool, codec: "msgpack" });
  await sink.start();
  try {
    await check(() => sink.status().reduce((n, x) => n + x.rows, 0) === Object.values(want).reduce((a, b) => a + b, 0), 30_000, "every row written again");
    await expectCounts();
  } finally {
    await sink.stop();
    await pool.end();
  }
});

/** `n` distinct candles of a made-up pair, one a minute. */
function candleSeries(pair: string, n: number, t0 = 1_700_000_000_000) {
  return Array.from({ length: n }, (_, i) => ({
    v: 1, pair, tf: "1m", window_start_ms: t0 + i * 60_000, window_end_ms: t0 + (i + 1) * 60_000,
    open: 100 + i, high: 101 + i, low: 99 + i, close: 100.5 + i, volume: 1 + i, vwap: 100.2 + i, trades: 3, flat: false,
  }));
}

async function publishCandles(cs: ReturnType<typeof candleSeries>): Promise<void> {
  const acks = cs.map((c) => env.js.publish(`md.candles.1m.${c.pair.replace("/", "-")}`, encode(c, "msgpack"),
    { msgID: `1m:${c.pair.replace("/", "-")}:${c.window_start_ms}`, headers: publishHeaders("msgpack") }));
  await Promise.all(acks);
}

test("sink - database connections killed mid-stream (pg_terminate_backend): after recovery nothing missing, nothing twice, everything acked", async () => {
  const s = settings("kill", { batchSize: 50, batchMs: 20 });
  const app = `tf-sink-kill-${RUN}`;
  const pool = createPool(s, app);
  await migrate(pool, "postgres", s.schema);
  const sink = new Sink({ nc: env.nc, settings: s, log: quietLog, pool, codec: "msgpack", tables: ["candles"] });
  await sink.start();
  const cs = candleSeries("KIL/USD", 3000);
  let kills = 0;
  let killing = true;
  const killer = (async () => {
    while (killing) {
      const r = await admin.query("SELECT pg_terminate_backend(pid) AS ok FROM pg_stat_activity WHERE application_name = $1", [app]);
      kills += r.rows.filter((x) => x.ok).length;
      await new Promise((res) => setTimeout(res, 15));
    }
  })();
  try {
    for (let i = 0; i < cs.length; i += 300) {
      await publishCandles(cs.slice(i, i + 300));
      await new Promise((res) => setTimeout(res, 30));
    }
    await check(() => kills >= 3 && sink.status()[0].retries > 0, 30_000, "some writes to fail on killed connections");
    killing = false;
    await killer;
    await check(async () => (await count(s.schema, "candles", "pair = 'KIL/USD'")) === cs.length, 60_000, "all candles written");
    const info = await check(async () => {
      const i = await env.jsm.consumers.info("CANDLES", `${s.durablePrefix}_candles`);
      return i.num_ack_pending === 0 && i.num_pending === 0 ? i : null;
    }, 30_000, "every message acked");
    assert.equal(info.num_pending, 0);
    const dup = await admin.query(`SELECT count(*) AS n, count(DISTINCT window_start_ms) AS d, min(close) AS lo, max(close) AS hi FROM "${s.schema}".candles WHERE pair = 'KIL/USD'`);
    assert.deepEqual([Number(dup.rows[0].n), Number(dup.rows[0].d), dup.rows[0].lo, dup.rows[0].hi], [3000, 3000, 100.5, 3099.5]);
  } finally {
    killing = false;
    await killer;
    await sink.stop();
    await pool.end();
  }
});

test("sink - database unreachable mid-stream: nothing is acked while it is down, and everything lands once it is back", async () => {
  const proxy = await startTcpProxy("127.0.0.1", 5432);
  const s = settings("down", { batchSize: 100, batchMs: 20, databaseUrl: proxy.url("test") });
  const pool = createPool(s, "tf-sink-down");
  await migrate(pool, "postgres", s.schema);
  const sink = new Sink({ nc: env.nc, settings: s, log: quietLog, pool, codec: "msgpack", tables: ["candles"] });
  await sink.start();
  const durable = `${s.durablePrefix}_candles`;
  try {
    const cs = candleSeries("DWN/USD", 1000);
    await publishCandles(cs.slice(0, 400));
    await check(async () => (await count(s.schema, "candles", "pair = 'DWN/USD'")) === 400, 30_000, "first 400 written");
    proxy.cut();
    await publishCandles(cs.slice(400));
    await check(() => sink.status()[0].retries >= 3, 30_000, "writes failing while the database is unreachable");
    const during = await env.jsm.consumers.info("CANDLES", durable);
    assert.equal(during.ack_floor.stream_seq <= during.delivered.stream_seq, true);
    assert.ok(during.num_ack_pending + during.num_pending >= 600, `600 messages neither acked nor lost (ack pending ${during.num_ack_pending}, pending ${during.num_pending})`);
    assert.equal(await count(s.schema, "candles", "pair = 'DWN/USD'"), 400);
    proxy.restore();
    await check(async () => (await count(s.schema, "candles", "pair = 'DWN/USD'")) === 1000, 60_000, "all 1000 written after recovery");
    await check(async () => {
      const i = await env.jsm.consumers.info("CANDLES", durable);
      return i.num_ack_pending === 0 && i.num_pending === 0;
    }, 30_000, "every message acked after recovery");
  } finally {
    await sink.stop();
    await pool.end();
    await proxy.close();
  }
});
