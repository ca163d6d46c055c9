// Fresh nats-servers for the bench, each registered for cleanup the moment it exists.
//
// The port is chosen here (bind :0, read it, release it) instead of letting the server pick one:
// NatsServer.start() without a port reads the server's ports file as soon as the log says "Server
// is ready", and nats-server 2.9 can write that file a moment later — the start then throws while
// the server keeps running, orphaned (seen in this bench: "nats-server did not write its ports
// file"). With an explicit port the ports file is never read.
import { createServer } from "node:net";
import { NatsServer } from "../supervisor/nats-server.js";
import { defer } from "./cleanup.js";

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once("error", reject);
    srv.listen(0, "127.0.0.1", () => {
      const port = (srv.address() as { port: number }).port;
      srv.close(() => resolve(port));
    });
  });
}

export type BenchServer = { server: NatsServer; stop: () => Promise<void> };

export async function startNatsServer(what: string): Promise<BenchServer> {
  let lastErr: unknown;
  // Another process may take the port between our probe and the server's bind: try a few.
  for (let attempt = 0; attempt < 3; attempt++) {
    try {
      const server = await NatsServer.start({ port: await freePort(), host: "127.0.0.1" });
      return { server, stop: defer(what, () => server.stop()) };
    } catch (err) {
      lastErr = err;
    }
  }
  throw lastErr;
}
