// The process's one reader per stream (supervisor/input-hub.ts): every subscription sees exactly
// what an ordered consumer of its own would (its filter, from its sequence, in order, no gap, no
// repeat), whichever way it starts (live, from the ring, through a catch-up consumer) and when
// it is too slow to buffer; a real nats-server, messages published while subscriptions start.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { setFlagsFromString } from "node:v8";
import { runInNewContext } from "node:vm";
import { publishHeaders } from "../../protocol/codec.js";
import { readHeaders } from "../../protocol/wire-headers.js";
import { InputHubs, subjectMatches, type HubMsg, type InputSubscription } from "../../supervisor/input-hub.js";
import { check, cleanup, setup, type Env } from "../harness/nats.js";
import { quietLog } from "../harness/pipeline.js";

let env: Env;
before(async () => {
  env = await setup();
  await env.jsm.streams.add({ name: "HUBT", subjects: ["h.>"] });
});
after(async () => {
  await cleanup(env);
});

test("input hub - subjectMatches follows NATS wildcards", () => {
  assert.ok(subjectMatches("md.trades.BTC-USD", "md.trades.BTC-USD"));
  assert.ok(!subjectMatches("md.trades.BTC-USD", "md.trades.ETH-USD"));
  assert.ok(subjectMatches("md.candles.*.BTC-USD", "md.candles.1m.BTC-USD"));
  assert.ok(!subjectMatches("md.candles.*.BTC-USD", "md.candles.1m.x.BTC-USD"));
  assert.ok(subjectMatches("$KV.tf_models.BTC-USD.*", "$KV.tf_models.BTC-USD.5m"));
  assert.ok(subjectMatches("news.>", "news.raw.a.b"));
  assert.ok(!subjectMatches("news.>", "news"));
  assert.ok(!subjectMatches("a.b", "a.b.c"));
  // Against the definition (split both into tokens), on generated filters and subjects: short
  // tokens from a small alphabet, so that prefixes, equal lengths and empty tokens all occur.
  const byTokens = (filter: string, subject: string) => {
    const f = filter.split(".");
    const s = subject.split(".");
    for (let i = 0; i < f.length; i++) {
      if (f[i] === ">") return s.length > i;
      if (i >= s.length) return false;
      if (f[i] !== "*" && f[i] !== s[i]) return false;
    }
    return f.length === s.length;
  };
  let seed = 7;
  const rnd = (k: number) => ((seed = (seed * 1103515245 + 12345) % 2 ** 31), seed % k);
  const token = () => ["a", "b", "ab", "ba", "", "a.", "1m"][rnd(7)];
  const joined = (k: number, wild: boolean) => Array.from({ length: k }, (_, i) => (wild && rnd(4) === 0 ? (i === k - 1 && rnd(2) ? ">" : "*") : token())).join(".");
  // Empty tokens (never in a real subject, but the definition gives them an answer): at the end, alone.
  for (const [f, sub] of [["a.>", "a."], ["*", ""], ["a.*", "a."], [">", ""], ["a.*.b", "a..b"], ["a.b", "a.b."]]) {
    assert.equal(subjectMatches(f, sub), byTokens(f, sub), `filter "${f}", subject "${sub}"`);
  }
  let matched = 0;
  for (let i = 0; i < 20_000; i++) {
    const filter = joined(1 + rnd(4), true);
    const subject = rnd(3) === 0 ? filter.replace(/\*/g, token).replace(/>/, `${token()}.${token()}`) : joined(1 + rnd(5), false);
    const want = byTokens(filter, subject);
    if (want) matched++;
    assert.equal(subjectMatches(filter, subject), want, `filter "${filter}", subject "${subject}"`);
  }
  assert.ok(matched > 1000, `the generated cases match often enough to test both answers (${matched})`);
  assert.ok(!subjectMatches("a.b.c", "a.b"));
  assert.ok(subjectMatches(">", "anything.at.all"));
});

type Sent = { seq: number; subject: string };

