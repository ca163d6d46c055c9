// The gateway listening on a port: `tickflow gateway` on its own, or inside `tickflow up`.
import type { FastifyInstance } from "fastify";
import type { NatsConnection } from "@nats-io/transport-node";
import type { Logger } from "pino";
import type { Config } from "../supervisor/config.js";
import { enableTimeSlices } from "../supervisor/time-slice.js";
import { buildApp } from "./app.js";

export type RunningGateway = { app: FastifyInstance; url: string; dashboardUrl: string; close(): Promise<void> };

export async function startGateway(o: { nc: NatsConnection; config: Config; log: Logger; port?: number; host?: string }): Promise<RunningGateway> {
  const app = await buildApp({ nc: o.nc, config: o.config, log: o.log });
  const port = o.port ?? o.config.gateway.port;
  const host = o.host ?? o.config.gateway.host;
  try {
    await app.listen({ port, host });
  } catch (err) {
    await app.close();
    const e = err as NodeJS.ErrnoException;
    if (e.code === "EADDRINUSE") throw new Error(`gateway: port ${port} on ${host} is in use; choose another with --port or PORT`, { cause: err });
    throw err;
  }
  // Requests are served from the same event loop as this process's actors: they now leave it a
  // turn every few milliseconds of work (supervisor/time-slice.ts).
  enableTimeSlices();
  const addr = app.server.address();
  const realPort = typeof addr === "object" && addr ? addr.port : port;
  // What a person on this machine types into a browser (0.0.0.0 is not an address to visit).
  const shown = host === "0.0.0.0" || host === "::" ? "localhost" : host;
  const url = `http://${shown}:${realPort}`;
  return { app, url, dashboardUrl: `${url}/`, close: () => app.close() };
}
