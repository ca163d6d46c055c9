// Test fixtures: a real nats-server per test file (random port, own store, restartable) and
// helpers to connect, bootstrap, read streams and poll for a condition.
import { jetstream, jetstreamManager, type JetStreamClient, type JetStreamManager, type JsMsg } from "@nats-io/jetstream";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { decodeMsg } from "../../protocol/codec.js";
import { bootstrap, DEFAULT_STORAGE } from "../../protocol/streams.js";
import { NatsServer, type NatsServerOptions } from "../../supervisor/nats-server.js";

export { NatsServer };

export type Env = { server: NatsServer; nc: NatsConnection; js: JetStreamClient; jsm: JetStreamManager };

/** A server for this test file (options as NatsServer.start's, e.g. extraConfig), connected and bootstrapped. */
export async function setup(opts: NatsServerOptions = {}): Promise<Env> {
  const server = await NatsServer.start(opts);
  const nc = await connect({ servers: server.url, maxReconnectAttempts: -1, reconnectTimeWait: 100 });
  const js = jetstream(nc);
  const jsm = await jetstreamManager(nc);
  await bootstrap(js, jsm, DEFAULT_STORAGE);
  return { server, nc, js, jsm };
}

export async function cleanup(env: Env): Promise<void> {
  await env.nc.close().catch(() => {});
  await env.server.stop();
}

/** Polls `fn` every `everyMs` until it returns a truthy value (returned) or `ms` pass (throws with `what`). */
export async function check<T>(fn: () => Promise<T> | T, ms: number, what = "condition", everyMs = 50): Promise<NonNullable<T>> {
  const until = Date.now() + ms;
  let last: unknown;
  for (;;) {
    try {
      const v = await fn();
      if (v) return v as NonNullable<T>;
    } catch (err) {
      last = err;
    }
    if (Date.now() > until) throw new Error(`timed out after ${ms} ms waiting for ${what}${last ? ` (last error: ${(last as Error).message})` : ""}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

/** Every message on `subject` as stored, from the start of its stream. */
export async function readMsgs(js: JetStreamClient, stream: string, subject: string): Promise<JsMsg[]> {
  const c = await js.consumers.get(stream, { filter_subjects: subject });
  const out: JsMsg[] = [];
  if ((await c.info()).num_pending === 0) return out;
  const iter = await c.consume({ max_messages: 1000 });
  for await (const m of iter) {
    out.push(m);
    if (m.info.pending === 0) break;
  }
  iter.stop();
  return out;
}

/** Every message on `subject` (decoded, with seq and msg id), from the start of its stream. */
export async function readAll(js: JetStreamClient, stream: string, subject: string): Promise<{ seq: number; msgId: string | undefined; data: any }[]> {
  return (await readMsgs(js, stream, subject)).map((m) => ({ seq: m.seq, msgId: m.headers?.get("Nats-Msg-Id"), data: decodeMsg(m) }));
}
