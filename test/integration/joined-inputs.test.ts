// Joined inputs on a real nats-server: an actor with a main input (a stream) and another (a KV
// bucket). The main input is read from its stream; the other's messages are recorded in the
// actor's journal where they fall between the main input's. Crashed mid-stream (a throw), killed
// mid-way and replaced, restarted with main-input outputs already published past its checkpoint,
// or run by two owners at once (a forced split brain), the actor's output stream is byte for byte
// what one uninterrupted run over the recorded order gives, and the journal holds every message of
// the other input exactly once, in its stream's order, and nothing of the main input.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import type { JetStreamClient } from "@nats-io/jetstream";
import { encode, publishHeaders } from "../../protocol/codec.js";
import { openBuckets } from "../../protocol/streams.js";
import type { InputMsg, Output, StreamActorDef } from "../../supervisor/actor.js";
import { headers as natsHeaders } from "@nats-io/transport-node";
import { FENCE, HDR_INPUT, journalInput, journalSubject } from "../../supervisor/journal.js";
import { Supervisor } from "../../supervisor/runtime.js";
import { journalEntries, joinedOrder } from "../harness/joined-order.js";
import { check, cleanup, readMsgs, setup, type Env } from "../harness/nats.js";
import { quietLog, startSupervisor, testConfig } from "../harness/pipeline.js";

let env: Env;
before(async () => {
  env = await setup();
});
after(async () => {
  await cleanup(env);
});

type S = { n: number; digest: string };
/** Main-input sequences at which the actor has already crashed once (it crashes once per marker). */
const crashed = new Set<string>();
/** receive() calls per stage, crashes and replays included. */
const receives = new Map<string, number>();
/** When set, each receive() takes this long (a slow actor working through a backlog). */
let slowMs = 0;

/** Folds every input, in the order it sees them, into a running digest, and publishes it each time. */
function joiner(stage: string, key: string): StreamActorDef<S> {
  return {
    kind: "stream",
    stage,
    keys: () => [key],
    input: (k) => [
      { name: "news", stream: "NEWS", filter: `news.raw.jt-${k}` },
      { name: "model", stream: "KV_tf_models", filter: `$KV.tf_models.jt.${k}.*` },
    ],
    init: () => ({ n: 0, digest: "" }),
    receive(s, msg, emit) {
      receives.set(stage, (receives.get(stage) ?? 0) + 1);
      const d = msg.data as { i?: number; crash?: boolean } | undefined;
      if (d?.crash && !crashed.has(`${stage}:${msg.seq}`)) {
        crashed.add(`${stage}:${msg.seq}`);
        throw new Error("a bug, once");
      }
      s.n++;
      const op = msg.header("KV-Operation") ?? "PUT";
      s.digest = createHash("sha1").update(s.digest).update(`${msg.input}|${msg.seq}|${msg.subject}|${op}|`).update(msg.raw).digest("hex").slice(0, 16);
      emit({ subject: `md.sentiment.jt-${stage}`, msgId: `jt:${stage}:${s.n}`, data: { n: s.n, input: msg.input, seq: msg.seq, op, digest: s.digest, i: d?.i ?? null } });
      if (slowMs > 0) return new Promise<void>((r) => setTimeout(r, slowMs));
    },
  };
}

type Raw = { seq: number; subject: string; data: Uint8Array; msgId?: string; headers: Record<string, string> };

async function readRaw(js: JetStreamClient, stream: string, subject: string): Promise<Raw[]> {
  return (await readMsgs(js, stream, subject)).map((m) => {
    const headers: Record<string, string> = {};
    if (m.headers) for (const [k, v] of m.headers) headers[k] = v[0];
    return { seq: m.seq, subject: m.subject, data: m.data, msgId: m.headers?.get("Nats-Msg-Id"), headers };
  });
}

/** Feeds both inputs concurrently (so the recorded interleaving is arbitrary): `news` items and `models` KV puts, one delete. */
async function feed(key: string, from: number, to: number, crashAt: number | null, withModels = true): Promise<void> {
  const kv = await openBuckets(env.js);
  const h = publishHeaders("msgpack");
  const news = (async () => {
    for (let i = from; i < to; i++) {
      await env.js.publish(`news.raw.jt-${key}`, encode({ i, ...(i === crashAt ? { crash: true } : {}) }, "msgpack"), { headers: h });
      if (i % 10 === 0) await new Promise((r) => setImmediate(r));
    }
  })();
  const models = (async () => {
    for (let i = from; i < to && withModels; i += 3) {
      await kv.models.put(`jt.${key}.${i}`, JSON.stringify({ version: i }));
      if (i === from + 9) await kv.models.delete(`jt.${key}.${from + 3}`);
    }
  })();
  await Promise.all([news, models]);
}

