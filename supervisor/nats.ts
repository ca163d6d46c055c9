// Connecting to NATS, and finding which server to connect to: --nats, then NATS_URL, then the
// embedded server a running `tickflow up` announced in its data directory, then localhost.
// Every connection a process opens carries the same security options (credentials, TLS, deadline),
// built once from config by natsConnectOptions().
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import type { Consumer } from "@nats-io/jetstream";
import { connect, credsAuthenticator, type ConnectionOptions, type NatsConnection } from "@nats-io/transport-node";
import { ConfigError, ErrorCode, TickflowError } from "../protocol/errors.js";
import { loadConfig, type Config } from "./config.js";

export const EMBEDDED_URL_FILE = "nats.url";

/** The security settings (config `natsAuth`; env NATS_CREDS, NATS_USER, NATS_PASSWORD, NATS_TOKEN, NATS_CA, NATS_CERT, NATS_KEY). */
export type NatsAuth = Config["natsAuth"];

/** What natsConnectOptions() builds: the part of the client options every connection shares. */
export type NatsSecurityOptions = Pick<ConnectionOptions, "timeout" | "authenticator" | "tls" | "user" | "pass" | "token">;

export function resolveNatsUrl(flag: string | undefined, configUrl: string, dataDir: string): string {
  if (flag) return flag;
  if (configUrl) return configUrl;
  const f = join(dataDir, EMBEDDED_URL_FILE);
  if (existsSync(f)) return readFileSync(f, "utf8").trim();
  return "nats://127.0.0.1:4222";
}

/**
 * Client options for credentials, TLS and the connect deadline, from the `natsAuth` settings.
 * Exactly one way to authenticate may be set (a creds file, user + password, or a token); TLS is
 * on as soon as a CA, a client certificate or a key is given. Files are checked here, so a wrong
 * path is a config error naming the setting rather than a failed handshake later.
 */
export function natsConnectOptions(a: NatsAuth): NatsSecurityOptions {
  const modes = [a.credsFile && "natsAuth.credsFile (NATS_CREDS)", (a.user || a.password) && "natsAuth.user/password (NATS_USER/NATS_PASSWORD)", a.token && "natsAuth.token (NATS_TOKEN)"].filter(Boolean);
  if (modes.length > 1) throw new ConfigError(`config: set only one way to authenticate to NATS, got ${modes.join(" and ")}`);
  if (a.password && !a.user) throw new ConfigError("config natsAuth.password (NATS_PASSWORD) is set without natsAuth.user (NATS_USER)");
  if (a.user && !a.password) throw new ConfigError(`config natsAuth.user (NATS_USER) "${a.user}" is set without natsAuth.password (NATS_PASSWORD)`);
  if (Boolean(a.certFile) !== Boolean(a.keyFile)) throw new ConfigError("config natsAuth.certFile (NATS_CERT) and natsAuth.keyFile (NATS_KEY) go together: a client certificate needs its key");
  const opts: NatsSecurityOptions = { timeout: a.connectTimeoutMs };
  if (a.credsFile) {
    const text = readSetting(a.credsFile, "natsAuth.credsFile (NATS_CREDS)");
    if (!/-----BEGIN NATS USER JWT-----/.test(text) || !/-----BEGIN USER NKEY SEED-----/.test(text)) {
      throw new ConfigError(`config natsAuth.credsFile (NATS_CREDS): ${a.credsFile} is not a NATS creds file (expected a user JWT and an NKey seed block)`);
    }
    // Read on every (re)connect, so a rotated Secret is picked up without a restart.
    opts.authenticator = credsAuthenticator(() => new TextEncoder().encode(readFileSync(a.credsFile, "utf8")));
  } else if (a.user) {
    opts.user = a.user;
    opts.pass = a.password;
  } else if (a.token) {
    opts.token = a.token;
  }
  if (a.caFile || a.certFile) {
    const tls: NonNullable<ConnectionOptions["tls"]> = {};
    if (a.caFile) tls.caFile = checkFile(a.caFile, "natsAuth.caFile (NATS_CA)");
    if (a.certFile) {
      tls.certFile = checkFile(a.certFile, "natsAuth.certFile (NATS_CERT)");
      tls.keyFile = checkFile(a.keyFile, "natsAuth.keyFile (NATS_KEY)");
    }
    opts.tls = tls;
  }
  return opts;
}

