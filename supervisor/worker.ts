// One Tickflow process on a NATS connection: streams and buckets ensured, a Supervisor for the
// given stages, and the micro service that makes it visible. `tickflow up`, `tickflow run` and the
// benchmarks all start a worker this way.
import { jetstream, jetstreamManager, type JetStreamClient } from "@nats-io/jetstream";
import type { NatsConnection } from "@nats-io/transport-node";
import type { Logger } from "pino";
import { bootstrap } from "../protocol/streams.js";
import type { ActorDef } from "./actor.js";
import type { Config } from "./config.js";
import { Supervisor } from "./runtime.js";
import { registerService } from "./service.js";

export type Worker = {
  sup: Supervisor;
  js: JetStreamClient;
  /** Graceful: hand every actor off (checkpoint, release), then leave the service list. */
  stop(): Promise<void>;
};

export async function startWorker(o: { nc: NatsConnection; config: Config; log: Logger; id: string; stages: ActorDef[]; ignoreLeases?: boolean }): Promise<Worker> {
  const js = jetstream(o.nc);
  await bootstrap(js, await jetstreamManager(o.nc), o.config.storage);
  const sup = new Supervisor({ id: o.id, stages: o.stages, config: o.config, nc: o.nc, js, log: o.log, ignoreLeases: o.ignoreLeases });
  await sup.start();
  const svc = await registerService(o.nc, () => ({ member: sup.memberInfo(), actors: sup.status() }));
  return {
    sup,
    js,
    async stop() {
      await sup.stop();
      await svc.stop().catch(() => {});
    },
  };
}
