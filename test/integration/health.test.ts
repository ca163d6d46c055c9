// The worker's probe endpoints against a real nats-server and a real supervisor: liveness follows
// the NATS connection (down while the server is gone, up after it returns), readiness follows the
// supervisor's start and stop, /metrics reports the actors this process runs.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { candlesActor } from "../../actors/candles/actor.js";
import { actorMetrics, HEALTH_PATHS, startHealthServer, type HealthServer } from "../../supervisor/health.js";
import { connectNats } from "../../supervisor/nats.js";
import { startWorker, type Worker } from "../../supervisor/worker.js";
import { DEFAULT_CONFIG } from "../../supervisor/config.js";
import type { ActorStatus } from "../../supervisor/actor-cell.js";
import { check, NatsServer } from "../harness/nats.js";
import { addPair, quietLog, testConfig } from "../harness/pipeline.js";
import { FAST_LEASES, tickflow, tickflowOk } from "../harness/procs.js";
import pg from "pg";
import { createServer } from "node:net";

async function freePort(): Promise<number> {
  const s = createServer().listen(0, "127.0.0.1");
  await new Promise((r) => s.once("listening", r));
  const port = (s.address() as { port: number }).port;
  await new Promise((r) => s.close(r));
  return port;
}

let server: NatsServer;
before(async () => {
  server = await NatsServer.start();
});
after(() => server.stop());

async function get(h: HealthServer, path: string): Promise<{ status: number; body: string }> {
  const r = await fetch(`http://127.0.0.1:${h.port}${path}`);
  return { status: r.status, body: await r.text() };
}

test("health - liveness follows the NATS connection, readiness the supervisor, metrics the actors", async () => {
  const nc = await connectNats(server.url, "health-test", DEFAULT_CONFIG.natsAuth);
  let worker: Worker | null = null;
  const h = await startHealthServer({
    port: 0, host: "127.0.0.1", nc,
    ready: () => worker?.sup.isReady() ?? false,
    metrics: () => actorMetrics("h1", worker?.sup.status() ?? []),
  });
  try {
    assert.equal((await get(h, HEALTH_PATHS.live)).status, 200, "connected: live");
    const notReady = await get(h, HEALTH_PATHS.ready);
    assert.equal(notReady.status, 503, "no supervisor yet: not ready");
    assert.deepEqual(JSON.parse(notReady.body), { status: "unavailable", nats: "connected", ready: false });

    worker = await startWorker({ nc, config: testConfig(), log: quietLog, id: "h1", stages: [candlesActor] });
    assert.equal((await get(h, HEALTH_PATHS.ready)).status, 200, "supervisor started: ready");
    await addPair(worker.js, "BTC/USD");
    const metrics = await check(async () => {
      const m = await get(h, HEALTH_PATHS.metrics);
      return m.body.includes('tickflow_actors{member="h1",stage="candles",state="running"} 1') ? m : null;
    }, 15_000, "the candles actor in /metrics");
    assert.match(metrics.body, /tickflow_actor_restarts_total\{member="h1",stage="candles",key="BTC\/USD"\} 0/);

    await server.kill("SIGKILL");
    await check(async () => (await get(h, HEALTH_PATHS.live)).status === 503, 15_000, "liveness down while NATS is gone");
    assert.equal((await get(h, HEALTH_PATHS.ready)).status, 503, "not ready without NATS");
    await server.restart();
    await check(async () => (await get(h, HEALTH_PATHS.live)).status === 200, 15_000, "liveness back after NATS returns");

    await worker.stop();
    assert.equal((await get(h, HEALTH_PATHS.ready)).status, 503, "a stopped supervisor is not ready");
    assert.equal((await get(h, "/nope")).status, 404);
  } finally {
    await worker?.stop();
    await h.close();
    await nc.close();
  }
});

