// Secured NATS: real nats-server processes with authorization (user/password, token, operator-mode
// creds) and TLS (server-only and mutual) on a CA made for the test. Every connection a worker
// opens — the main one and the actors' publish connections — must carry the same credentials; a
// wrong credential is a clear error naming the server, never a hang.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { createServer, type Server, type Socket } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { encodeAccount, encodeOperator, encodeUser, fmtCreds } from "@nats-io/jwt";
import { createAccount, createOperator, createUser } from "@nats-io/nkeys";
import { connect } from "@nats-io/transport-node";
import { candlesActor } from "../../actors/candles/actor.js";
import { ErrorCode, TickflowError } from "../../protocol/errors.js";
import { loadConfig, DEFAULT_CONFIG } from "../../supervisor/config.js";
import { connectionSecurity, connectNats, natsConnectOptions, type NatsAuth } from "../../supervisor/nats.js";
import { startWorker } from "../../supervisor/worker.js";
import { ETH_FILE, readTrades } from "../harness/data.js";
import { check, NatsServer, readAll } from "../harness/nats.js";
import { addPair, publishEos, publishTrades, quietLog, testConfig } from "../harness/pipeline.js";
import { makeTestPki, type TestPki } from "../harness/pki.js";
import { tickflow } from "../harness/procs.js";

const auth = (a: Partial<NatsAuth>): NatsAuth => ({ ...DEFAULT_CONFIG.natsAuth, connectTimeoutMs: 5000, ...a });

/** Rejects with a TickflowError whose code and message we check; the message must never echo a secret. */
async function assertRefused(p: Promise<unknown>, code: string, mustMention: string[], secret?: string): Promise<void> {
  await assert.rejects(p, (err: unknown) => {
    assert.ok(err instanceof TickflowError, `expected a TickflowError, got ${err}`);
    assert.equal(err.code, code, err.message);
    for (const m of mustMention) assert.ok(err.message.includes(m), `"${err.message}" should mention ${m}`);
    if (secret) assert.ok(!err.message.includes(secret), "the error must not contain the secret");
    return true;
  });
}

let dir: string;
let pki: TestPki;
before(() => {
  dir = mkdtempSync(join(tmpdir(), "tickflow-sec-"));
  pki = makeTestPki(dir);
});
after(() => rmSync(dir, { recursive: true, force: true }));

describe("settings", () => {
  test("nats security - environment variables fill natsAuth", () => {
    const c = loadConfig({ env: { NATS_USER: "alice", NATS_PASSWORD: "pw", NATS_CA: "/ca.pem", NATS_CONNECT_TIMEOUT_MS: "1500" } });
    assert.deepEqual(
      [c.natsAuth.user, c.natsAuth.password, c.natsAuth.caFile, c.natsAuth.connectTimeoutMs],
      ["alice", "pw", "/ca.pem", 1500],
    );
    assert.equal(loadConfig({ env: { NATS_TOKEN: "t", NATS_CREDS: "/x.creds" } }).natsAuth.credsFile, "/x.creds");
  });

  test("nats security - contradictory or incomplete settings are config errors that name the setting", () => {
    const bad: [Partial<NatsAuth>, RegExp][] = [
      [{ user: "a", password: "b", token: "t" }, /only one way to authenticate.*NATS_USER.*NATS_TOKEN/],
      [{ password: "b" }, /NATS_PASSWORD.*without.*NATS_USER/],
      [{ user: "a" }, /NATS_USER.*without.*NATS_PASSWORD/],
      [{ certFile: pki.clientCert }, /NATS_CERT.*NATS_KEY/],
      [{ caFile: join(dir, "missing.pem") }, /NATS_CA.*missing\.pem/],
      [{ credsFile: pki.ca }, /NATS_CREDS.*not a NATS creds file/],
    ];
    for (const [a, re] of bad) assert.throws(() => natsConnectOptions(auth(a)), (e: TickflowError) => e.code === ErrorCode.BadConfig && re.test(e.message), JSON.stringify(a));
    const ok = natsConnectOptions(auth({ token: "t", caFile: pki.ca }));
    assert.deepEqual([ok.token, ok.tls, ok.timeout], ["t", { caFile: pki.ca }, 5000]);
  });

  test("nats security - a server that accepts TCP but never speaks NATS fails at the connect deadline", async () => {
    // nats.js leaves its socket open after a handshake timeout; the test closes it from our side.
    const sockets = new Set<Socket>();
    const silent: Server = createServer((s) => sockets.add(s)).listen(0, "127.0.0.1");
    await new Promise((r) => silent.once("listening", r));
    const url = `nats://127.0.0.1:${(silent.address() as { port: number }).port}`;
    try {
      await assertRefused(connectNats(url, "t", auth({ connectTimeoutMs: 300 })), ErrorCode.NatsUnreachable, [url, "300 ms"]);
    } finally {
      for (const s of sockets) s.destroy();
      silent.close();
    }
  });
});

