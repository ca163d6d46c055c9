// `tickflow status`: every actor of the cluster. Live processes answer the micro-service stats
// request; actors that no live process runs are listed from the leases and checkpoints, so a
// desired actor never silently disappears from the report.
import type { Msg, NatsConnection } from "@nats-io/transport-node";
import { jetstream } from "@nats-io/jetstream";
import type { KV } from "@nats-io/kv";
import { decode } from "../protocol/codec.js";
import { isPair, normalizePair } from "../protocol/pairs.js";
import { BUCKETS, bucketKeys, openBuckets } from "../protocol/streams.js";
import type { ActorStatus } from "./actor-cell.js";
import { actorKey, isPlainKey } from "./actor-key.js";
import type { LeaseValue, MemberValue } from "./runtime.js";
import { lastPerSubject, prefetchStates, type StateEntry } from "./state-prefetch.js";
import { SERVICE_NAME, type ProcessStatus, type StatusPage, type StatusSummary } from "./service.js";

export type ClusterActor = Omit<ActorStatus, "owner"> & { owner: string | null };
export type ClusterStatus = { members: MemberValue[]; actors: ClusterActor[] };

/** Where a source actor's output ends, so a stopped source still shows its position. `key`: its pair or plain key. */
export type OutputOf = (key: string) => { stream: string; subject: string };