test("health - actorMetrics counts actors by stage and state and escapes label values", () => {
  const base = { owner: "m", lastSeq: 0, lastInputTs: null, lastInputAt: null, processed: 5, published: 4, duplicates: 0, deadLetters: 1, restarts: 2, lastError: null, detail: {} };
  const text = actorMetrics('m"1', [
    { ...base, stage: "candles", key: "BTC/USD", state: "running", lag: 3 },
    { ...base, stage: "candles", key: "ETH/USD", state: "running", lag: null },
    { ...base, stage: "trades", key: "BTC/USD", state: "failed", lag: null },
  ] as ActorStatus[]);
  assert.match(text, /tickflow_actors\{member="m\\"1",stage="candles",state="running"\} 2\n/);
  assert.match(text, /tickflow_actors\{member="m\\"1",stage="trades",state="failed"\} 1\n/);
  assert.match(text, /tickflow_actor_lag\{member="m\\"1",stage="candles",key="BTC\/USD"\} 3\n/);
  assert.doesNotMatch(text, /tickflow_actor_lag\{[^}]*ETH/);
  // Per stage, the sums over its actors: a bounded number of series whatever the number of pairs.
  assert.match(text, /tickflow_stage_processed_total\{member="m\\"1",stage="candles"\} 10\n/);
  assert.match(text, /tickflow_stage_restarts_total\{member="m\\"1",stage="trades"\} 2\n/);
  assert.match(text, /tickflow_stage_lag\{member="m\\"1",stage="candles"\} 3\n/);
  // Without per-actor series (TICKFLOW_METRICS_PER_ACTOR=false): the per-stage ones only.
  const staged = actorMetrics("m", [{ ...base, stage: "candles", key: "BTC/USD", state: "running", lag: 3 }] as ActorStatus[], false);
  assert.match(staged, /tickflow_stage_lag\{member="m",stage="candles"\} 3\n/);
  assert.match(staged, /tickflow_actors\{member="m",stage="candles",state="running"\} 1\n/);
  assert.doesNotMatch(staged, /key=/);
});

test("health - tickflow run with TICKFLOW_HEALTH_PORT (as the Helm chart sets it) serves the probes", async () => {
  const port = await freePort();
  const proc = tickflow(["run", "--stages", "candles", "--id", "hp1", "--nats", server.url], { ...FAST_LEASES, TICKFLOW_HEALTH_PORT: String(port), TICKFLOW_HEALTH_HOST: "127.0.0.1" });
  try {
    const url = (p: string) => `http://127.0.0.1:${port}${p}`;
    await check(async () => (await fetch(url(HEALTH_PATHS.ready)).catch(() => null))?.status === 200, 60_000, `/readyz of tickflow run (stderr: ${proc.stderr()})`);
    assert.equal((await fetch(url(HEALTH_PATHS.live))).status, 200);
    assert.match(await (await fetch(url(HEALTH_PATHS.metrics))).text(), /# TYPE tickflow_actors gauge/);
  } finally {
    const { code } = await proc.kill("SIGTERM");
    assert.equal(code, 0, proc.stderr());
  }
});

test("health - tickflow sink run serves the same probes (ready once it consumes)", async () => {
  const DB = "postgres://postgres@127.0.0.1:5432/test";
  const schema = `tf_health_${process.pid}_${Date.now().toString(36)}`;
  const env = { ...FAST_LEASES, DATABASE_URL: DB, SINK_DIALECT: "postgres", SINK_SCHEMA: schema, NATS_URL: server.url };
  const admin = new pg.Pool({ connectionString: DB, max: 1 });
  const port = await freePort();
  let proc: ReturnType<typeof tickflow> | null = null;
  try {
    await tickflowOk(["sink", "migrate"], env);
    proc = tickflow(["sink", "run", "--nats", server.url], { ...env, TICKFLOW_HEALTH_PORT: String(port), TICKFLOW_HEALTH_HOST: "127.0.0.1" });
    const p = proc;
    await check(async () => (await fetch(`http://127.0.0.1:${port}${HEALTH_PATHS.ready}`).catch(() => null))?.status === 200, 60_000, `/readyz of tickflow sink run (stderr: ${p.stderr()})`);
    assert.equal((await fetch(`http://127.0.0.1:${port}${HEALTH_PATHS.live}`)).status, 200);
  } finally {
    if (proc) assert.equal((await proc.kill("SIGTERM")).code, 0, proc.stderr());
    await admin.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`).catch(() => {});
    await admin.end();
  }
});