const mainOf = (key: string) => ({ name: "news", stream: "NEWS", subject: `news.raw.jt-${key}` });

/** The oracle: one uninterrupted run of the actor over its inputs in the recorded order, encoded as the runtime encodes. */
function replay(def: StreamActorDef<S>, key: string, inputs: InputMsg[]): Output[] {
  const state = def.init(key, testConfig());
  const outs: Output[] = [];
  for (const m of inputs) def.receive(state, m, (o) => outs.push(o));
  return outs;
}

async function withDeadline<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let t: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => (t = setTimeout(() => reject(new Error(`${what} did not finish within ${ms} ms`)), ms)));
  try {
    return await Promise.race([p, timeout]);
  } finally {
    clearTimeout(t);
  }
}

/** Done when the journal holds the KV's current entries and the actor applied every input (one output each). */
async function settled(stage: string, key: string): Promise<void> {
  await check(async () => {
    const modelSeqs = (await readRaw(env.js, "KV_tf_models", `$KV.tf_models.jt.${key}.*`)).map((m) => m.seq);
    const seen = new Set((await journalEntries(env.js, stage, key)).map((e) => e.msg.seq));
    if (!modelSeqs.every((s) => seen.has(s))) return false;
    const order = await joinedOrder(env.js, { stage, key, main: mainOf(key) });
    return (await readRaw(env.js, "SENTIMENT", `md.sentiment.jt-${stage}`)).length >= order.length;
  }, 30_000, "every input applied");
}

async function assertExactlyOnceAndReplayable(stage: string, key: string, def: StreamActorDef<S>, o: { deletes: boolean } = { deletes: true }): Promise<void> {
  const cfg = testConfig();
  const journal = await readRaw(env.js, "JOURNAL", journalSubject(stage, key));
  assert.ok(journal.every((j) => j.headers[HDR_INPUT] === "model" || j.headers[HDR_INPUT] === FENCE), "the journal holds the other input (and fences), never the main one");
  // The other input: exactly its stream's messages, each once, in stream order.
  const modelSeqs = (await readRaw(env.js, "KV_tf_models", `$KV.tf_models.jt.${key}.*`)).map((m) => m.seq);
  const models = (await journalEntries(env.js, stage, key)).map((e) => e.msg.seq);
  assert.deepEqual(models, [...new Set(models)].sort((a, b) => a - b), "journal: model updates once each, in order");
  // The KV stream keeps the latest revision per key; the journal has at least those.
  for (const s of modelSeqs) assert.ok(models.includes(s), `model update #${s} journaled`);
  if (o.deletes) assert.ok(journal.some((j) => j.headers["KV-Operation"] === "DEL" && j.data.length === 0), "the KV delete is journaled as a delete");
  // Outputs: byte for byte the uninterrupted run over the recorded order, every news item in it once.
  const order = await joinedOrder(env.js, { stage, key, main: mainOf(key) });
  const news = (await readRaw(env.js, "NEWS", `news.raw.jt-${key}`)).map((m) => m.seq);
  assert.deepEqual(order.filter((m) => m.input === "news").map((m) => m.seq), news);
  const outs = await readRaw(env.js, "SENTIMENT", `md.sentiment.jt-${stage}`);
  const oracle = replay(def, key, order);
  assert.equal(outs.length, oracle.length, "as many outputs as the uninterrupted run");
  for (let i = 0; i < oracle.length; i++) {
    assert.equal(outs[i].msgId, oracle[i].msgId, `output #${i} id`);
    assert.ok(Buffer.from(outs[i].data).equals(encode(oracle[i].data, cfg.codec)), `output #${i} bytes`);
  }
}

