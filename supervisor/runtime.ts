// The per-process supervisor: watches the desired pairs, the live members and the leases, computes
// the owner of every (stage, pair) by rendezvous hashing, takes leases with KV create /
// compare-and-set, and runs an ActorCell for each lease it holds. One process or many, the code is
// the same: `tickflow up` is simply a single member that wins every key.
//
// Leases are bound to the holder's session, as etcd binds keys to one lease: a lease record names
// its owner, and it is valid while the owner's member record in tf_members keeps changing (one
// keep-alive write per process, however many actors it runs). Renewing thousands of lease keys
// one by one cost a write per actor per interval, and when a round ran longer than the interval
// (a busy event loop, a backlog) the rounds overlapped, raced on the same revision, and a lone
// worker read its own write as "another member holds the lease". Now periodic work never overlaps
// itself, and a lease is lost only when its record really names someone else.
//
// Keyed actors: the key is the desired pairs, or a stage's own list; pool stages run a PoolCell in
// every process, without a lease.
import type { JetStreamClient } from "@nats-io/jetstream";
import type { KV, KvEntry } from "@nats-io/kv";
import type { NatsConnection } from "@nats-io/transport-node";
import type { Logger } from "pino";
import { hostname } from "node:os";
import { nanoid } from "nanoid";
import { isPair, normalizePair, tokenToPair } from "../protocol/pairs.js";
import { BUCKETS, openBuckets } from "../protocol/streams.js";
import type { ActorDef, KeyedActorDef } from "./actor.js";
import { ActorCell, type ActorStatus } from "./actor-cell.js";
import { actorKey, checkKeys } from "./actor-key.js";
import type { Config } from "./config.js";
import { holderDeadline, leaseExpired } from "./lease-math.js";
import { rendezvousOwner } from "./placement.js";
import { connectionSecurity } from "./nats.js";
import { PublishPool } from "./publish-pool.js";
import { PoolCell } from "./pool-cell.js";
import { InputHubs } from "./input-hub.js";
import { inLanes } from "./lanes.js";
import { prefetchStates } from "./state-prefetch.js";