describe("user and password over TLS (server certificate only)", () => {
  let server: NatsServer;
  before(async () => {
    server = await NatsServer.start({
      extraConfig: `authorization { users: [ { user: alice, password: "s3cret-pw" } ] }
tls { cert_file: "${pki.serverCert}", key_file: "${pki.serverKey}", timeout: 2 }`,
    });
  });
  after(() => server.stop());

  test("nats security - the right user and password with the CA connect; sibling connections reuse the options", async () => {
    const a = auth({ user: "alice", password: "s3cret-pw", caFile: pki.ca });
    const nc = await connectNats(server.url, "t", a);
    try {
      // What actor-cell does for its publish connections: same server, same security options.
      const sib = await connect({ ...connectionSecurity(nc), servers: nc.getServer(), reconnect: false });
      const sub = sib.subscribe("sec.ping", { max: 1, callback: (_e, m) => void m.respond("pong") });
      await sib.flush();
      assert.equal((await nc.request("sec.ping", "", { timeout: 2000 })).string(), "pong");
      await sub.closed;
      await sib.close();
    } finally {
      await nc.close();
    }
  });

  test("nats security - a wrong password is TF_NATS_AUTH naming the server and user, without the password", async () => {
    await assertRefused(
      connectNats(server.url, "t", auth({ user: "alice", password: "wrong-pw", caFile: pki.ca })),
      ErrorCode.NatsAuth, [server.url, 'user "alice"', "NATS_PASSWORD"], "wrong-pw",
    );
  });

  test("nats security - without the CA the server's certificate is not trusted: TF_NATS_TLS", async () => {
    await assertRefused(connectNats(server.url, "t", auth({ user: "alice", password: "s3cret-pw" })), ErrorCode.NatsTls, [server.url, "NATS_CA"], "s3cret-pw");
  });

  test("nats security - the CLI takes NATS_USER, NATS_PASSWORD and NATS_CA from the environment; a wrong password exits 1 naming the server", async () => {
    const env = { NATS_USER: "alice", NATS_CA: pki.ca, LOG_LEVEL: "warn" };
    const ok = tickflow(["pairs", "add", "SOL/USD", "--nats", server.url], { ...env, NATS_PASSWORD: "s3cret-pw" });
    assert.equal((await ok.exited).code, 0, ok.stderr());
    assert.match(ok.stdout(), /added: SOL\/USD/);
    const bad = tickflow(["pairs", "ls", "--nats", server.url], { ...env, NATS_PASSWORD: "wrong-pw" });
    assert.equal((await bad.exited).code, 1);
    assert.match(bad.stderr(), new RegExp(`NATS at ${server.url} refused the connection as user "alice"`));
    assert.doesNotMatch(bad.stderr(), /wrong-pw/);
  });

  test("nats security - a worker's actors publish through authenticated TLS connections", async () => {
    const a = auth({ user: "alice", password: "s3cret-pw", caFile: pki.ca });
    const nc = await connectNats(server.url, "w", a);
    const worker = await startWorker({ nc, config: { ...testConfig(), natsAuth: a }, log: quietLog, id: "sec-w", stages: [candlesActor] });
    try {
      const raw = readTrades(ETH_FILE).slice(0, 300);
      const pair = "ETH/USDT";
      await addPair(worker.js, pair);
      await publishTrades(worker.js, raw, pair);
      await publishEos(worker.js, pair, raw[raw.length - 1]);
      const candles = await check(async () => {
        const got = await readAll(worker.js, "CANDLES", "md.candles.1m.ETH-USDT");
        return got.length > 0 && got.at(-1)!.data.window_end_ms >= Date.parse(raw.at(-1)!.timestamp) ? got : null;
      }, 30_000, "1m candles up to the last trade");
      assert.ok(candles.length >= 1);
      assert.equal(worker.sup.status().find((s) => s.pair === pair)?.restarts ?? 0, 0, "no actor crashed for want of credentials");
    } finally {
      await worker.stop();
      await nc.drain();
    }
  });
});

