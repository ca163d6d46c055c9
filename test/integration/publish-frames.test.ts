// The publish pool writes its batches' frames itself (supervisor/publish-frames.ts) instead of
// calling the client's publish per message. These tests hold it to the client's own bytes, show
// that what it cannot frame still goes out through the client in call order (or fails with the
// client's error), and that the installed client still has the internals the pool relies on: if an
// upgrade changed them, every publish would silently take the slow path, and this fails instead.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { connect, headers as natsHeaders, type MsgHdrs, type NatsConnection } from "@nats-io/transport-node";
import { clientProtocolOf, PooledConnection, type Ack } from "../../supervisor/publish-pool.js";
import { frameSize, readPubAck, writeFrame } from "../../supervisor/publish-frames.js";
import { headerLine, WireHeaders } from "../../protocol/wire-headers.js";
import { cleanup, readMsgs, setup, type Env } from "../harness/nats.js";

let env: Env;
before(async () => {
  env = await setup();
  await env.jsm.streams.add({ name: "FRAMES", subjects: ["fr.>"] });
});
after(async () => {
  await cleanup(env);
});

/** The bytes the client itself sends for one publish, captured at its protocol handler instead of sent. */
function clientBytes(nc: NatsConnection, subject: string, reply: string, headers: WireHeaders | null, data: Uint8Array): Buffer {
  const proto = clientProtocolOf(nc)! as unknown as { sendCommand: (cmd: string | Uint8Array, ...payloads: Uint8Array[]) => void };
  const real = proto.sendCommand;
  const parts: Buffer[] = [];
  proto.sendCommand = (cmd, ...payloads) => {
    parts.push(Buffer.from(typeof cmd === "string" ? Buffer.from(cmd) : cmd), ...payloads.map((p) => Buffer.from(p)));
  };
  try {
    nc.publish(subject, data, { reply, ...(headers ? { headers: headers as unknown as MsgHdrs } : {}) });
  } finally {
    proto.sendCommand = real;
  }
  return Buffer.concat(parts);
}

function ours(subject: string, prefix: string, id: number, text: string | null, data: Uint8Array, maxPayload = 1 << 20): Buffer {
  const n = frameSize(subject, prefix, id, text, data.length, maxPayload, true);
  assert.ok(n > 0, `frameSize(${subject}) = ${n}`);
  const buf = Buffer.alloc(n);
  assert.equal(writeFrame(buf, 0, subject, prefix, id, text, data), n, "writeFrame fills exactly frameSize bytes");
  return buf;
}

test("a frame is byte for byte what the client sends for the same publish", () => {
  const prefix = "_INBOX.ABCDEF0123456789";
  const h = (id: string) => WireHeaders.of(headerLine("Content-Type", "application/msgpack") + headerLine("Nats-Msg-Id", id));
  const cases: { subject: string; id: number; headers: WireHeaders | null; data: Uint8Array }[] = [
    { subject: "md.candles.1m.BTC-USD", id: 1, headers: h("1m:BTC-USD:1716912000000"), data: randomBytes(180) },
    { subject: "md.trades.C001-USD", id: 9, headers: h("C001-USD:1"), data: new Uint8Array(0) },
    { subject: "$KV.tf_latest.indicators.5m.ETH-USD", id: 1234567890, headers: WireHeaders.of(""), data: randomBytes(900) },
    { subject: "ml.predictions.5m.SOL-USD", id: 10, headers: null, data: randomBytes(64) },
    { subject: "x", id: 0, headers: null, data: new Uint8Array(0) },
    { subject: "md.indicators.1h.C999-USD", id: 99_999, headers: h("a".repeat(300)), data: randomBytes(70_000) },
  ];
  for (const c of cases) {
    const expected = clientBytes(env.nc, c.subject, `${prefix}.${c.id}`, c.headers, c.data);
    const got = ours(c.subject, prefix, c.id, c.headers ? c.headers.toString() : null, c.data);
    assert.ok(got.equals(expected), `${c.subject} #${c.id}:\n ours   ${JSON.stringify(got.subarray(0, 120).toString("latin1"))}\n client ${JSON.stringify(expected.subarray(0, 120).toString("latin1"))}`);
  }
});