test("joined - an actor with two inputs crashed mid-stream republishes byte-identical outputs; nothing lost or doubled", async () => {
  const stage = "jcrash";
  const key = "j1";
  const def = joiner(stage, key);
  // A checkpoint every 50 inputs: the restart replays what came after the last one.
  const sup = await startSupervisor(env, "jw-1", [def], testConfig({ TICKFLOW_CHECKPOINT_EVERY: "50" }));
  try {
    await feed(key, 0, 300, 150);
    // What `up --once` waits on: every input applied, every output acked.
    await withDeadline(sup.settle(), 30_000, "settle");
    // (Counted here rather than from the cell's status: on an overloaded box a test lease can lapse
    // and the actor move to a fresh cell, whose counters start at 0.)
    assert.equal(crashed.size, 1, "it crashed once");
    const total = (await joinedOrder(env.js, { stage, key, main: mainOf(key) })).length;
    assert.ok(receives.get(stage)! > total, `the restart replayed from its checkpoint (${receives.get(stage)} receives for ${total} inputs)`);
    assert.equal(sup.cell(stage, key)!.status().state, "running");
    await assertExactlyOnceAndReplayable(stage, key, def);
  } finally {
    await sup.stop();
  }
});

test("joined - the owner killed mid-way: the next owner resumes each input exactly after the last it applied or journaled", async () => {
  const stage = "jfail";
  const key = "j2";
  const def = joiner(stage, key);
  const cfg = testConfig({ TICKFLOW_CHECKPOINT_EVERY: "11" });
  const a = await startSupervisor(env, "jw-a", [def], cfg);
  let b: Awaited<ReturnType<typeof startSupervisor>> | null = null;
  try {
    await feed(key, 0, 150, null);
    // 150 news, 50 model puts and a delete (the put it deletes may be gone from the KV stream before it is journaled).
    await check(async () => (a.cell(stage, key)?.status().processed ?? 0) >= 200, 20_000, "the first owner applied the first part");
    // Kill it while news still arrives. No model update comes after its last checkpoint, so the
    // next owner finds the model input's position in that checkpoint, not in the journal's tail.
    const more = feed(key, 150, 450, null, false);
    await new Promise((r) => setTimeout(r, 30));
    await a.halt();
    b = await startSupervisor(env, "jw-b", [def], cfg);
    await more;
    // Then model updates again: the new owner journals them, each once.
    const journaled = (await journalEntries(env.js, stage, key)).length;
    await feed(key, 450, 480, null);
    await settled(stage, key);
    assert.equal(b.cell(stage, key)!.status().state, "running");
    assert.ok((await journalEntries(env.js, stage, key)).length > journaled, "the new owner journaled the later updates");
    await assertExactlyOnceAndReplayable(stage, key, def);
  } finally {
    await b?.stop();
    await a.stop();
  }
});

test("joined - restarted with outputs of main input published past its checkpoint, it applies the main input up to there before an update that came meanwhile", async () => {
  const stage = "jdrain";
  const key = "j5";
  const def = joiner(stage, key);
  // No checkpoint but the one at start: everything the first owner applies is past it.
  const cfg = testConfig({ TICKFLOW_CHECKPOINT_EVERY: "100000", TICKFLOW_CHECKPOINT_MS: "600000" });
  const a = await startSupervisor(env, "jw-d1", [def], cfg);
  let b: Awaited<ReturnType<typeof startSupervisor>> | null = null;
  try {
    await feed(key, 0, 1500, null, false);
    await check(async () => (await readRaw(env.js, "SENTIMENT", `md.sentiment.jt-${stage}`)).length === 1500, 30_000, "1,500 outputs published");
    await a.halt();
    // The next owner works slowly through the 1,500 news items again, and a model update arrives
    // while it is at the first hundreds. Its place is after all 1,500, whose published outputs
    // were computed without it, not among them.
    slowMs = 1;
    b = await startSupervisor(env, "jw-d2", [def], cfg);
    await check(() => (b!.cell(stage, key)?.status().processed ?? 0) >= 100, 30_000, "the new owner at work on the backlog");
    assert.ok(b.cell(stage, key)!.status().processed < 1000, "still far from its end");
    await (await openBuckets(env.js)).models.put(`jt.${key}.late`, JSON.stringify({ version: "late" }));
    await check(async () => (await journalEntries(env.js, stage, key)).length > 0, 30_000, "the update journaled");
    slowMs = 0;
    await feed(key, 1500, 1510, null, false);
    await settled(stage, key);
    await withDeadline(b.settle(), 30_000, "settle");
    const entries = await journalEntries(env.js, stage, key);
    const news = (await readRaw(env.js, "NEWS", `news.raw.jt-${key}`)).map((m) => m.seq);
    assert.ok(entries.length > 0 && entries.every((e) => e.after >= news[1499]), `the update went after the 1,500th news item (#${news[1499]}): after ${entries.map((e) => e.after).join(", ")}`);
    await assertExactlyOnceAndReplayable(stage, key, def, { deletes: false });
  } finally {
    slowMs = 0;
    await b?.stop();
    await a.stop();
  }
});