describe("token with mutual TLS", () => {
  let server: NatsServer;
  before(async () => {
    server = await NatsServer.start({
      extraConfig: `authorization { token: "tok-123456" }
tls { cert_file: "${pki.serverCert}", key_file: "${pki.serverKey}", ca_file: "${pki.ca}", verify: true, timeout: 2 }`,
    });
  });
  after(() => server.stop());

  test("nats security - token plus client certificate connect", async () => {
    const nc = await connectNats(server.url, "t", auth({ token: "tok-123456", caFile: pki.ca, certFile: pki.clientCert, keyFile: pki.clientKey }));
    await nc.flush();
    await nc.close();
  });

  test("nats security - a wrong token is TF_NATS_AUTH", async () => {
    await assertRefused(
      connectNats(server.url, "t", auth({ token: "nope-999", caFile: pki.ca, certFile: pki.clientCert, keyFile: pki.clientKey })),
      ErrorCode.NatsAuth, [server.url, "with a token"], "nope-999",
    );
  });

  test("nats security - without a client certificate the server refuses the handshake: an error by the deadline", async () => {
    await assert.rejects(connectNats(server.url, "t", auth({ token: "tok-123456", caFile: pki.ca, connectTimeoutMs: 1000 })), (e: TickflowError) =>
      e instanceof TickflowError && e.message.includes(server.url) && e.message.includes("over TLS"));
  });
});

describe("creds file (operator mode: operator, account and user JWTs)", () => {
  let server: NatsServer;
  let credsFile: string;
  let strangerCreds: string;
  before(async () => {
    const op = createOperator();
    const acct = createAccount();
    const sys = createAccount();
    const opJwt = await encodeOperator("tf-test-op", op, { system_account: sys.getPublicKey() });
    // Unlimited account (an empty limits claim would allow zero connections).
    const unlimited = { limits: { conn: -1, subs: -1, data: -1, payload: -1, imports: -1, exports: -1, wildcards: true, leaf: -1 } };
    const acctJwt = await encodeAccount("TF", acct, unlimited, { signer: op });
    const sysJwt = await encodeAccount("SYS", sys, {}, { signer: op });
    const user = createUser();
    credsFile = join(dir, "user.creds");
    writeFileSync(credsFile, fmtCreds(await encodeUser("tf-user", user, acct), user));
    // A well-formed creds file whose account the server does not know.
    const other = createAccount();
    const stranger = createUser();
    strangerCreds = join(dir, "stranger.creds");
    writeFileSync(strangerCreds, fmtCreds(await encodeUser("stranger", stranger, other), stranger));
    server = await NatsServer.start({
      extraConfig: `operator: ${opJwt}
resolver: MEMORY
system_account: ${sys.getPublicKey()}
resolver_preload: { ${acct.getPublicKey()}: ${acctJwt}, ${sys.getPublicKey()}: ${sysJwt} }`,
    });
  });
  after(() => server?.stop());

  test("nats security - a creds file of a user of a trusted account connects", async () => {
    const nc = await connectNats(server.url, "t", auth({ credsFile }));
    const sub = nc.subscribe("creds.echo", { max: 1, callback: (_e, m) => void m.respond(m.data) });
    assert.equal((await nc.request("creds.echo", "hi", { timeout: 2000 })).string(), "hi");
    await sub.closed;
    await nc.close();
  });

  test("nats security - creds of an unknown account are TF_NATS_AUTH naming the file", async () => {
    await assertRefused(connectNats(server.url, "t", auth({ credsFile: strangerCreds })), ErrorCode.NatsAuth, [server.url, strangerCreds]);
  });
});