test("what a frame cannot carry as it is is left to the client", () => {
  const ok = (subject: string, text: string | null, len = 10, max = 1000, headers = true) => frameSize(subject, "_INBOX.X", 1, text, len, max, headers);
  assert.ok(ok("fr.a", "NATS/1.0\r\n\r\n") > 0);
  assert.equal(ok("fr.ü", null), -1, "a non-ASCII subject");
  assert.equal(ok("fr. a", null), -1, "a subject with a space");
  assert.equal(ok("fr.\ta", null), -1, "a subject with a tab");
  assert.equal(ok("", null), -1, "an empty subject");
  assert.equal(ok("fr.a", "NATS/1.0\r\nX-Note: café\r\n\r\n"), -1, "non-ASCII header text");
  assert.equal(ok("fr.a", null, 1001), -1, "a payload over max_payload");
  assert.equal(ok("fr.a", "NATS/1.0\r\n\r\n", 990), -1, "headers and payload together over max_payload");
  assert.equal(ok("fr.a", "NATS/1.0\r\n\r\n", 10, 1000, false), -1, "headers on a server without them");
  assert.equal(frameSize("fr.a", "_INBOX X", 1, null, 1, 1000, true), -1, "a reply prefix with a space");
});

test("a pooled connection frames its batch itself; the rest goes through the client in call order, or fails with the client's error", async () => {
  const nc = await connect({ servers: env.server.url, reconnect: false, noAsyncTraces: true });
  let clientCalls = 0;
  const realPublish = nc.publish.bind(nc);
  nc.publish = (...a: Parameters<NatsConnection["publish"]>) => {
    clientCalls++;
    return realPublish(...a);
  };
  assert.ok(clientProtocolOf(nc), "the installed client has the protocol handler the pool writes to");
  const pool = new PooledConnection(nc, 5000);
  try {
    const h = (id: string, extra = "") => WireHeaders.of(extra + headerLine("Nats-Msg-Id", id));
    const big = new Uint8Array(nc.info!.max_payload + 1);
    const sent: { name: string; subject: string; headers: WireHeaders | MsgHdrs; data: Uint8Array }[] = [
      { name: "a", subject: "fr.one", headers: h("m1"), data: Uint8Array.of(1) },
      { name: "b", subject: "fr.ü", headers: h("m2"), data: Uint8Array.of(2) },
      { name: "c", subject: "fr.two", headers: h("m3", headerLine("X-Note", "café")), data: Uint8Array.of(3) },
      { name: "d", subject: "fr.bad subject", headers: h("m5"), data: Uint8Array.of(4) },
      { name: "e", subject: "fr.three", headers: h("m4"), data: Uint8Array.of(5) },
      { name: "f", subject: "fr.big", headers: h("m6"), data: big },
      { name: "g", subject: "fr.one", headers: h("m1"), data: Uint8Array.of(1) },
      { name: "i", subject: "fr.four", headers: (() => { const m = natsHeaders(); m.set("Nats-Msg-Id", "m7"); return m; })(), data: Uint8Array.of(6) },
      { name: "j", subject: "fr.five", headers: h("m8"), data: Uint8Array.of(7) },
    ];
    // All in one tick: one batch.
    const results = await Promise.all(sent.map((s) => new Promise<{ name: string; err: Error | null; ack: Ack | null }>((resolve) => pool.send(s.subject, s.data, s.headers, (err, ack) => resolve({ name: s.name, err, ack })))));
    const by = Object.fromEntries(results.map((r) => [r.name, r]));
    for (const n of ["a", "b", "c", "e", "i", "j"]) assert.equal(by[n].err, null, `${n}: ${by[n].err?.message}`);
    assert.match(by.d.err!.message, /subject/i, "the client's invalid-subject error");
    assert.match(by.f.err!.message, /max_payload/, "the client's max_payload error");
    assert.equal(by.g.ack!.duplicate, true, "a repeated Nats-Msg-Id is a duplicate");
    assert.equal(by.g.ack!.seq, by.a.ack!.seq);
    const seqs = ["a", "b", "c", "e", "i", "j"].map((n) => by[n].ack!.seq);
    assert.deepEqual(seqs, [...seqs].sort((x, y) => x - y), "stored in call order");
    // b (non-ASCII subject), c (non-ASCII header), d and f (refused) and i (the client's own
    // header object) went through the client; a, e, g and j were framed here.
    assert.equal(clientCalls, 5);

    const stored = await readMsgs(env.js, "FRAMES", "fr.>");
    assert.deepEqual(stored.map((m) => m.subject), ["fr.one", "fr.ü", "fr.two", "fr.three", "fr.four", "fr.five"]);
    assert.deepEqual(stored.map((m) => [...m.data]), [[1], [2], [3], [5], [6], [7]]);
    assert.deepEqual(stored.map((m) => m.headers?.get("Nats-Msg-Id")), ["m1", "m2", "m3", "m4", "m7", "m8"]);
    assert.equal(stored[2].headers?.get("X-Note"), "café");
    assert.ok(nc.stats().outMsgs >= sent.length - 2, "framed publishes are counted in the client's stats");

    // The connection is still good after the refused ones.
    const after = await pool.publish("fr.six", Uint8Array.of(8), h("m9"));
    assert.equal(after.seq, Math.max(...seqs) + 1);
  } finally {
    await pool.close();
  }
});

