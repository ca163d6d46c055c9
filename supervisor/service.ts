// Each process registers a NATS micro service named "tickflow", so `nats micro ls`, `nats micro
// info tickflow` and `nats micro stats tickflow` show every worker. The stats carry a summary (the
// member, its actors counted per stage and state, and where to read them); the status endpoint
// answers the actors themselves, in pages, which is what `tickflow status` aggregates.
//
// Why pages: a message is at most the server's max_payload (1 MB by default). A process with six
// stages over a thousand pairs runs 6,000 actors, about 2.4 MB of JSON: the stats that carried them
// all could not be sent, and the failed reply crashed the process that was asked.
import type { NatsConnection } from "@nats-io/transport-node";
import { Svcm, type Service } from "@nats-io/services";
import type { ActorStatus } from "./actor-cell.js";
import { actorKey } from "./actor-key.js";
import { stageCounts, type StageCounts } from "./actor-summary.js";
import type { MemberValue } from "./runtime.js";

export const SERVICE_NAME = "tickflow";
export const SERVICE_VERSION = "0.1.0";

export type ProcessStatus = { member: MemberValue; actors: ActorStatus[] };

/**
 * One page of a process's actors, ordered by actor key: ask the status endpoint with
 * `{"after": <next>}` for the following page; `next` is null on the last one.
 */
export type StatusPage = ProcessStatus & { total: number; next: string | null };

/** What the service's stats carry (small whatever the number of actors). */
export type StatusSummary = { member: MemberValue; statusSubject: string; total: number; stages: Record<string, StageCounts> };

/** The subject of a member's status endpoint. */
export function statusSubject(memberId: string): string {
  return `tf.status.${memberId.replace(/[^A-Za-z0-9_-]/g, "_")}`;
}

/** An actor's place in the pages: unique per process (a pool's workers share a stage and have no key). */
function pageKey(a: ActorStatus): string {
  return a.kind === "pool" ? `${a.stage}@${a.owner}` : actorKey(a.stage, a.key);
}

export function summarize(st: ProcessStatus): StatusSummary {
  return { member: st.member, statusSubject: statusSubject(st.member.id), total: st.actors.length, stages: stageCounts(st.actors) };
}

/**
 * The page of actors after `after` (from the first when null), as JSON of at most `budget` bytes:
 * as many actors as fit, and always at least one (its `detail` dropped if even that is too big),
 * so a reader paging through always gets to the end.
 */
export function statusPage(st: ProcessStatus, after: string | null, budget: number): string {
  const sorted = st.actors.map((a) => [pageKey(a), a] as const).sort((x, y) => (x[0] < y[0] ? -1 : x[0] > y[0] ? 1 : 0));
  const start = after === null ? 0 : sorted.findIndex(([k]) => k > after);
  const envelope = (actors: string[], next: string | null) => `{"member":${JSON.stringify(st.member)},"total":${sorted.length},"next":${JSON.stringify(next)},"actors":[${actors.join(",")}]}`;
  // Room for the envelope with the longest possible `next` (an actor key), counted in bytes.
  let room = budget - Buffer.byteLength(envelope([], "x".repeat(Math.max(0, ...sorted.map(([k]) => k.length)))));
  const page: string[] = [];
  let i = start < 0 ? sorted.length : start;
  for (; i < sorted.length; i++) {
    let json = JSON.stringify(sorted[i][1]);
    let bytes = Buffer.byteLength(json) + 1;
    if (bytes > room && page.length === 0) {
      json = JSON.stringify({ ...sorted[i][1], detail: { omitted: "too large for one message" } });
      bytes = Buffer.byteLength(json) + 1;
    }
    if (bytes > room && page.length > 0) break;
    page.push(json);
    room -= bytes;
  }
  return envelope(page, i < sorted.length ? sorted[i - 1][0] : null);
}

/** Reads `{"after": "<key>"}` (or nothing: the first page); a message saying what is wrong otherwise. */
export function parsePageRequest(data: Uint8Array): { after: string | null } | { error: string } {
  if (data.length === 0) return { after: null };
  let v: unknown;
  try {
    v = JSON.parse(new TextDecoder().decode(data));
  } catch (err) {
    return { error: `status request: not JSON (${(err as Error).message}); send {} or {"after":"<actor key>"}` };
  }
  if (!v || typeof v !== "object" || Array.isArray(v)) return { error: `status request: expected an object such as {"after":"<actor key>"}` };
  const after = (v as { after?: unknown }).after;
  if (after === undefined || after === null) return { after: null };
  if (typeof after !== "string") return { error: `status request: "after" must be an actor key (a string), got ${JSON.stringify(after)}` };
  return { after };
}

export async function registerService(nc: NatsConnection, status: () => ProcessStatus): Promise<Service> {
  const me = status().member;
  // Replies stay under the server's limit with room for the headers the services package adds.
  const budget = () => Math.max(4096, Math.floor((nc.info?.max_payload ?? 1024 * 1024) * 0.9) - 1024);
  // The services package pins its own nats-core build; the connection object is the same protocol.
  const svc = await new Svcm(nc as never).add({
    name: SERVICE_NAME,
    version: SERVICE_VERSION,
    description: "Tickflow worker: per-pair actors on JetStream",
    metadata: { member: me.id, stages: me.stages.join(","), host: me.host, pid: String(me.pid) },
    statsHandler: async () => summarize(status()),
  });
  svc.addEndpoint("status", {
    subject: statusSubject(me.id),
    handler: (err, msg) => {
      if (err) return;
      const req = parsePageRequest(msg.data);
      // A reply that cannot be sent (the asker gone, the connection closing) is the asker's loss:
      // a status request must never take the worker down.
      try {
        msg.respond("error" in req ? JSON.stringify(req) : statusPage(status(), req.after, budget()));
      } catch {
        // nothing to do
      }
    },
    metadata: { description: "this process's actors as JSON, a page at a time: send {} then {\"after\": next} until next is null" },
  });
  return svc;
}