async function publish(subjects: string[], n: number, sent: Sent[]): Promise<void> {
  for (let i = 0; i < n; i++) {
    const subject = subjects[(sent.length * 7) % subjects.length]; // 7 and 40 are coprime: every subject, interleaved
    const ack = await env.js.publish(subject, new TextEncoder().encode(String(sent.length)));
    sent.push({ seq: ack.seq, subject });
  }
}

/** Reads `sub` until it has `n` messages (or the deadline), optionally slowly. */
async function take(sub: InputSubscription, n: number, delayEvery = 0): Promise<number[]> {
  const got: number[] = [];
  if (n === 0) return got;
  for await (const m of sub) {
    got.push(m.seq);
    if (delayEvery && got.length % delayEvery === 0) await new Promise((r) => setTimeout(r, 20));
    if (got.length >= n) break;
  }
  return got;
}

test("input hub - live, ring, catch-up and overflowing subscriptions each get exactly their messages in stream order", async () => {
  const subjects: string[] = [];
  for (let p = 1; p <= 20; p++) subjects.push(`h.a.P${p}`, `h.b.P${p}`);
  const sent: Sent[] = [];
  await publish(subjects, 1500, sent);

  // A tiny ring and queue, so every way of starting and of falling behind is taken.
  const hubs = new InputHubs(env.js, quietLog, { ringSize: 200, maxQueuedPerSubscription: 40, stuckMs: 300, maxQueued: 10_000, batch: 64, catchUpBatch: 64 });
  const warm = await hubs.subscribe("HUBT", "h.a.P1", 1_000_000); // starts the reader near the tail
  const tailSeq = sent[sent.length - 1].seq;
  await check(() => hubs.stats()[0].lastDispatched >= tailSeq, 10_000, "the hub to read up to the tail");
  const cases: { name: string; filter: string; from: number; slow?: number; stuck?: number }[] = [
    { name: "far behind (catch-up consumer)", filter: "h.a.P3", from: 1 },
    { name: "wildcard, far behind", filter: "h.*.P5", from: 1 },
    { name: "within the ring", filter: "h.b.P7", from: tailSeq - 100 },
    { name: "ahead of the tail (live)", filter: "h.a.P9", from: tailSeq + 1 },
    { name: "slow reader (holds the hub back)", filter: "h.>", from: tailSeq - 150, slow: 10 },
    { name: "stuck reader (detached, catches up)", filter: "h.b.>", from: tailSeq - 150, stuck: 1500 },
    { name: "nothing of its subject after its position", filter: "h.a.P11", from: tailSeq + 1 },
  ];
  const subs = await Promise.all(cases.map((c) => hubs.subscribe("HUBT", c.filter, c.from)));
  // More arrives while they read.
  const more = publish(subjects, 1500, sent);
  const readers = cases.map((c, i) => (async () => {
    await more;
    if (c.stuck) await new Promise((r) => setTimeout(r, c.stuck));
    const want = sent.filter((s) => s.seq >= c.from && subjectMatches(c.filter, s.subject)).map((s) => s.seq);
    const got = await take(subs[i], want.length, c.slow);
    return { c, want, got };
  })());
  const results = await Promise.all(readers);
  for (const { c, want, got } of results) {
    assert.ok(want.length > 0, `${c.name}: the case has messages to read`);
    assert.deepEqual(got, want, `${c.name}: exactly its messages, in order`);
  }
  const st = hubs.stats()[0];
  assert.ok(st.catchUps >= 3, `catch-up consumers ran for the far-behind and the stuck readers (${st.catchUps})`);
  assert.equal(st.subscriptions, 1, "a subscription whose iteration ended is gone; the unread one stays");
  warm.stop();
  hubs.close();
});