test("joined - a stale owner can neither write a checkpoint nor append to the journal once the next owner has started", async () => {
  const stage = "jfence";
  const key = "j4";
  const def = joiner(stage, key);
  // No checkpoints but the one each owner writes when it starts.
  const cfg = testConfig({ TICKFLOW_CHECKPOINT_EVERY: "100000", TICKFLOW_CHECKPOINT_MS: "600000" });
  const a = await startSupervisor(env, "jw-f1", [def], cfg);
  let b: Awaited<ReturnType<typeof startSupervisor>> | null = null;
  try {
    await feed(key, 0, 40, null);
    await settled(stage, key);
    // What the first owner knows when it stops answering: its checkpoint's revision and the journal's last entry.
    const kv = await openBuckets(env.js);
    const cp = (await kv.state.get(`${stage}.${key}`))!;
    const journalLast = (await readRaw(env.js, "JOURNAL", journalSubject(stage, key))).at(-1)!.seq;
    await a.halt();
    b = await startSupervisor(env, "jw-f2", [def], cfg);
    await check(async () => (await readRaw(env.js, "JOURNAL", journalSubject(stage, key))).at(-1)!.seq > journalLast, 30_000, "the next owner's fence");
    // The stale owner wakes up: its checkpoint write and its next append are refused.
    await assert.rejects(kv.state.update(`${stage}.${key}`, cp.value, cp.revision), /wrong last sequence/i, "a stale checkpoint");
    const h = publishHeaders("msgpack");
    h.set(HDR_INPUT, "model");
    h.set("Tf-Input-Seq", "999999");
    h.set("Tf-Input-Subject", `$KV.tf_models.jt.${key}.stale`);
    h.set("Tf-After", "0");
    h.set("Nats-Expected-Last-Subject-Sequence", String(journalLast));
    await assert.rejects(env.js.publish(journalSubject(stage, key), encode({ version: "stale" }, "msgpack"), { headers: h }), /wrong last sequence/i, "a stale append");
    await feed(key, 40, 80, null);
    await settled(stage, key);
    await withDeadline(b.settle(), 30_000, "settle");
    await assertExactlyOnceAndReplayable(stage, key, def);
  } finally {
    await b?.stop();
    await a.stop();
  }
});

test("joined - two owners at once (split brain): outputs as one uninterrupted run over the journal, every update journaled once", async () => {
  const stage = "jsplit";
  const key = "j6";
  const def = joiner(stage, key);
  // Conflicts restart the actor in each owner again and again: a budget for that, and checkpoints often.
  const cfg = testConfig({ TICKFLOW_CHECKPOINT_EVERY: "20", TICKFLOW_MAX_RESTARTS: "1000" });
  // …and short backoffs, or a run of conflicts would leave the actor waiting seconds between tries.
  cfg.restart = { ...cfg.restart, initialBackoffMs: 20, maxBackoffMs: 200 };
  const sups = ["jw-s1", "jw-s2"].map((id) => new Supervisor({ id, stages: [def], config: cfg, nc: env.nc, js: env.js, log: quietLog, ignoreLeases: true }));
  try {
    await Promise.all(sups.map((s) => s.start()));
    await check(() => sups.every((s) => s.cell(stage, key) !== undefined), 10_000, "both run the actor");
    await feed(key, 0, 300, null);
    // (Not settle(): its final checkpoint conflicts with the other owner's, as it should.)
    await settled(stage, key);
    const restarts = sups.flatMap((s) => s.status()).filter((a) => a.stage === stage).reduce((n, a) => n + a.restarts, 0);
    assert.ok(restarts > 0, "the two owners' checkpoints conflicted (one restarted)");
    await assertExactlyOnceAndReplayable(stage, key, def);
  } finally {
    await Promise.all(sups.map((s) => s.stop()));
  }
});

