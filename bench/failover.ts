// Failover figure: how long a (stage, pair) is without a running actor after its process dies.
// Three real worker processes (`tickflow run --stages candles`, as on Kubernetes) share one pair;
// each round SIGKILLs the one holding the lease `candles.<pair>` (a crash: no release, no goodbye)
// and times, from the kill, (a) until another live worker holds the lease and (b) until that worker
// reports the actor "running" through its micro-service. Expected: about the lease/member TTL (the
// survivors must first stop seeing the dead member's heartbeats and lease renewals) plus detection
// (reconcile tick, lease CAS, consumer creation). A replacement worker (new id) is started between
// rounds and the cluster allowed to settle, so every round starts from three healthy members.
import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, openSync, closeSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { jetstream, jetstreamManager } from "@nats-io/jetstream";
import type { KV } from "@nats-io/kv";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { CANDLES_STAGE } from "../actors/candles/actor.js";
import { pairToToken } from "../protocol/pairs.js";
import { bootstrap, DEFAULT_STORAGE, openBuckets } from "../protocol/streams.js";
import { DEFAULT_CONFIG } from "../supervisor/config.js";
import { rendezvousOwner } from "../supervisor/placement.js";
import type { LeaseValue } from "../supervisor/runtime.js";
import type { ProcessStatus } from "../supervisor/service.js";
import { clusterStatus } from "../supervisor/status.js";
import { startNatsServer } from "./nats.js";
import { defer, deferKill, deferRemoveDir, killAndWait } from "./cleanup.js";
import { max, median, sleep, until } from "./stats.js";

const ROOT = fileURLToPath(new URL("..", import.meta.url));
const PAIR = "BTC/USD";
const KEY = `${CANDLES_STAGE}.${pairToToken(PAIR)}`;
const WORKERS = 3;
const POLL_MS = 25;

/** The runtime's defaults, passed explicitly so the figure does not depend on the caller's environment. */
const TIMING = {
  TICKFLOW_LEASE_TTL_MS: DEFAULT_CONFIG.lease.ttlMs,
  TICKFLOW_LEASE_RENEW_MS: DEFAULT_CONFIG.lease.renewMs,
  TICKFLOW_HEARTBEAT_MS: DEFAULT_CONFIG.membership.heartbeatMs,
  TICKFLOW_MEMBER_TTL_MS: DEFAULT_CONFIG.membership.ttlMs,
};

export type FailoverRound = {
  killed: string;
  newOwner: string;
  /** Kill → another worker holds the lease. */
  leaseMs: number;
  /** Kill → that worker reports the actor running: the failover time. */
  runningMs: number;
  /**
   * Kill → the earliest moment a survivor may take over: the dead owner's last lease renewal + lease
   * TTL, or its last heartbeat + member TTL, whichever is later (from the KV entries' server times).
   */
  expiryMs: number;
  /** runningMs − expiryMs: how long the survivors take to notice, win the lease and start the actor. */
  detectionMs: number;
  phaseMs: number;
};
export type FailoverResult = {
  rounds: FailoverRound[];
  medianMs: number;
  maxMs: number;
  medianLeaseMs: number;
  medianExpiryMs: number;
  medianDetectionMs: number;
  maxDetectionMs: number;
  leaseTtlMs: number;
  leaseRenewMs: number;
  memberTtlMs: number;
  heartbeatMs: number;
  workers: number;
};

type Worker = { id: string; child: ChildProcess; logFile: string; kill: () => Promise<void> };