test("input hub - subscriptions that all start behind take turns (at most maxCatchUps catch-up consumers at once) and each still gets exactly its messages; a reader that stops mid-catch-up gives its turn back", async () => {
  const subjects = Array.from({ length: 30 }, (_, i) => `h.t.P${i}`);
  const sent: Sent[] = [];
  await publish(subjects, 600, sent);
  const from = sent[0].seq;
  // No ring and small pulls: every subscription behind the reader needs a catch-up consumer, and each takes several pulls.
  const hubs = new InputHubs(env.js, quietLog, { ringSize: 0, catchUpBatch: 8, maxCatchUps: 3 });
  const warm = await hubs.subscribe("HUBT", "h.t.P0", 1_000_000);
  const tailSeq = sent[sent.length - 1].seq;
  await check(() => hubs.stats()[0].lastDispatched >= tailSeq, 10_000, "the hub to read up to the tail");
  const subs = await Promise.all(subjects.map((f) => hubs.subscribe("HUBT", f, from)));
  const more = publish(subjects, 300, sent);
  const results = await Promise.all(subjects.map(async (f, i) => {
    await more;
    const want = sent.filter((x) => x.subject === f).map((x) => x.seq);
    return { f, want, got: await take(subs[i], want.length) };
  }));
  for (const { f, want, got } of results) assert.deepEqual(got, want, `${f}: exactly its messages, in order`);
  const st = hubs.stats()[0];
  assert.ok(st.catchUps >= subjects.length, `every subscription caught up through a consumer (${st.catchUps})`);
  assert.ok(st.catchUpsPeak <= 3, `at most 3 catch-up consumers at once (${st.catchUpsPeak})`);
  assert.ok(st.catchUpsPeak >= 2, `they did run side by side (${st.catchUpsPeak})`);
  warm.stop();
  hubs.close();

  // One turn only: a reader that takes one message of its catch-up and is then stopped without
  // being iterated again (its actor crashed) must not keep the turn, or nobody catches up again.
  const one = new InputHubs(env.js, quietLog, { ringSize: 0, catchUpBatch: 4, maxCatchUps: 1 });
  const warm1 = await one.subscribe("HUBT", "h.t.P0", 1_000_000);
  await check(() => one.stats()[0].lastDispatched >= sent[sent.length - 1].seq, 10_000, "the second hub to read up to the tail");
  const abandoned = await one.subscribe("HUBT", "h.t.P1", from);
  const it = abandoned[Symbol.asyncIterator]();
  assert.equal((await it.next()).value?.subject, "h.t.P1");
  abandoned.stop();
  const next = await one.subscribe("HUBT", "h.t.P2", from);
  const want = sent.filter((x) => x.subject === "h.t.P2").map((x) => x.seq);
  const got = await Promise.race([take(next, want.length), new Promise<null>((r) => setTimeout(() => r(null), 10_000).unref())]);
  assert.deepEqual(got, want, "the next subscription behind caught up (null: it waited for a turn that never came back)");
  warm1.stop();
  one.close();
});

test("input hub - caughtUp is false while a reader has messages to take and true once it has applied everything", async () => {
  const hubs = new InputHubs(env.js, quietLog);
  const sent: Sent[] = [];
  const sub = await hubs.subscribe("HUBT", "h.c.P1", (await env.jsm.streams.info("HUBT")).state.last_seq + 1);
  await publish(["h.c.P1"], 5, sent);
  await check(() => sub.backlog() === 5, 10_000, "five messages queued");
  assert.equal(await sub.caughtUp(), false, "not caught up with five queued");
  const it = sub[Symbol.asyncIterator]();
  for (let i = 0; i < 5; i++) assert.equal((await it.next()).value!.seq, sent[i].seq);
  // The reader is back for more and none is there.
  const nextOne = it.next();
  await check(() => sub.caughtUp(), 10_000, "caught up once every message was taken");
  await publish(["h.c.P1"], 1, sent);
  assert.equal((await nextOne).value!.seq, sent[5].seq);
  sub.stop();
  assert.equal((await it.next()).done, true, "a stopped subscription ends its iteration");
  hubs.close();
});

