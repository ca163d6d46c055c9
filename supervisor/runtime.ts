// The per-process supervisor: watches the desired pairs, the live members and the leases, computes
// the owner of every (stage, pair) by rendezvous hashing, takes and renews leases with KV
// compare-and-set, and runs an ActorCell for each lease it holds. One process or many, the code is
// the same: `tickflow up` is simply a single member that wins every key.
import type { JetStreamClient } from "@nats-io/jetstream";
import type { KV, KvEntry } from "@nats-io/kv";
import type { NatsConnection } from "@nats-io/transport-node";
import type { Logger } from "pino";
import { hostname } from "node:os";
import { nanoid } from "nanoid";
import { normalizePair, tokenToPair } from "../protocol/pairs.js";
import { openBuckets } from "../protocol/streams.js";
import type { ActorDef } from "./actor.js";
import { ActorCell, actorKey, type ActorStatus } from "./actor-cell.js";
import type { Config } from "./config.js";
import { holderDeadline, leaseExpired } from "./lease-math.js";
import { rendezvousOwner } from "./placement.js";

export type LeaseValue = { owner: string | null; since: number; failed?: { reason: string; at: number } };
export type MemberValue = { id: string; instance: string; stages: string[]; host: string; pid: number; startedAt: number; beatAt: number };
export type PairValue = { pair: string; addedAt: number };

type Observed<T> = { value: T | null; revision: number; seenAt: number; op: KvEntry["operation"] };

export type SupervisorOptions = {
  id: string;
  stages: ActorDef[];
  config: Config;
  nc: NatsConnection;
  js: JetStreamClient;
  log: Logger;
  /**
   * Test hook (TICKFLOW_UNSAFE_SPLIT_BRAIN=1): behave as if partitioned from every other member,
   * and take no leases, so this process runs every actor of its stages. Used to prove that two
   * simultaneous owners still publish no duplicate outputs.
   */
  ignoreLeases?: boolean;
};

const json = new TextEncoder();
const parse = <T>(e: KvEntry): T | null => {
  if (e.operation !== "PUT" || e.length === 0) return null;
  try {
    return e.json<T>();
  } catch {
    return null;
  }
};

export class Supervisor {
  readonly id: string;
  private readonly instance = nanoid(10);
  private kv!: Awaited<ReturnType<typeof openBuckets>>;
  private readonly pairs = new Map<string, Observed<PairValue>>();
  private readonly members = new Map<string, Observed<MemberValue>>();
  private readonly leases = new Map<string, Observed<LeaseValue>>();
  private readonly cells = new Map<string, ActorCell>();
  private readonly held = new Map<string, { revision: number; lastOk: number }>();
  private readonly failedStatus = new Map<string, ActorStatus>();
  private readonly releasing = new Set<string>();
  private readonly timers: NodeJS.Timeout[] = [];
  private readonly watchers: { stop(): void }[] = [];
  private readonly startedAt = Date.now();
  private ready = { pairs: false, members: false, leases: false };
  private stopped = false;
  private reconciling = false;
  private again = false;

  constructor(private readonly o: SupervisorOptions) {
    this.id = o.id;
  }

  static defaultId(): string {
    return `${hostname()}-${process.pid}`;
  }

  async start(): Promise<void> {
    const { js, config } = this.o;
    this.kv = await openBuckets(js);
    await this.checkIdFree();
    await this.heartbeat();
    await this.watch(this.kv.pairs, this.pairs, "pairs");
    await this.watch(this.kv.members, this.members, "members");
    await this.watch(this.kv.leases, this.leases, "leases");
    this.every(config.membership.heartbeatMs, () => this.heartbeat());
    this.every(config.lease.renewMs, () => this.renew());
    this.every(Math.min(500, config.lease.renewMs), () => this.reconcile());
    this.o.log.info({ member: this.id, stages: this.o.stages.map((s) => s.stage) }, "supervisor started");
  }