export async function failover(opts: { rounds?: number; log?: (s: string) => void } = {}): Promise<FailoverResult> {
  const rounds = opts.rounds ?? 5;
  const log = opts.log ?? (() => {});
  const tmp = mkdtempSync(join(tmpdir(), "tickflow-bench-failover-"));
  const rmTmp = deferRemoveDir(tmp);
  const { server, stop: stopServer } = await startNatsServer("failover nats-server");
  const nc = await connect({ servers: server.url });
  const closeNc = defer("failover connection", () => nc.close());
  const workers = new Map<string, Worker>();
  let nextId = 1;

  const env: NodeJS.ProcessEnv = {};
  // A developer's Tickflow / NATS settings must not leak into the workers; only ours apply.
  for (const [k, v] of Object.entries(process.env)) if (!/^(TICKFLOW_|NATS_URL$|KRAKEN_|LOG_LEVEL$)/.test(k)) env[k] = v;
  for (const [k, v] of Object.entries(TIMING)) env[k] = String(v);
  env.LOG_LEVEL = "warn";
  env.TICKFLOW_DATA_DIR = join(tmp, "data");

  const startWorker = (): Worker => {
    const id = `w${nextId++}`;
    const logFile = join(tmp, `${id}.log`);
    const fd = openSync(logFile, "w");
    const child = spawn(process.execPath, [join(ROOT, "bin/tickflow.js"), "run", "--stages", CANDLES_STAGE, "--id", id, "--nats", server.url], {
      cwd: ROOT, env, stdio: ["ignore", "ignore", fd],
    });
    closeSync(fd);
    const w: Worker = { id, child, logFile, kill: deferKill(child, `worker ${id} (pid ${child.pid})`) };
    workers.set(id, w);
    child.once("exit", () => workers.delete(id));
    return w;
  };
  const workerLog = (w: Worker) => {
    try {
      return readFileSync(w.logFile, "utf8").trim().split("\n").slice(-10).join("\n");
    } catch {
      return "";
    }
  };

  try {
    const js = jetstream(nc);
    await bootstrap(js, await jetstreamManager(nc), DEFAULT_STORAGE);
    const kv = await openBuckets(js);
    await kv.pairs.put(pairToToken(PAIR), JSON.stringify({ pair: PAIR, addedAt: Date.now() }));

    const initial = Array.from({ length: WORKERS }, startWorker);
    await Promise.all(initial.map((w) => workerReady(nc, w, workerLog)));
    await settled(nc, kv.leases, workers);
    log(`failover: ${WORKERS} workers up (${[...workers.keys()].join(", ")}), lease TTL ${TIMING.TICKFLOW_LEASE_TTL_MS} ms`);

    const results: FailoverRound[] = [];
    for (let r = 0; r < rounds; r++) {
      // A crash comes at a random moment, not in step with the owner's lease renewals and
      // heartbeats: settled() ends a fixed time after the lease was taken, so without this random
      // pause every kill would land just after a renewal, always the worst case (≈ a full TTL).
      const phaseMs = Math.floor(Math.random() * Math.max(TIMING.TICKFLOW_LEASE_RENEW_MS, TIMING.TICKFLOW_HEARTBEAT_MS));
      await sleep(phaseMs);
      const owner = (await leaseOf(kv.leases))?.owner;
      const victim = owner ? workers.get(owner) : undefined;
      if (!victim) throw new Error(`round ${r + 1}: lease ${KEY} is held by ${owner ?? "nobody"}, not one of the workers`);
      const killedAt = Date.now();
      const t0 = performance.now();
      victim.child.kill("SIGKILL");
      // The dead owner's last writes: the survivors' TTLs run from when they saw these.
      const lastRenewal = await kv.leases.get(KEY);
      const lastBeat = await kv.members.get(victim.id);
      if (!lastRenewal || !lastBeat) throw new Error(`round ${r + 1}: no lease or member entry for ${victim.id}`);
      const expiryMs = Math.max(
        lastRenewal.created.getTime() + TIMING.TICKFLOW_LEASE_TTL_MS,
        lastBeat.created.getTime() + TIMING.TICKFLOW_MEMBER_TTL_MS,
      ) - killedAt;
      let leaseMs = NaN;
      const newOwner = await until(async () => {
        const l = await leaseOf(kv.leases);
        if (!l?.owner || l.owner === victim.id || !workers.has(l.owner)) return null;
        if (Number.isNaN(leaseMs)) leaseMs = performance.now() - t0;
        return (await actorRunning(nc, l.owner)) ? l.owner : null;
      }, 30_000, `a live worker to run ${KEY} after ${victim.id} was killed`, POLL_MS);
      const runningMs = performance.now() - t0;
      await victim.kill();
      // Cross-check with what `tickflow status` shows: one running actor, owned by the new holder.
      const cs = await clusterStatus(nc, [CANDLES_STAGE], { waitMs: 1000 });
      const a = cs.actors.find((x) => x.stage === CANDLES_STAGE && x.pair === PAIR);
      if (a?.state !== "running" || a.owner !== newOwner) throw new Error(`round ${r + 1}: tickflow status shows ${KEY} ${a?.state} on ${a?.owner}, expected running on ${newOwner}`);
      results.push({ killed: victim.id, newOwner, leaseMs, runningMs, expiryMs, detectionMs: runningMs - expiryMs, phaseMs });
      log(`failover ${r + 1}/${rounds}: killed ${victim.id}; TTLs ran out after ${Math.round(expiryMs)} ms; ${newOwner} took the lease after ${Math.round(leaseMs)} ms, running after ${Math.round(runningMs)} ms`);
      if (r < rounds - 1) {
        const w = startWorker();
        await workerReady(nc, w, workerLog);
        await settled(nc, kv.leases, workers);
      }
    }
    const run = results.map((x) => x.runningMs);
    return {
      rounds: results, medianMs: median(run), maxMs: max(run), medianLeaseMs: median(results.map((x) => x.leaseMs)),
      medianExpiryMs: median(results.map((x) => x.expiryMs)), medianDetectionMs: median(results.map((x) => x.detectionMs)),
      maxDetectionMs: max(results.map((x) => x.detectionMs)),
      leaseTtlMs: TIMING.TICKFLOW_LEASE_TTL_MS, leaseRenewMs: TIMING.TICKFLOW_LEASE_RENEW_MS,
      memberTtlMs: TIMING.TICKFLOW_MEMBER_TTL_MS, heartbeatMs: TIMING.TICKFLOW_HEARTBEAT_MS, workers: WORKERS,
    };
  } finally {
    // Graceful stop is not the point here; SIGKILL is quick and leaves nothing (the server goes too).
    await Promise.all([...workers.values()].map((w) => w.kill()));
    await closeNc();
    await stopServer();
    await rmTmp();
  }
}