test("input hub - after a crash (fromStream) a subscription reads the stream as it is now, not the reader's recent messages", async () => {
  const hubs = new InputHubs(env.js, quietLog);
  const from = (await env.jsm.streams.info("HUBT")).state.last_seq + 1;
  const warm = await hubs.subscribe("HUBT", "h.e.P1", from);
  const sent: Sent[] = [];
  await publish(["h.e.P1"], 3, sent);
  await check(() => hubs.stats()[0].lastDispatched >= sent[2].seq, 10_000, "the reader to pass the three messages");
  // An operator removes the middle one (a poison message) after the reader has read it.
  await env.jsm.streams.deleteMessage("HUBT", sent[1].seq);
  const recent = await take(await hubs.subscribe("HUBT", "h.e.P1", from), 3);
  assert.deepEqual(recent, sent.map((s) => s.seq), "a first start may be served from the reader's recent messages");
  const fresh = await take(await hubs.subscribe("HUBT", "h.e.P1", from, { fromStream: true }), 2);
  assert.deepEqual(fresh, [sent[0].seq, sent[2].seq], "a restart reads the stream, without the deleted message");
  warm.stop();
  hubs.close();
});

test("input hub - headers of delivered messages are read from their wire bytes, as the client reads them", async () => {
  const hubs = new InputHubs(env.js, quietLog);
  try {
    const from = (await env.jsm.streams.info("HUBT")).state.last_seq + 1;
    const h = publishHeaders("msgpack", "hdr-1", { "KV-Operation": "DEL" });
    await env.js.publish("h.hdr.x", new Uint8Array([1]), { headers: h });
    await env.js.publish("h.hdr.x", new Uint8Array([2]));
    const sub = await hubs.subscribe("HUBT", "h.hdr.x", from);
    const got: HubMsg[] = [];
    for await (const m of sub) {
      got.push(m);
      if (got.length === 2) break;
    }
    const read = got.map((m) => readHeaders(m));
    // The fast path: the client's own header object was never built for these messages.
    for (const m of got) assert.equal((m as unknown as { msg: { _headers?: unknown } }).msg._headers, undefined, "parsed from the wire bytes");
    assert.equal(read[0].get("Content-Type"), "application/msgpack");
    assert.equal(read[0].get("Nats-Msg-Id"), "hdr-1");
    assert.equal(read[0].get("KV-Operation"), "DEL");
    assert.equal(read[1].get("Content-Type"), "");
    // …and they say what the client's decode says.
    for (const k of ["Content-Type", "Nats-Msg-Id", "KV-Operation"]) assert.equal(read[0].get(k), got[0].headers?.get(k));
  } finally {
    hubs.close();
  }
});

test("input hub - a message the reader has taken is no longer held by its subscription (a quiet actor's queue is emptied rarely)", async () => {
  // No ring, so the subscription's queue is the only thing of the hub's that could hold them.
  const hubs = new InputHubs(env.js, quietLog, { ringSize: 0 });
  try {
    const sent: Sent[] = [];
    const sub = await hubs.subscribe("HUBT", "h.gc.P1", (await env.jsm.streams.info("HUBT")).state.last_seq + 1);
    await publish(["h.gc.P1"], 60, sent);
    await check(() => sub.backlog() === 60, 10_000, "sixty messages queued");
    // Taken as the actor loop takes them: synchronously from the queue, then through the iterator.
    const refs: WeakRef<HubMsg>[] = [];
    for (let i = 0; i < 30; i++) refs.push(new WeakRef(sub.takeQueued()!));
    const it = sub[Symbol.asyncIterator]();
    for (let i = 0; i < 30; i++) refs.push(new WeakRef((await it.next()).value as HubMsg));
    assert.equal(sub.backlog(), 0);
    // WeakRefs are kept alive until the current job ends: collect after a turn of the event loop.
    await new Promise((r) => setImmediate(r));
    collectGarbage();
    const alive = refs.filter((r) => r.deref() !== undefined).length;
    // The iterator's last yield (and the client's last delivery) may still hold the newest one or two.
    assert.ok(alive <= 2, `${alive} of 60 taken messages are still reachable`);
    sub.stop();
  } finally {
    hubs.close();
  }
});

