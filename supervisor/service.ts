// Each process registers a NATS micro service named "tickflow", so `nats micro ls`, `nats micro
// info tickflow` and `nats micro stats tickflow` show every worker; the status endpoint's stats
// carry the actors it runs, which is what `tickflow status` aggregates.
import type { NatsConnection } from "@nats-io/transport-node";
import { Svcm, type Service } from "@nats-io/services";
import type { ActorStatus } from "./actor-cell.js";
import type { MemberValue } from "./runtime.js";

export const SERVICE_NAME = "tickflow";
export const SERVICE_VERSION = "0.1.0";

export type ProcessStatus = { member: MemberValue; actors: ActorStatus[] };

export async function registerService(nc: NatsConnection, status: () => ProcessStatus): Promise<Service> {
  const me = status().member;
  // The services package pins its own nats-core build; the connection object is the same protocol.
  const svc = await new Svcm(nc as never).add({
    name: SERVICE_NAME,
    version: SERVICE_VERSION,
    description: "Tickflow worker: per-pair actors on JetStream",
    metadata: { member: me.id, stages: me.stages.join(","), host: me.host, pid: String(me.pid) },
    statsHandler: async () => status(),
  });
  svc.addEndpoint("status", {
    subject: `tf.status.${me.id.replace(/[^A-Za-z0-9_-]/g, "_")}`,
    handler: (err, msg) => {
      if (err) return;
      msg.respond(JSON.stringify(status()));
    },
    metadata: { description: "this process's actors as JSON" },
  });
  return svc;
}