async function leaseOf(leases: KV): Promise<LeaseValue | null> {
  const e = await leases.get(KEY);
  if (!e || e.operation !== "PUT" || e.length === 0) return null;
  return e.json<LeaseValue>();
}

/** The per-process status endpoint of the `tickflow` micro-service (what clusterStatus aggregates), asked directly: one request, no scatter-gather wait. */
async function processStatus(nc: NatsConnection, id: string): Promise<ProcessStatus | null> {
  try {
    const m = await nc.request(`tf.status.${id.replace(/[^A-Za-z0-9_-]/g, "_")}`, "", { timeout: 1000 });
    return m.json<ProcessStatus>();
  } catch {
    return null;
  }
}

async function actorRunning(nc: NatsConnection, id: string): Promise<boolean> {
  const s = await processStatus(nc, id);
  return !!s?.actors.some((a) => a.stage === CANDLES_STAGE && a.pair === PAIR && a.state === "running");
}

/** A started worker answers its status endpoint (tsx compiles the sources first: a few seconds on a small box). */
async function workerReady(nc: NatsConnection, w: Worker, workerLog: (w: Worker) => string): Promise<void> {
  await until(async () => {
    if (w.child.exitCode !== null || w.child.signalCode !== null) throw new Error(`worker ${w.id} exited (${w.child.exitCode ?? w.child.signalCode}): ${workerLog(w)}`);
    return (await processStatus(nc, w.id)) !== null;
  }, 60_000, `worker ${w.id} to start`, 100).catch((err: Error) => {
    throw new Error(`${err.message}\n${workerLog(w)}`);
  });
}

/**
 * The cluster is at rest: the lease is held by the rendezvous owner among the live workers (a new
 * member may win the key and take it over, which must not happen inside a measured round) and it
 * runs the actor; and it stays so for two lease renewals.
 */
async function settled(nc: NatsConnection, leases: KV, workers: Map<string, Worker>): Promise<void> {
  const atRest = async () => {
    const want = rendezvousOwner(KEY, [...workers.keys()]);
    const l = await leaseOf(leases);
    return !!want && l?.owner === want && (await actorRunning(nc, want));
  };
  for (let attempt = 0; attempt < 5; attempt++) {
    await until(atRest, 60_000, `${KEY} to settle on its rendezvous owner`, 100);
    await sleep(2 * TIMING.TICKFLOW_LEASE_RENEW_MS);
    if (await atRest()) return;
  }
  throw new Error(`${KEY} keeps moving between workers; the cluster does not settle`);
}