test("the server's acks are read from their bytes as JSON.parse reads them; any other form is left to JSON.parse", async () => {
  const asJson = (b: Uint8Array) => {
    const a = JSON.parse(Buffer.from(b).toString("utf8"));
    return { stream: a.stream, seq: a.seq, duplicate: !!a.duplicate };
  };
  // Real acks of this server: a stored message, then the same id again (a duplicate).
  const h = natsHeaders();
  h.set("Nats-Msg-Id", "ack-1");
  for (let i = 0; i < 2; i++) {
    const r = await env.nc.request("fr.ack", Uint8Array.of(i), { headers: h, timeout: 5000 });
    const fast = readPubAck(r.data);
    assert.ok(fast, `the server's ack ${Buffer.from(r.data).toString()} is read from its bytes`);
    assert.deepEqual(fast, asJson(r.data));
    assert.equal(fast.duplicate, i === 1);
  }
  const b = (s: string) => new Uint8Array(Buffer.from(s, "utf8"));
  for (const s of ['{"stream":"TRADES","seq":1}', '{"stream":"TRADES", "seq":1}', '{"stream":"KV_tf_latest", "seq":9007199254740}', '{"stream":"X", "seq":0,"duplicate": true}', '{"stream":"X","seq":3,"duplicate":true}']) {
    assert.deepEqual(readPubAck(b(s)), asJson(b(s)), s);
  }
  for (const s of [
    '{"stream":"X","domain":"hub","seq":5}',
    '{"error":{"code":400,"err_code":10071,"description":"wrong last sequence: 5"},"stream":"KV_x","seq":0}',
    '{"stream":"A\\"B","seq":1}',
    '{"stream":"Ü","seq":1}',
    '{"stream":"","seq":1}',
    '{"stream":"X","seq":}',
    '{"stream":"X","seq":1',
    '{"stream":"X","seq":1} ',
    '{"stream":"X","seq":1,"duplicate":false}',
    '{"stream":"X", "seq":1,"duplicate": true, "domain":"d"}',
    '{"stream":"X", "seq":-1}',
    '{ "stream": "X" , "seq" : 4 }',
    '{"stream":"X","seq":12345678901234567}',
    "",
  ]) {
    assert.equal(readPubAck(b(s)), null, s);
  }
});