/** How this process authenticates, for error messages (never the secret itself). */
export function describeAuth(a: NatsAuth): string {
  const who = a.credsFile ? `with creds file ${a.credsFile}` : a.user ? `as user "${a.user}"` : a.token ? "with a token" : "without credentials";
  return a.caFile || a.certFile ? `${who}, over TLS${a.certFile ? " with a client certificate" : ""}` : who;
}

// Connections opened by connectNats, with the security options they used: a second connection
// to the same server (actor-cell's non-reconnecting publish connections) must present the same.
const securityOf = new WeakMap<NatsConnection, NatsSecurityOptions>();

/** The security options `nc` was opened with (empty for connections not made by connectNats). */
export function connectionSecurity(nc: NatsConnection): NatsSecurityOptions {
  return securityOf.get(nc) ?? {};
}

/**
 * Connects with the process's security settings (default: from the environment and
 * TICKFLOW_CONFIG). Fails within `natsAuth.connectTimeoutMs` with an error naming the server and
 * how we tried to authenticate; a rejected credential fails at once, it is not retried.
 */
export async function connectNats(url: string, name: string, auth: NatsAuth = loadConfig().natsAuth): Promise<NatsConnection> {
  const security = natsConnectOptions(auth);
  let nc: NatsConnection;
  try {
    nc = await connect({
      ...security,
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
    throw connectError(url, auth, err);
  }
  securityOf.set(nc, security);
  return nc;
}

function connectError(url: string, auth: NatsAuth, err: unknown): TickflowError {
  const e = err as Error & { code?: string };
  const msg = `${e.message}${e.cause ? ` (${(e.cause as Error).message})` : ""}`;
  const how = describeAuth(auth);
  if (/authori[sz]ation|authentication|auth/i.test(msg)) {
    return new TickflowError(ErrorCode.NatsAuth, `NATS at ${url} refused the connection ${how}: ${msg}. Check NATS_CREDS / NATS_USER and NATS_PASSWORD / NATS_TOKEN.`, { cause: err });
  }
  if (/tls|certificate|ssl|self.signed|secure/i.test(msg)) {
    return new TickflowError(ErrorCode.NatsTls, `TLS to NATS at ${url} failed (connecting ${how}): ${msg}. Check NATS_CA (and NATS_CERT / NATS_KEY when the server verifies clients).`, { cause: err });
  }
  return new TickflowError(ErrorCode.NatsUnreachable, `cannot connect to NATS at ${url} (${how}, deadline ${auth.connectTimeoutMs} ms): ${msg}. Start one with \`tickflow up\` or pass --nats URL.`, { cause: err });
}

function readSetting(path: string, setting: string): string {
  try {
    return readFileSync(path, "utf8");
  } catch (err) {
    throw new ConfigError(`config ${setting}: cannot read ${path}: ${(err as Error).message}`);
  }
}

function checkFile(path: string, setting: string): string {
  readSetting(path, setting);
  return path;
}

/**
 * Deletes the server's consumer of a read that is done. An ordered consumer (js.consumers.get with
 * options) stops reading when its iterator stops, but the client leaves the consumer on the server
 * to its inactive threshold, five minutes: every catch-up, recovery, history request and training
 * read stayed there that long: a thousand-pair worker catching up after a crash had 2,835
 * consumers on the server, most of them done with. Not awaited by readers that have their answer already; a delete that
 * fails (the server gone) leaves the threshold to it.
 */
export function dropConsumer(c: Consumer): Promise<void> {
  return c.delete().then(() => {}, () => {});
}
