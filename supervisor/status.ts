// `tickflow status`: every actor of the cluster. Live processes answer the micro-service stats
// request; actors that no live process runs are listed from the leases and checkpoints, so a
// desired actor never silently disappears from the report.
import type { NatsConnection } from "@nats-io/transport-node";
import { jetstream } from "@nats-io/jetstream";
import { decode } from "../protocol/codec.js";
import { isPair, normalizePair } from "../protocol/pairs.js";
import { BUCKETS, bucketKeys, openBuckets } from "../protocol/streams.js";
import type { ActorStatus } from "./actor-cell.js";
import { actorKey, isPlainKey } from "./actor-key.js";
import type { LeaseValue, MemberValue } from "./runtime.js";
import { SERVICE_NAME, type ProcessStatus } from "./service.js";

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
  const it = await nc.requestMany(`$SRV.STATS.${SERVICE_NAME}`, "", {
    maxWait: opts.waitMs ?? 2000,
    strategy: "stall",
    stall: 300,
    noMux: true,
  } as never);
  try {
    for await (const m of it) {
      try {
        const s = m.json<{ endpoints?: { data?: ProcessStatus }[] }>();
        const data = s.endpoints?.find((e) => e.data && (e.data as ProcessStatus).actors)?.data;
        if (data) replies.push(data);
      } catch {
        // a reply from something else answering $SRV; ignore
      }
    }
  } catch (err) {
    // No live process answers: the report below comes from leases and checkpoints alone.
    if (!/no responders/i.test(String((err as Error).message))) throw err;
  }
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
  const notRunning = async (stage: string, key: string): Promise<void> => {
    const k = actorKey(stage, key);
    if (actors.has(k)) return;
    const lease = await kv.leases.get(k);
    const lv = lease && lease.operation === "PUT" ? lease.json<LeaseValue>() : null;
    const cp = await kv.state.get(k);
    let seq = cp && cp.operation === "PUT" && cp.length > 0 ? (decode(cp.value) as { seq: number }).seq : 0;
    const out = opts.outputs?.[stage]?.(key);
    // A source keeps no checkpoint: its position is the last message of its output.
    if (seq === 0 && out) seq = (await jsm.streams.getMessage(out.stream, { last_by_subj: out.subject }).catch(() => null))?.seq ?? 0;
    actors.set(k, {
      stage, key, ...(isPair(key) ? { pair: key } : {}), state: lv?.failed ? "failed" : "stopped", owner: lv?.owner ?? null, lastSeq: seq,
      lastInputTs: null, lastInputAt: null, lag: null, processed: 0, published: 0, duplicates: 0, deadLetters: 0, restarts: 0,
      lastError: lv?.failed?.reason ?? null, detail: {},
    });
  };
  // Stages keyed otherwise (news sources) or run as pools get no per-pair rows.
  const notPerPair = new Set(opts.notPerPair ?? []);
  for (const token of await bucketKeys(jsm, BUCKETS.pairs)) {
    let pair: string;
    try {
      pair = normalizePair(token);
    } catch {
      continue;
    }
    for (const stage of stages) if (!notPerPair.has(stage)) await notRunning(stage, pair);
  }
  // Actors keyed otherwise (news sources) are not in tf_pairs: those that ever ran left a lease or a checkpoint.
  for (const bucket of [BUCKETS.leases, BUCKETS.state]) {
    for (const k of await bucketKeys(jsm, bucket)) {
      const dot = k.indexOf(".");
      const stage = k.slice(0, dot);
      const token = k.slice(dot + 1);
      if (dot > 0 && stages.includes(stage) && isPlainKey(token)) await notRunning(stage, token);
    }
  }
  const list = [...actors.values()].sort((a, b) => a.key.localeCompare(b.key) || stages.indexOf(a.stage) - stages.indexOf(b.stage));
  return { members, actors: list };
}
