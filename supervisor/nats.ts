// Connecting to NATS, and finding which server to connect to: --nats, then NATS_URL, then the
// embedded server a running `tickflow up` announced in its data directory, then localhost.
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { connect, type NatsConnection } from "@nats-io/transport-node";

export const EMBEDDED_URL_FILE = "nats.url";

export function resolveNatsUrl(flag: string | undefined, configUrl: string, dataDir: string): string {
  if (flag) return flag;
  if (configUrl) return configUrl;
  const f = join(dataDir, EMBEDDED_URL_FILE);
  if (existsSync(f)) return readFileSync(f, "utf8").trim();
  return "nats://127.0.0.1:4222";
}

export async function connectNats(url: string, name: string): Promise<NatsConnection> {
  try {
    return await connect({
      servers: url.split(","),
      name,
      // Workers outlive server restarts: reconnect forever, buffering what is published meanwhile.
      maxReconnectAttempts: -1,
      reconnectTimeWait: 250,
      // Async traces capture a stack per request: measured as a large share of a publish.
      noAsyncTraces: true,
      pingInterval: 5_000,
    });
  } catch (err) {
    throw new Error(`cannot connect to NATS at ${url}: ${(err as Error).message}. Start one with \`tickflow up\` or pass --nats URL.`, { cause: err });
  }
}
