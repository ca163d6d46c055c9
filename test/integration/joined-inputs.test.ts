// Joined inputs on a real nats-server: an actor with two inputs (a stream and a KV bucket) whose
// interleaving the runtime records once in the actor's journal. Crashed mid-stream (a throw) or
// killed with its forwarder mid-way (a halted worker, another takes over), the actor's output
// stream is byte for byte what one uninterrupted run over the recorded order gives, and the
// journal holds every input message exactly once, in its stream's order.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import type { JetStreamClient } from "@nats-io/jetstream";
import { headers as natsHeaders } from "@nats-io/transport-node";
import { encode, publishHeaders } from "../../protocol/codec.js";
import { openBuckets } from "../../protocol/streams.js";
import type { Output, StreamActorDef } from "../../supervisor/actor.js";
import { journalInput, journalSubject } from "../../supervisor/journal.js";
import { check, cleanup, setup, type Env } from "../harness/nats.js";
import { startSupervisor, testConfig } from "../harness/pipeline.js";

let env: Env;
before(async () => {
  env = await setup();
});
after(async () => {
  await cleanup(env);
});

type S = { n: number; digest: string };
/** Journal sequences at which the actor has already crashed once (it crashes once per marker). */
const crashed = new Set<string>();
/** receive() calls per stage, crashes and replays included. */
const receives = new Map<string, number>();

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
    },
  };
}

type Raw = { seq: number; subject: string; data: Uint8Array; msgId?: string; headers: Record<string, string> };

async function readRaw(js: JetStreamClient, stream: string, subject: string): Promise<Raw[]> {
  const c = await js.consumers.get(stream, { filter_subjects: subject });
  if ((await c.info()).num_pending === 0) return [];
  const out: Raw[] = [];
  const iter = await c.consume({ max_messages: 1000 });
  for await (const m of iter) {
    const headers: Record<string, string> = {};
    if (m.headers) for (const [k, v] of m.headers) headers[k] = v[0];
    out.push({ seq: m.seq, subject: m.subject, data: m.data, msgId: m.headers?.get("Nats-Msg-Id"), headers });
    if (m.info.pending === 0) break;
  }
  iter.stop();
  return out;
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

/** The oracle: one uninterrupted run of the actor over the journal as recorded, encoded as the runtime encodes. */
function replayJournal(def: StreamActorDef<S>, key: string, journal: Raw[]): Output[] {
  const state = def.init(key, testConfig());
  const outs: Output[] = [];
  for (const j of journal) {
    const headers = natsHeaders();
    for (const [k, v] of Object.entries(j.headers)) headers.append(k, v);
    const m = { subject: j.subject, seq: j.seq, data: j.data, headers };
    def.receive(state, journalInput(m as never), (o) => outs.push(o));
  }
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

/** Done when the journal holds every news item and the KV's current entries, and the actor applied all of it. */
async function settled(stage: string, key: string, news: number): Promise<void> {
  await check(async () => {
    const journal = await readRaw(env.js, "JOURNAL", journalSubject(stage, key));
    const modelSeqs = (await readRaw(env.js, "KV_tf_models", `$KV.tf_models.jt.${key}.*`)).map((m) => m.seq);
    const seen = new Set(journal.map((j) => `${j.headers["Tf-Input"]}:${j.headers["Tf-Input-Seq"]}`));
    if (journal.filter((j) => j.headers["Tf-Input"] === "news").length < news || !modelSeqs.every((s) => seen.has(`model:${s}`))) return false;
    return (await readRaw(env.js, "SENTIMENT", `md.sentiment.jt-${stage}`)).length >= journal.length;
  }, 30_000, "every input journaled and applied");
}

async function assertExactlyOnceAndReplayable(stage: string, key: string, def: StreamActorDef<S>): Promise<void> {
  const cfg = testConfig();
  const journal = await readRaw(env.js, "JOURNAL", journalSubject(stage, key));
  // Per input: exactly the input stream's messages, each once, in stream order.
  const newsSeqs = (await readRaw(env.js, "NEWS", `news.raw.jt-${key}`)).map((m) => m.seq);
  const modelSeqs = (await readRaw(env.js, "KV_tf_models", `$KV.tf_models.jt.${key}.*`)).map((m) => m.seq);
  const inJournal = (name: string) => journal.filter((j) => j.headers["Tf-Input"] === name).map((j) => Number(j.headers["Tf-Input-Seq"]));
  assert.deepEqual(inJournal("news"), newsSeqs, "journal: every news item once, in order");
  // The KV stream keeps the latest revision per key; the journal has at least those, in order, and nothing twice.
  const models = inJournal("model");
  assert.deepEqual(models, [...new Set(models)].sort((a, b) => a - b), "journal: model updates once each, in order");
  for (const s of modelSeqs) assert.ok(models.includes(s), `model update #${s} journaled`);
  assert.ok(journal.some((j) => j.headers["KV-Operation"] === "DEL" && j.data.length === 0), "the KV delete is journaled as a delete");
  // Outputs: byte for byte the uninterrupted run over the recorded order.
  const outs = await readRaw(env.js, "SENTIMENT", `md.sentiment.jt-${stage}`);
  const oracle = replayJournal(def, key, journal);
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
    // What `up --once` waits on: the forwarder copied every input, the actor applied the whole journal.
    await withDeadline(sup.settle(), 30_000, "settle");
    // (Counted here rather than from the cell's status: on an overloaded box a test lease can lapse
    // and the actor move to a fresh cell, whose counters start at 0.)
    assert.equal(crashed.size, 1, "it crashed once");
    const journalLength = (await readRaw(env.js, "JOURNAL", journalSubject(stage, key))).length;
    assert.ok(receives.get(stage)! > journalLength, `the restart replayed from its checkpoint (${receives.get(stage)} receives for ${journalLength} entries)`);
    const st = sup.cell(stage, key)!.status();
    assert.equal(st.state, "running");
    assert.equal((st.detail.journal as { duplicates: number }).duplicates, 0, "the restarted forwarder re-appended nothing");
    await assertExactlyOnceAndReplayable(stage, key, def);
  } finally {
    await sup.stop();
  }
});