test("joined - a journal and checkpoint from before the main input was read directly: the actor goes on where they stood", async () => {
  const stage = "jold";
  const key = "j7";
  const def = joiner(stage, key);
  const cfg = testConfig();
  const kv = await openBuckets(env.js);
  // The inputs, then the old journal: every message of both, in an order of its own.
  const news: Raw[] = [];
  for (let i = 0; i < 20; i++) {
    const ack = await env.js.publish(`news.raw.jt-${key}`, encode({ i }, "msgpack"), { headers: publishHeaders("msgpack") });
    news.push({ seq: ack.seq, subject: `news.raw.jt-${key}`, data: encode({ i }, "msgpack"), headers: {} });
  }
  for (let i = 0; i < 4; i++) await kv.models.put(`jt.${key}.${i}`, JSON.stringify({ version: i }));
  const models = await readRaw(env.js, "KV_tf_models", `$KV.tf_models.jt.${key}.*`);
  const old: Raw[] = [];
  for (let i = 0; i < 20; i++) {
    old.push({ ...news[i], headers: { [HDR_INPUT]: "news", "Tf-Input-Seq": String(news[i].seq), "Tf-Input-Subject": news[i].subject } });
    if (i % 5 === 2) {
      const m = models[(i - 2) / 5];
      old.push({ ...m, headers: { ...m.headers, [HDR_INPUT]: "model", "Tf-Input-Seq": String(m.seq), "Tf-Input-Subject": m.subject } });
    }
  }
  const inputsOf = (entries: { raw: Raw; jseq: number }[]) => entries.map(({ raw, jseq }) => {
    const h = natsHeaders();
    for (const [k, v] of Object.entries(raw.headers)) if (!/^nats-/i.test(k)) h.set(k, v);
    return journalInput({ subject: journalSubject(stage, key), seq: jseq, data: raw.data, headers: h });
  });
  const journaled: { raw: Raw; jseq: number }[] = [];
  for (const raw of old) {
    const h = natsHeaders();
    for (const [k, v] of Object.entries(raw.headers)) if (!/^nats-/i.test(k)) h.set(k, v);
    const ack = await env.js.publish(journalSubject(stage, key), raw.data, { headers: h, msgID: `${stage}.${key}:${raw.headers[HDR_INPUT]}:${raw.seq}` });
    journaled.push({ raw, jseq: ack.seq });
  }
  // The old checkpoint: the first 9 entries applied (7 news items, 2 model records), `seq` the journal's.
  const all = inputsOf(journaled);
  const state = def.init(key, cfg);
  const published: Output[] = [];
  for (const m of all.slice(0, 9)) def.receive(state, m, (o) => published.push(o));
  const inputs: Record<string, number> = {};
  for (const m of all.slice(0, 9)) inputs[m.input] = m.seq;
  await kv.state.put(`${stage}.${key}`, encode({ v: 1, seq: journaled[8].jseq, state, at: Date.now(), inputs }, cfg.codec));
  const sup = await startSupervisor(env, "jw-old", [def], cfg);
  try {
    await check(async () => (await readRaw(env.js, "SENTIMENT", `md.sentiment.jt-${stage}`)).length === all.length - 9, 30_000, "the rest applied");
    await withDeadline(sup.settle(), 30_000, "settle");
    // What the old journal's order gives from the checkpoint on, output for output.
    const oracle = replay(def, key, all).slice(9);
    const outs = await readRaw(env.js, "SENTIMENT", `md.sentiment.jt-${stage}`);
    assert.deepEqual(outs.map((o) => o.msgId), oracle.map((o) => o.msgId));
    for (let i = 0; i < oracle.length; i++) assert.ok(Buffer.from(outs[i].data).equals(encode(oracle[i].data, cfg.codec)), `output #${i} bytes`);
    assert.equal(sup.cell(stage, key)!.status().lastSeq, news[19].seq, "its position is now the main input's");
  } finally {
    await sup.stop();
  }
});

test("joined - an input on a missing stream: the crash names the actor, the input, its stream and filter", async () => {
  const def: StreamActorDef<S> = {
    ...joiner("jbad", "j3"),
    input: () => [
      { name: "news", stream: "NEWS", filter: "news.raw.jt-j3" },
      { name: "model", stream: "NO_SUCH_STREAM", filter: "x.y" },
    ],
  };
  const sup = await startSupervisor(env, "jw-bad", [def]);
  try {
    await check(() => /jbad\.j3: input "model" \(stream NO_SUCH_STREAM, filter x\.y\): .*not found/i.test(sup.status()[0]?.lastError ?? ""), 10_000, "the crash names the input");
  } finally {
    await sup.stop();
  }
});