  /** Graceful hand-off: stop consuming, checkpoint, release leases, leave the membership. */
  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    for (const t of this.timers) clearInterval(t);
    for (const w of this.watchers) w.stop();
    await Promise.all([...this.cells.keys()].map((k) => this.release(k)));
    await this.kv.members.delete(this.id).catch(() => {});
    this.o.log.info({ member: this.id }, "supervisor stopped");
  }

  /**
   * Stops everything in this process and writes nothing: no checkpoint, no lease release, no
   * goodbye. To the other members this is exactly a crash; tests use it to simulate one in-process.
   */
  async halt(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    for (const t of this.timers) clearInterval(t);
    for (const w of this.watchers) w.stop();
    await Promise.all([...this.cells.values()].map((c) => c.stop({ hard: true })));
    this.cells.clear();
    this.held.clear();
  }

  /**
   * For bounded runs (`up --once`), once every source has published its end: waits until every
   * stream actor here has applied all its input and its outputs are acked, twice in a row with
   * nothing processed in between (an actor checked early in a round may get input from one
   * checked later), then checkpoints them all.
   */
  async settle(pollMs = 100): Promise<void> {
    let lastTotal = -1;
    for (;;) {
      const cells = [...this.cells.values()];
      let all = true;
      for (const c of cells) if (!(await c.caughtUp().catch(() => false))) all = false;
      const total = cells.reduce((n, c) => n + c.status().processed, 0);
      if (all && total === lastTotal) break;
      lastTotal = all ? total : -1;
      await new Promise((r) => setTimeout(r, pollMs));
    }
    await Promise.all([...this.cells.values()].map((c) => c.checkpointIfRunning()));
  }

  /** Status of every actor this process runs (or ran and marked failed). */
  status(): ActorStatus[] {
    const out = [...this.cells.values()].map((c) => c.status());
    for (const [k, s] of this.failedStatus) if (!this.cells.has(k)) out.push(s);
    return out;
  }

  cell(stage: string, pair: string): ActorCell | undefined {
    return this.cells.get(actorKey(stage, pair));
  }

  memberInfo(): MemberValue {
    return {
      id: this.id, instance: this.instance, stages: this.o.stages.map((s) => s.stage), host: hostname(), pid: process.pid,
      startedAt: this.startedAt, beatAt: Date.now(),
    };
  }

  // --- membership -----------------------------------------------------------------------------

  /** Refuses to start when a live process already uses this member id (two of them would fight over leases). */
  private async checkIdFree(): Promise<void> {
    const e = await this.kv.members.get(this.id);
    const v = e ? parse<MemberValue>(e) : null;
    if (!e || !v) return;
    if (v.host === hostname() && v.pid !== process.pid && !pidAlive(v.pid)) return;
    const ttl = this.o.config.membership.ttlMs;
    await new Promise((r) => setTimeout(r, ttl));
    const again = await this.kv.members.get(this.id);
    if (again && again.revision !== e.revision && again.operation === "PUT") {
      throw new Error(`member id "${this.id}" is in use by a live process (${v.host} pid ${v.pid}); give this one another --id`);
    }
  }

  private async heartbeat(): Promise<void> {
    await this.kv.members.put(this.id, json.encode(JSON.stringify(this.memberInfo())));
  }

  private liveMembers(stage: string): string[] {
    if (this.o.ignoreLeases) return [this.id];
    const now = Date.now();
    const ttl = this.o.config.membership.ttlMs;
    const out: string[] = [];
    for (const [id, m] of this.members) {
      if (!m.value || !m.value.stages.includes(stage)) continue;
      if (id === this.id || now - m.seenAt < ttl) out.push(id);
    }
    if (!out.includes(this.id) && this.o.stages.some((s) => s.stage === stage)) out.push(this.id);
    return out;
  }

  // --- watches --------------------------------------------------------------------------------

  private async watch<T>(kv: KV, into: Map<string, Observed<T>>, name: keyof typeof this.ready): Promise<void> {
    const st = await kv.status();
    if (st.values === 0) this.ready[name] = true;
    const w = await kv.watch();
    this.watchers.push(w);
    (async () => {
      for await (const e of w) {
        into.set(e.key, { value: parse<T>(e), revision: e.revision, seenAt: Date.now(), op: e.operation });
        if (!this.ready[name] && (e.isUpdate || !e.delta)) this.ready[name] = true;
        if (this.ready.pairs && this.ready.members && this.ready.leases) this.kick();
      }
    })().catch((err) => this.o.log.error({ err }, `watch of ${name} ended`));
    const t0 = Date.now();
    while (!this.ready[name] && Date.now() - t0 < 10_000) await new Promise((r) => setTimeout(r, 10));
  }

  private every(ms: number, fn: () => Promise<void> | void): void {
    this.timers.push(setInterval(() => {
      if (this.stopped) return;
      Promise.resolve().then(fn).catch((err) => this.o.log.warn({ err: (err as Error).message }, "periodic task failed"));
    }, ms));
  }

  private kick(): void {
    if (!this.stopped) this.reconcile().catch((err) => this.o.log.warn({ err: (err as Error).message }, "reconcile failed"));
  }

  // --- placement and leases -------------------------------------------------------------------

  private desiredPairs(): string[] {
    const out: string[] = [];
    for (const [token, p] of this.pairs) {
      if (!p.value) continue;
      try {
        out.push(normalizePair(p.value.pair ?? tokenToPair(token)));
      } catch {
        this.o.log.warn({ key: token }, "tf_pairs has a key that is not a pair; ignored");
      }
    }
    return out;
  }

  private async reconcile(): Promise<void> {
    if (this.stopped || !(this.ready.pairs && this.ready.members && this.ready.leases)) return;
    if (this.reconciling) {
      this.again = true;
      return;
    }
    this.reconciling = true;
    try {
      do {
        this.again = false;
        await this.reconcileOnce();
      } while (this.again && !this.stopped);
    } finally {
      this.reconciling = false;
    }
  }

  private async reconcileOnce(): Promise<void> {
    const pairs = this.desiredPairs();
    const wanted = new Set<string>();
    for (const def of this.o.stages) {
      const members = this.liveMembers(def.stage);
      for (const pair of pairs) {
        const key = actorKey(def.stage, pair);
        wanted.add(key);
        const mine = rendezvousOwner(key, members) === this.id;
        const running = this.cells.has(key);
        if (running && !mine) await this.release(key);
        else if (!running && mine) await this.acquire(def, pair, key);
      }
    }
    for (const key of [...this.cells.keys()]) if (!wanted.has(key)) await this.release(key);
  }

  private leaseBytes(v: LeaseValue): Uint8Array {
    return json.encode(JSON.stringify(v));
  }

  private async acquire(def: ActorDef, pair: string, key: string): Promise<void> {
    if (this.releasing.has(key)) return;
    const now = Date.now();
    const obs = this.leases.get(key);
    const value = this.leaseBytes({ owner: this.id, since: now });
    let revision: number;
    try {
      if (this.o.ignoreLeases) revision = 0;
      else if (!obs || obs.op !== "PUT" || !obs.value) revision = await this.kv.leases.create(key, value);
      else if (obs.value.failed) {
        // Keep the record of the process that ran it (restarts, last error) when it was us.
        if (!this.failedStatus.has(key)) this.failedStatus.set(key, this.failedRecord(def.stage, pair, obs.value.failed.reason));
        return;
      } else if (obs.value.owner === this.id || obs.value.owner === null || leaseExpired(obs, now, this.o.config.lease.ttlMs)) {
        // Our own lease from before a restart, a released one, or one whose holder stopped renewing.
        revision = await this.kv.leases.update(key, value, obs.revision);
      } else return;
    } catch {
      return; // someone else won the compare-and-set; the watch will tell us who
    }
    this.failedStatus.delete(key);
    this.held.set(key, { revision, lastOk: Date.now() });
    const cell = new ActorCell({
      def, pair, owner: this.id, config: this.o.config, nc: this.o.nc, js: this.o.js, stateKv: this.kv.state,
      log: this.o.log, onFailed: (reason) => this.markFailed(key, reason),
    });
    this.cells.set(key, cell);
    this.o.log.info({ actor: key }, "lease taken; actor starting");
    cell.start();
  }

  private failedRecord(stage: string, pair: string, reason: string): ActorStatus {
    return {
      stage, pair, state: "failed", owner: this.id, lastSeq: 0, lastInputTs: null, lastInputAt: null, lag: null, processed: 0,
      published: 0, duplicates: 0, deadLetters: 0, restarts: 0, lastError: reason, detail: {},
    };
  }

  /** Past its restart budget: keep the lease key, owned by nobody and marked failed, so no other member retries it. */
  private markFailed(key: string, reason: string): void {
    const cell = this.cells.get(key);
    if (cell) this.failedStatus.set(key, cell.status());
    this.cells.delete(key);
    const h = this.held.get(key);
    this.held.delete(key);
    const v = this.leaseBytes({ owner: null, since: Date.now(), failed: { reason, at: Date.now() } });
    const write = h && !this.o.ignoreLeases ? this.kv.leases.update(key, v, h.revision) : this.kv.leases.put(key, v);
    write.catch((err) => this.o.log.warn({ actor: key, err: (err as Error).message }, "could not mark lease failed"));
  }

  /** Graceful: stop and checkpoint the actor, then delete the lease so the next owner starts at once. */
  private async release(key: string): Promise<void> {
    const cell = this.cells.get(key);
    if (!cell || this.releasing.has(key)) return;
    this.releasing.add(key);
    try {
      await cell.stop();
      this.cells.delete(key);
      const h = this.held.get(key);
      this.held.delete(key);
      if (h && !this.o.ignoreLeases) await this.kv.leases.delete(key, { previousSeq: h.revision }).catch(() => {});
      this.o.log.info({ actor: key }, "actor stopped; lease released");
    } finally {
      this.releasing.delete(key);
    }
  }

  /** Lost lease: stop at once, write nothing more (another owner may be running). */
  private async abandon(key: string, why: string): Promise<void> {
    const cell = this.cells.get(key);
    this.held.delete(key);
    if (!cell) return;
    this.o.log.warn({ actor: key, why }, "lease lost; actor stopped");
    this.cells.delete(key);
    await cell.stop({ hard: true });
  }

  private async renew(): Promise<void> {
    if (this.o.ignoreLeases) return;
    const { ttlMs, renewMs } = this.o.config.lease;
    await Promise.all([...this.held.entries()].map(async ([key, h]) => {
      if (this.releasing.has(key)) return;
      try {
        h.revision = await this.kv.leases.update(key, this.leaseBytes({ owner: this.id, since: Date.now() }), h.revision);
        h.lastOk = Date.now();
      } catch (err) {
        const msg = (err as Error).message ?? String(err);
        if (/wrong last sequence|key exists/i.test(msg)) await this.abandon(key, "another member holds the lease");
        else if (Date.now() > holderDeadline(h.lastOk, ttlMs, renewMs)) await this.abandon(key, `no renewal for ${Date.now() - h.lastOk} ms (${msg})`);
      }
    }));
  }
}

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}