test("joined - the owner (forwarder and actor) killed mid-way: the next owner resumes each input exactly after the journal's last", async () => {
  const stage = "jfail";
  const key = "j2";
  const def = joiner(stage, key);
  const cfg = testConfig({ TICKFLOW_CHECKPOINT_EVERY: "11" });
  const a = await startSupervisor(env, "jw-a", [def], cfg);
  let b: Awaited<ReturnType<typeof startSupervisor>> | null = null;
  try {
    await feed(key, 0, 150, null);
    // 150 news, 50 model puts and a delete (the put it deletes may be gone from the KV stream before it is journaled).
    await check(async () => {
      const done = a.cell(stage, key)?.status().processed ?? 0;
      return done >= 200 && done === (await readRaw(env.js, "JOURNAL", journalSubject(stage, key))).length;
    }, 20_000, "the first owner applied the first part");
    // Kill it while news still arrives. No model update comes after its last checkpoint, so the
    // next owner finds the model input's position in that checkpoint, not in the journal's tail.
    const more = feed(key, 150, 450, null, false);
    await new Promise((r) => setTimeout(r, 30));
    await a.halt();
    b = await startSupervisor(env, "jw-b", [def], cfg);
    await more;
    await settled(stage, key, 450);
    const st = b.cell(stage, key)!.status();
    assert.equal(st.state, "running");
    const fw = st.detail.journal as { forwarded: number; duplicates: number };
    assert.ok(fw.forwarded > 0, "the new owner's forwarder went on");
    assert.equal(fw.duplicates, 0, "it resumed each input exactly after the journal's last entry (no re-append for dedup to drop)");
    await assertExactlyOnceAndReplayable(stage, key, def);
  } finally {
    await b?.stop();
    await a.stop();
  }
});

test("joined - another owner journaled an input first (split brain): the actor applies the journal as the stream holds it, outputs as the uninterrupted run", async () => {
  const stage = "jdup";
  const key = "j4";
  const def = joiner(stage, key);
  const sup = await startSupervisor(env, "jw-dup", [def]);
  try {
    await feed(key, 0, 40, null);
    await settled(stage, key, 40);
    // A stale owner, ahead on the news input, journals news item 40 before the item reaches NEWS.
    // Then a model update arrives, which this owner journals after the stale entry; then item 40,
    // whose append by this owner is a duplicate. The journal's order (item 40, then the update)
    // is not the order of this owner's appends (the update, then item 40): an actor that applied
    // its own appends in the order sent would disagree with a replay of its journal.
    const jsm = await env.js.jetstreamManager();
    const newsSeq = (await jsm.streams.info("NEWS")).state.last_seq + 1;
    const bytes = encode({ i: 40 }, "msgpack");
    const h = publishHeaders("msgpack");
    h.set("Tf-Input", "news");
    h.set("Tf-Input-Seq", String(newsSeq));
    h.set("Tf-Input-Subject", `news.raw.jt-${key}`);
    await env.js.publish(journalSubject(stage, key), bytes, { headers: h, msgID: `${stage}.${key}:news:${newsSeq}` });
    const journaled = async () => (await readRaw(env.js, "JOURNAL", journalSubject(stage, key))).length;
    const before = await journaled();
    await (await openBuckets(env.js)).models.put(`jt.${key}.stale`, JSON.stringify({ version: "after the stale entry" }));
    await check(async () => (await journaled()) > before, 10_000, "the model update journaled");
    const ack = await env.js.publish(`news.raw.jt-${key}`, bytes, { headers: publishHeaders("msgpack") });
    assert.equal(ack.seq, newsSeq, "nothing else published to NEWS meanwhile");
    await feed(key, 41, 80, null, false);
    await settled(stage, key, 80);
    await withDeadline(sup.settle(), 30_000, "settle");
    const fw = sup.cell(stage, key)!.status().detail.journal as { forwarded: number; duplicates: number };
    assert.equal(fw.duplicates, 1, "this owner's append of item 40 was a duplicate");
    const order = (await readRaw(env.js, "JOURNAL", journalSubject(stage, key))).map((j) => j.headers["Tf-Input"]);
    assert.deepEqual(order.slice(before - 1, before + 1), ["news", "model"], "the journal holds the stale entry before the update");
    await assertExactlyOnceAndReplayable(stage, key, def);
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