export type LeaseValue = { owner: string | null; since: number; failed?: { reason: string; at: number } };
/** `pairStages`: the stages among `stages` whose actors are one per pair (absent in members from before it was added). */
export type MemberValue = { id: string; instance: string; stages: string[]; pairStages?: string[]; host: string; pid: number; startedAt: number; beatAt: number };
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
  private readonly held = new Map<string, { revision: number }>();
  private readonly failedStatus = new Map<string, ActorStatus>();
  private readonly staticKeys = new Map<string, string[]>();
  /** Pool stages: one set of competing workers per process, no lease (see pool-cell.ts). */
  private readonly pools: PoolCell[] = [];
  private readonly releasing = new Set<string>();
  private readonly timers = new Set<NodeJS.Timeout>();
  /** Last successful keep-alive (our member record written): what our leases live on. */
  private lastBeatOk = Date.now();
  /** Leases this process gave up because another member took them, or its keep-alive failed too long. */
  leasesLost = 0;
  private readonly watchers: { stop(): void }[] = [];
  private readonly startedAt = Date.now();
  private pool!: PublishPool;
  /** Stream actors' inputs: one reader per stream for the whole process (see input-hub.ts). */
  private hubs!: InputHubs;
  private readonly placement = new Map<string, { sig: string; members: string[]; owners: Map<string, string | null> }>();
  private ready = { pairs: false, members: false, leases: false };
  private stopped = false;
  private started = false;
  private reconciling = false;
  private again = false;
  /** Bumped by every pairs or leases event: with the cells, the live members and time, what a reconcile pass depends on. */
  private watchVersion = 0;
  /** What the last pass saw, when it found nothing to do; a pass that would see the same is skipped. */
  private idleSignature: string | null = null;
  private kickPending = false;
  /** Actors started and stopped in the current reconcile pass (or stop), for its one log line. */
  private readonly startedInPass: string[] = [];
  private readonly releasedInPass: string[] = [];
  /** Actors whose lease the current pass took, started together at its end (startTaken). */
  private readonly takenInPass: [string, ActorCell][] = [];

  /**
   * The stages in the order a pass starts their actors. Readers before writers: stream actors
   * before sources, so a source's first outputs find their readers running, rather than piling up
   * while thousands of them still start (and then being read back through catch-up consumers,
   * competing with the start itself).
   */
  private readonly startOrder: ActorDef[];

  constructor(private readonly o: SupervisorOptions) {
    this.id = o.id;
    this.startOrder = [...o.stages].sort((a, b) => Number(a.kind === "source") - Number(b.kind === "source"));
  }

  static defaultId(): string {
    return `${hostname()}-${process.pid}`;
  }

  async start(): Promise<void> {
    const { js, config } = this.o;
    // Keys computed from config are checked before anything runs: a bad one stops the process with its name.
    for (const def of this.o.stages) this.keysOf(def, []);
    this.kv = await openBuckets(js);
    this.hubs = new InputHubs(js, this.o.log);
    this.pool = new PublishPool(PublishPool.serverOf(this.o.nc), {
      size: config.publish.connections, name: this.id, ackTimeoutMs: config.publish.ackTimeoutMs,
      // The same credentials, TLS and deadline as the connection this supervisor was given.
      connectOptions: connectionSecurity(this.o.nc),
    });
    await this.checkIdFree();
    await this.heartbeat();
    await this.watch(this.kv.pairs, this.pairs, "pairs");
    await this.watch(this.kv.members, this.members, "members");
    await this.watch(this.kv.leases, this.leases, "leases", (key, obs) => this.leaseChanged(key, obs));
    this.every(Math.min(config.membership.heartbeatMs, config.lease.renewMs), () => this.keepAlive());
    this.every(Math.min(500, config.lease.renewMs), () => this.reconcile());
    for (const def of this.o.stages) {
      if (def.kind !== "pool") continue;
      const pool = new PoolCell({ def, owner: this.id, config, nc: this.o.nc, js, log: this.o.log });
      this.pools.push(pool);
      pool.start();
    }
    this.started = true;
    // The watches are ready: place now. Their events kick a pass only once all three are ready,
    // so pairs that were already there when this member started (a restart, a replica joining)
    // otherwise waited for the periodic pass, up to 500 ms.
    this.kick();
    this.o.log.info({ member: this.id, stages: this.o.stages.map((s) => s.stage) }, "supervisor started");
  }

  /** Graceful hand-off: stop consuming, checkpoint, release leases, leave the membership. */
  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    for (const t of this.timers) clearTimeout(t);
    for (const w of this.watchers) w.stop();
    await Promise.all([...this.cells.keys()].map((k) => this.release(k)).concat(this.pools.map((p) => p.stop())));
    this.logPass(this.releasedInPass, "actors stopped; leases released");
    this.hubs.close();
    await this.pool.close();
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
    for (const t of this.timers) clearTimeout(t);
    for (const w of this.watchers) w.stop();
    await Promise.all([...this.cells.values(), ...this.pools].map((c) => c.stop({ hard: true })));
    this.cells.clear();
    this.held.clear();
    this.hubs.close();
    await this.pool.close();
  }

  /** Started, not stopped, and the pairs, members and leases watches have their initial state (the /readyz probe). */
  isReady(): boolean {
    return this.started && !this.stopped && this.ready.pairs && this.ready.members && this.ready.leases;
  }

  /**
   * For bounded runs (`up --once`), once every source has published its end: waits until every
   * stream actor here has applied all its input and its outputs are acked, twice in a row with
   * nothing processed in between (an actor checked early in a round may get input from one
   * checked later), then checkpoints them all.
   */
  async settle(pollMs = 100): Promise<void> {
    while (!this.runsAllItOwns()) await new Promise((r) => setTimeout(r, pollMs));
    let lastTotal = -1;
    for (;;) {
      const cells = [...this.cells.values(), ...this.pools];
      // A round stops at the first actor still busy: asking the others now would be wasted requests.
      let all = true;
      for (const c of cells) {
        if (!(await c.caughtUp().catch(() => false))) {
          all = false;
          break;
        }
      }
      const total = cells.reduce((n, c) => n + c.processedCount(), 0);
      if (all && total === lastTotal) break;
      lastTotal = all ? total : -1;
      await new Promise((r) => setTimeout(r, pollMs));
    }
    await Promise.all([...this.cells.values()].map((c) => c.checkpointIfRunning()));
  }

  /** Every actor placed on this member is running (or has failed for good). */
  runsAllItOwns(): boolean {
    if (!(this.ready.pairs && this.ready.members && this.ready.leases)) return false;
    const pairs = this.desiredPairs();
    for (const def of this.o.stages) {
      const members = this.liveMembers(def.stage);
      // The stage's own keys (pairs, a keyed stage's static keys, none for a pool), as reconcile places them.
      for (const k of this.keysOf(def, pairs)) {
        const key = actorKey(def.stage, k);
        if (this.ownerOf(def.stage, key, members) !== this.id || this.failedStatus.has(key)) continue;
        const st = this.cells.get(key)?.lifecycle();
        if (st !== "running") return false;
      }
    }
    return true;
  }

  /** Status of every actor this process runs (or ran and marked failed). */
  status(): ActorStatus[] {
    const out = [...this.cells.values(), ...this.pools].map((c) => c.status());
    for (const [k, s] of this.failedStatus) if (!this.cells.has(k)) out.push(s);
    return out;
  }

  /** The running cell of `(stage, key)`; `key` is a pair or a plain key. */
  cell(stage: string, key: string): ActorCell | undefined {
    return this.cells.get(actorKey(stage, key));
  }

  /** NATS connections this process uses to publish outputs (fixed, whatever the number of actors). */
  publishConnections(): number {
    return this.pool?.connections() ?? 0;
  }

  memberInfo(): MemberValue {
    return {
      id: this.id, instance: this.instance, stages: this.o.stages.map((s) => s.stage),
      // So that a reader without the stage definitions (the gateway, another version's CLI) knows
      // which stages have an actor per pair, and lists no phantom per-pair rows for the others.
      pairStages: this.o.stages.filter((d) => d.kind !== "pool" && !d.keys).map((d) => d.stage), host: hostname(), pid: process.pid,
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
    this.lastBeatOk = Date.now();
  }

  /**
   * The one periodic write that keeps this member, and with it every lease it holds, alive. When
   * it has failed for longer than the holder's deadline, other members may already have judged our
   * leases expired: stop every actor, writing nothing more ("no lease, no run"). A write that is
   * merely slow (a busy event loop) and then lands keeps everything: nobody else took over, and if
   * somebody did, the lease watch says so.
   */
  private async keepAlive(): Promise<void> {
    try {
      await this.heartbeat();
    } catch (err) {
      const { ttlMs, renewMs } = this.o.config.lease;
      if (Date.now() > holderDeadline(this.lastBeatOk, ttlMs, renewMs) && this.cells.size > 0) {
        const why = `no keep-alive for ${Date.now() - this.lastBeatOk} ms (${(err as Error).message})`;
        await Promise.all([...this.cells.keys()].map((k) => this.abandon(k, why)));
      }
      throw err;
    }
  }

  /**
   * A lease is valid while its owner's member record keeps changing, as this observer sees it. An
   * owner whose member record this process has not seen yet (the two watches deliver independently)
   * gets the benefit of the doubt for a TTL from when the lease itself was seen.
   */
  private ownerAlive(owner: string, lease: Observed<LeaseValue>, now: number): boolean {
    if (owner === this.id) return true;
    const ttl = this.o.config.lease.ttlMs;
    const m = this.members.get(owner);
    if (!m) return !leaseExpired(lease, now, ttl);
    return m.op === "PUT" && !leaseExpired(m, now, ttl);
  }

  /** Watch of tf_leases: a lease we hold that now names someone else (or is gone) was taken over. */
  private leaseChanged(key: string, obs: Observed<LeaseValue>): void {
    const h = this.held.get(key);
    if (!h || obs.revision <= h.revision || this.releasing.has(key)) return;
    if (obs.value?.owner === this.id && !obs.value.failed) {
      h.revision = obs.revision;
      return;
    }
    this.abandon(key, obs.value?.owner ? `member ${obs.value.owner} holds the lease now` : "the lease was removed").catch(() => {});
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

  private async watch<T>(kv: KV, into: Map<string, Observed<T>>, name: keyof typeof this.ready, onChange?: (key: string, obs: Observed<T>) => void): Promise<void> {
    const st = await kv.status();
    if (st.values === 0) this.ready[name] = true;
    const w = await kv.watch();
    this.watchers.push(w);
    (async () => {
      for await (const e of w) {
        const obs: Observed<T> = { value: parse<T>(e), revision: e.revision, seenAt: Date.now(), op: e.operation };
        into.set(e.key, obs);
        // Heartbeats change members every second without changing who is live (liveMembers says that).
        if (name !== "members") this.watchVersion++;
        onChange?.(e.key, obs);
        if (!this.ready[name] && (e.isUpdate || !e.delta)) this.ready[name] = true;
        if (this.ready.pairs && this.ready.members && this.ready.leases) this.kick();
      }
    })().catch((err) => this.o.log.error({ err }, `watch of ${name} ended`));
    const t0 = Date.now();
    while (!this.ready[name] && Date.now() - t0 < 10_000) await new Promise((r) => setTimeout(r, 10));
  }

  /**
   * Runs `fn` every `ms`, never overlapping itself: the next round is scheduled when this one has
   * finished, so a round that runs long delays the next instead of racing it.
   */
  private every(ms: number, fn: () => Promise<void> | void): void {
    const round = () => {
      const t = setTimeout(async () => {
        this.timers.delete(t);
        if (this.stopped) return;
        try {
          await fn();
        } catch (err) {
          this.o.log.warn({ err: (err as Error).message }, "periodic task failed");
        }
        if (!this.stopped) round();
      }, ms);
      this.timers.add(t);
    };
    round();
  }

  /**
   * A reconcile soon: watch events come in bursts (a start writes thousands of leases, and each
   * comes back through the watch), and one pass per burst does what one pass per event did.
   */
  private kick(): void {
    if (this.stopped || this.kickPending) return;
    this.kickPending = true;
    const t = setTimeout(() => {
      this.timers.delete(t);
      this.kickPending = false;
      if (!this.stopped) this.reconcile().catch((err) => this.o.log.warn({ err: (err as Error).message }, "reconcile failed"));
    }, KICK_DELAY_MS);
    this.timers.add(t);
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

  /** The keys of a stage: computed from config when the stage says so (once), else the desired pairs. */
  private keysOf(def: ActorDef, pairs: string[]): string[] {
    if (def.kind === "pool") return [];
    if (!def.keys) return pairs;
    let keys = this.staticKeys.get(def.stage);
    if (!keys) this.staticKeys.set(def.stage, (keys = checkKeys(def.stage, def.keys(this.o.config))));
    return keys;
  }

  private async reconcileOnce(): Promise<void> {
    // Reconcile runs every 500 ms and on every watch event; with thousands of actors a full pass
    // is milliseconds, so a pass that can only find what the last idle one found is skipped.
    const signature = `${this.watchVersion}|${this.cells.size}|${this.o.stages.map((d) => this.liveMembers(d.stage).join(",")).join(";")}`;
    if (signature === this.idleSignature) return;
    const pairs = this.desiredPairs();
    const wanted = new Set<string>();
    const releases: string[] = [];
    const acquires: (() => Promise<void>)[] = [];
    for (const def of this.startOrder) {
      const members = this.liveMembers(def.stage);
      for (const k of this.keysOf(def, pairs)) {
        const key = actorKey(def.stage, k);
        wanted.add(key);
        const mine = this.ownerOf(def.stage, key, members) === this.id;
        const running = this.cells.has(key);
        if (running && !mine) releases.push(key);
        else if (!running && mine) acquires.push(() => this.acquire(def as KeyedActorDef, k, key));
      }
    }
    for (const key of this.cells.keys()) if (!wanted.has(key)) releases.push(key);
    // A thousand pairs × stages is thousands of lease writes: many in flight at a time (they are
    // publishes on the pool, a few hundred in flight is nothing to the server), so a start or a
    // rebalance takes a second, not minutes. 32 in flight took 0.4 s for 2,700 leases.
    this.idleSignature = releases.length === 0 && acquires.length === 0 ? signature : null;
    await inLanes(releases, RECONCILE_CONCURRENCY, (k) => this.release(k));
    this.logPass(this.releasedInPass, "actors stopped; leases released");
    await inLanes(acquires, RECONCILE_CONCURRENCY, (acquire) => acquire());
    await this.startTaken();
    this.logPass(this.startedInPass, "leases taken; actors starting");
  }

  /**
   * Starts the actors whose leases this pass took, with their checkpoints read together
   * (state-prefetch.ts) when there are many: after every lease is taken, as each actor's own read
   * was after its lease.
   */
  private async startTaken(): Promise<void> {
    const taken = this.takenInPass.splice(0);
    if (taken.length === 0) return;
    const states = await prefetchStates(this.o.js, BUCKETS.state, taken.map(([key]) => key), this.o.log);
    for (const [key, cell] of taken) {
      // Lost or released while the pass went on (or the process is stopping): it never ran.
      if (this.cells.get(key) !== cell || this.stopped) continue;
      cell.start(states.get(key));
      this.o.log.debug({ actor: key }, "lease taken; actor starting");
      this.startedInPass.push(key);
    }
  }

  /**
   * One line per reconcile pass for the actors it started or stopped (each actor's own line is at
   * debug level): starting a thousand pairs is thousands of actors, and a line each was thousands
   * of synchronous writes to the log and nothing a person could read.
   */
  private logPass(keys: string[], msg: string): void {
    if (keys.length === 0) return;
    const stages: Record<string, number> = {};
    for (const k of keys) {
      const stage = k.slice(0, k.indexOf("."));
      stages[stage] = (stages[stage] ?? 0) + 1;
    }
    const shown = keys.slice(0, 5).join(", ");
    this.o.log.info({ count: keys.length, stages, actors: keys.length > 5 ? `${shown} and ${keys.length - 5} more` : shown }, msg);
    keys.length = 0;
  }

  /**
   * Rendezvous owner of `key`, remembered while the stage's live members stay the same: reconcile
   * runs on every watch event, and hashing thousands of keys each time was a tenth of a busy
   * worker's CPU (measured with 900 actors).
   */
  private ownerOf(stage: string, key: string, members: string[]): string | null {
    let memo = this.placement.get(stage);
    // The same array as the last call (a pass asks for every key with one list): no need to compare.
    if (!memo || memo.members !== members) {
      const sig = members.join("\u0000");
      if (!memo || memo.sig !== sig) this.placement.set(stage, (memo = { sig, members, owners: new Map() }));
      else memo.members = members;
    }
    let owner = memo.owners.get(key);
    if (owner === undefined) memo.owners.set(key, (owner = rendezvousOwner(key, members)));
    return owner;
  }

  private leaseBytes(v: LeaseValue): Uint8Array {
    return json.encode(JSON.stringify(v));
  }

  /** `actor` is the actor's own key (a pair or a plain key); `key` its lease key `<stage>.<token>`. */
  private async acquire(def: KeyedActorDef, actor: string, key: string): Promise<void> {
    if (this.releasing.has(key)) return;
    const now = Date.now();
    const obs = this.leases.get(key);
    const value = this.leaseBytes({ owner: this.id, since: now });
    let revision: number;
    try {
      if (this.o.ignoreLeases) revision = 0;
      // A key never written, or deleted (a released lease: its delete marker's revision is what a create must follow).
      else if (!obs || obs.op !== "PUT" || !obs.value) revision = await this.leaseWrite(key, value, obs && obs.op !== "PUT" ? obs.revision : 0);
      else if (obs.value.failed) {
        // Keep the record of the process that ran it (restarts, last error) when it was us.
        if (!this.failedStatus.has(key)) this.failedStatus.set(key, this.failedRecord(def.stage, actor, obs.value.failed.reason));
        return;
      } else if (obs.value.owner === this.id || obs.value.owner === null || !this.ownerAlive(obs.value.owner, obs, now)) {
        // Our own lease from before a restart, a released one, or one whose holder stopped keeping alive.
        revision = await this.leaseWrite(key, value, obs.revision);
      } else return;
    } catch {
      return; // someone else won the compare-and-set; the watch will tell us who
    }
    this.failedStatus.delete(key);
    this.held.set(key, { revision });
    const cell = new ActorCell({
      def, key: actor, owner: this.id, config: this.o.config, nc: this.o.nc, js: this.o.js, stateKv: this.kv.state, pool: this.pool, hubs: this.hubs,
      log: this.o.log, onFailed: (reason) => this.markFailed(key, reason),
    });
    this.cells.set(key, cell);
    this.takenInPass.push([key, cell]);
  }

  /**
   * A lease written with compare-and-set on the revision this member saw (0: none), on the
   * actor's publish connection rather than as a KV request: starting a thousand pairs is
   * thousands of these, and the pool sends each event-loop turn's writes together.
   */
  private async leaseWrite(key: string, value: Uint8Array, previous: number): Promise<number> {
    return (await this.pool.forKey(key)).kvPut(BUCKETS.leases, key, value, previous);
  }

  private failedRecord(stage: string, actor: string, reason: string): ActorStatus {
    return {
      stage, key: actor, ...(isPair(actor) ? { pair: actor } : {}), state: "failed", owner: this.id, lastSeq: 0, lastInputTs: null, lastInputAt: null, lag: null, processed: 0,
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
      // Best effort, as before: a lease left behind is taken over once its holder stops keeping alive.
      if (h && !this.o.ignoreLeases) await this.pool.forKey(key).then((c) => c.kvDelete(BUCKETS.leases, key, h.revision)).catch(() => {});
      this.o.log.debug({ actor: key }, "actor stopped; lease released");
      this.releasedInPass.push(key);
    } finally {
      this.releasing.delete(key);
    }
  }

  /** Lost lease: stop at once, write nothing more (another owner may be running). */
  private async abandon(key: string, why: string): Promise<void> {
    const cell = this.cells.get(key);
    this.held.delete(key);
    if (!cell) return;
    this.leasesLost++;
    this.o.log.warn({ actor: key, why }, "lease lost; actor stopped");
    this.cells.delete(key);
    await cell.stop({ hard: true });
  }
}

const RECONCILE_CONCURRENCY = 256;

/** How long a watch event waits for others before the reconcile they all call for. */
const KICK_DELAY_MS = 10;

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}