export async function clusterStatus(
  nc: NatsConnection, stages: string[], opts: { waitMs?: number; outputs?: Record<string, OutputOf>; notPerPair?: string[] } = {},
): Promise<ClusterStatus> {
  const js = jetstream(nc);
  const jsm = await js.jetstreamManager();
  const kv = await openBuckets(js);
  const members: MemberValue[] = [];
  for (const key of await bucketKeys(jsm, BUCKETS.members)) {
    const e = await kv.members.get(key);
    if (e && e.operation === "PUT") members.push(e.json<MemberValue>());
  }
  const replies: ProcessStatus[] = [];
  const pageSubjects: string[] = [];
  const waitMs = opts.waitMs ?? 2000;
  const it = await nc.requestMany(`$SRV.STATS.${SERVICE_NAME}`, "", {
    maxWait: waitMs,
    strategy: "stall",
    stall: 300,
    noMux: true,
  } as never);
  try {
    for await (const m of it) {
      try {
        const s = m.json<{ endpoints?: { data?: Partial<StatusSummary & ProcessStatus> }[] }>();
        const data = s.endpoints?.find((e) => e.data && (e.data.statusSubject || e.data.actors))?.data;
        // A process from before paged status carries its actors in the stats themselves.
        if (data?.actors) replies.push(data as ProcessStatus);
        else if (data?.statusSubject) pageSubjects.push(data.statusSubject);
      } catch {
        // a reply from something else answering $SRV; ignore
      }
    }
  } catch (err) {
    // No live process answers: the report below comes from leases and checkpoints alone.
    if (!/no responders/i.test(String((err as Error).message))) throw err;
  }
  // Each live process's actors, a page at a time (service.ts). A process that stops answering
  // midway keeps what it sent; its other actors are listed from the leases below.
  await Promise.all(pageSubjects.map(async (subject) => {
    let after: string | null = null;
    do {
      const m: Msg | null = await nc.request(subject, JSON.stringify({ after }), { timeout: waitMs }).catch(() => null);
      let page: StatusPage | { error: string } | null = null;
      try {
        page = m && m.json<StatusPage | { error: string }>();
      } catch {
        return; // not our endpoint's answer
      }
      if (!page || "error" in page) return;
      replies.push(page);
      after = page.next;
    } while (after !== null);
  }));
  const actors = new Map<string, ClusterActor>();
  for (const r of replies) {
    for (const a of r.actors) {
      a.key ??= a.pair!; // a process from before keyed actors
      // Pool workers of one stage run in every replica: one row per process.
      const k = a.kind === "pool" ? `${a.stage}@${a.owner}` : actorKey(a.stage, a.key);
      const prev = actors.get(k);
      // A failed record of one process never hides the running actor of another.
      if (!prev || (prev.state !== "running" && a.state === "running")) actors.set(k, a);
    }
  }
  // Desired actors no live process reported: their lease says who holds them (or that they
  // failed), their checkpoint or output where they stopped. Read together (state-prefetch.ts):
  // a stopped cluster of a thousand pairs is six thousand actors, and a few requests each, one
  // after another, took seconds.
  const missing = new Map<string, { stage: string; key: string }>();
  const consider = (stage: string, key: string) => {
    const k = actorKey(stage, key);
    if (!actors.has(k)) missing.set(k, { stage, key });
  };
  // Stages keyed otherwise (news sources) or run as pools get no per-pair rows: as the caller
  // says, or else as the live members say (a stage no member that says runs per pair).
  const saying = members.filter((m) => m.pairStages);
  const notPerPair = new Set(opts.notPerPair ?? stages.filter((st) => saying.some((m) => m.stages.includes(st)) && !saying.some((m) => m.pairStages!.includes(st))));
  // A stage is listed per pair when a live member runs it or it ever ran here (a lease or a
  // checkpoint): a deployment without the prediction stages does not list 3,000 of their actors
  // as stopped, and a stage whose workers are all gone still shows every actor it had.
  const leaseKeys = await bucketKeys(jsm, BUCKETS.leases);
  const stateKeys = await bucketKeys(jsm, BUCKETS.state);
  const ran = new Set([...leaseKeys, ...stateKeys].map((k) => k.slice(0, k.indexOf("."))));
  const live = new Set(members.flatMap((m) => m.stages));
  const perPair = stages.filter((st) => !notPerPair.has(st) && (live.has(st) || ran.has(st)));
  for (const token of await bucketKeys(jsm, BUCKETS.pairs)) {
    let pair: string;
    try {
      pair = normalizePair(token);
    } catch {
      continue;
    }
    for (const stage of perPair) consider(stage, pair);
  }
  // Actors keyed otherwise (news sources) are not in tf_pairs: those that ever ran left a lease or a checkpoint.
  for (const k of [...leaseKeys, ...stateKeys]) {
    const dot = k.indexOf(".");
    const stage = k.slice(0, dot);
    const token = k.slice(dot + 1);
    if (dot > 0 && stages.includes(stage) && isPlainKey(token)) consider(stage, token);
  }
  const keys = [...missing.keys()];
  const [leases, states] = await Promise.all([prefetchStates(js, BUCKETS.leases, keys), prefetchStates(js, BUCKETS.state, keys)]);
  const entry = async (read: Map<string, StateEntry | null>, bucket: KV, k: string) => (read.has(k) ? read.get(k)! : await bucket.get(k));
  const sources: { k: string; stream: string; subject: string }[] = [];
  for (const [k, { stage, key }] of missing) {
    const lease = await entry(leases, kv.leases, k);
    const lv = lease && lease.operation === "PUT" ? (JSON.parse(new TextDecoder().decode(lease.value)) as LeaseValue) : null;
    const cp = await entry(states, kv.state, k);
    const seq = cp && cp.operation === "PUT" && cp.length > 0 ? (decode(cp.value) as { seq: number }).seq : 0;
    // A source keeps no checkpoint: its position is the last message of its output (read below).
    const out = opts.outputs?.[stage]?.(key);
    if (seq === 0 && out) sources.push({ k, ...out });
    actors.set(k, {
      stage, key, ...(isPair(key) ? { pair: key } : {}), state: lv?.failed ? "failed" : "stopped", owner: lv?.owner ?? null, lastSeq: seq,
      lastInputTs: null, lastInputAt: null, lag: null, processed: 0, published: 0, duplicates: 0, deadLetters: 0, restarts: 0,
      lastError: lv?.failed?.reason ?? null, detail: {},
    });
  }
  // Read together per stream and subject prefix (`md.trades.>` for the trades actors' outputs).
  const groups = new Map<string, { stream: string; filter: string; list: typeof sources }>();
  for (const x of sources) {
    const filter = `${x.subject.slice(0, x.subject.lastIndexOf("."))}.>`;
    const g = groups.get(`${x.stream} ${filter}`) ?? { stream: x.stream, filter, list: [] };
    g.list.push(x);
    groups.set(`${x.stream} ${filter}`, g);
  }
  for (const { stream, filter, list } of groups.values()) {
    const last = await lastPerSubject(js, stream, filter, list.map((x) => x.subject));
    for (const x of list) {
      const m = last.has(x.subject) ? last.get(x.subject) : await jsm.streams.getMessage(stream, { last_by_subj: x.subject }).catch(() => null);
      actors.get(x.k)!.lastSeq = m?.seq ?? 0;
    }
  }
  const list = [...actors.values()].sort((a, b) => a.key.localeCompare(b.key) || stages.indexOf(a.stage) - stages.indexOf(b.stage));
  return { members, actors: list };
}