test("input hub - its ring keeps copies, not the messages it read: a subscription served from it gets the same subjects, bytes and headers, and what the reader took can be collected", async () => {
  const hubs = new InputHubs(env.js, quietLog); // the default ring
  try {
    const from = (await env.jsm.streams.info("HUBT")).state.last_seq + 1;
    const reader = await hubs.subscribe("HUBT", "h.ring.>", from);
    const sent: { seq: number; subject: string; data: Uint8Array; id: string }[] = [];
    for (let i = 0; i < 60; i++) {
      const subject = `h.ring.P${i % 3}`;
      // Every fourth without headers; one with neither headers nor payload.
      const bare = i % 4 === 3;
      const data = i === 7 ? new Uint8Array(0) : new TextEncoder().encode(`payload ${i} `.repeat(1 + (i % 5)));
      const id = `ring-${i}`;
      const ack = await env.js.publish(subject, data, bare ? {} : { headers: publishHeaders("msgpack", id, { "KV-Operation": "PUT" }) });
      sent.push({ seq: ack.seq, subject, data, id: bare ? "" : id });
    }
    // The reader takes all sixty, as an actor does; only weak references are kept.
    const refs: WeakRef<HubMsg>[] = [];
    const it = reader[Symbol.asyncIterator]();
    for (let i = 0; i < 60; i++) refs.push(new WeakRef((await it.next()).value as HubMsg));
    // A subscription behind the hub, within its ring: served at once, with no catch-up consumer.
    const late = await hubs.subscribe("HUBT", "h.ring.P1", from);
    const st = hubs.stats().find((x) => x.stream === "HUBT")!;
    assert.equal(st.catchUps, 0, "no catch-up consumer");
    const want = sent.filter((m) => m.subject === "h.ring.P1");
    assert.equal(late.backlog(), want.length, "its messages were queued when it subscribed");
    for (const w of want) {
      const m = late.takeQueued()!;
      assert.equal(m.seq, w.seq);
      assert.equal(m.subject, w.subject);
      assert.ok(Buffer.from(m.data).equals(w.data), `the bytes of #${w.seq}`);
      const h = readHeaders(m);
      assert.equal(h.get("Nats-Msg-Id"), w.id);
      assert.equal(h.get("Content-Type"), w.id ? "application/msgpack" : "");
      assert.equal(h.get("KV-Operation"), w.id ? "PUT" : "");
      assert.equal(m.headers?.get("Nats-Msg-Id") ?? "", w.id, "the client's header object says the same");
    }
    await new Promise((r) => setImmediate(r));
    collectGarbage();
    const alive = refs.filter((r) => r.deref() !== undefined).length;
    // The iterator's last yield (and the client's last delivery) may still hold the newest one or two.
    assert.ok(alive <= 2, `${alive} of 60 messages the reader took are still reachable`);
    reader.stop();
    late.stop();
  } finally {
    hubs.close();
  }
});

/** A full garbage collection, without starting the test process with --expose-gc. */
function collectGarbage(): void {
  setFlagsFromString("--expose-gc");
  (runInNewContext("gc") as () => void)();
}

test("input hub - catch-up consumers, and the reader's own once the hub closes, are deleted from the server (not left to their five-minute inactive threshold)", async () => {
  await env.jsm.streams.add({ name: "HUBC", subjects: ["hc.>"] });
  const consumers = async () => (await env.jsm.consumers.list("HUBC").next()).length;
  for (let i = 0; i < 200; i++) await env.js.publish(`hc.P${i % 10}`, new Uint8Array([i]));
  // A ring far smaller than the stream: every subscription from the start catches up by a consumer of its own.
  const hubs = new InputHubs(env.js, quietLog, { ringSize: 10, maxCatchUps: 4, catchUpBatch: 8 });
  const subs = await Promise.all(Array.from({ length: 10 }, (_, p) => hubs.subscribe("HUBC", `hc.P${p}`, 1)));
  const got = await Promise.all(subs.map((s) => take(s, 20)));
  for (const g of got) assert.equal(g.length, 20);
  await check(async () => (await consumers()) === 1, 10_000, "only the hub's reader left on HUBC");
  for (const s of subs) s.stop();
  hubs.close();
  await check(async () => (await consumers()) === 0, 10_000, "no consumer left on HUBC once the hub closed");
});
