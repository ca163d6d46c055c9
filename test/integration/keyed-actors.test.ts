// Actors keyed by something other than a pair (news sources): the same leases, placement,
// failover and checkpoints as per-pair actors. A keyed source saves a cursor with
// ctx.saveCheckpoint; a stale owner's save is refused (compare-and-set on the revision it read).
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { decode } from "../../protocol/codec.js";
import { openBuckets } from "../../protocol/streams.js";
import type { SourceActorDef, SourceContext } from "../../supervisor/actor.js";
import { ActorCell } from "../../supervisor/actor-cell.js";
import { InputHubs } from "../../supervisor/input-hub.js";
import { PublishPool } from "../../supervisor/publish-pool.js";
import { addPairs } from "../../supervisor/desired-pairs.js";
import { clusterStatus } from "../../supervisor/status.js";
import { registerService } from "../../supervisor/service.js";
import { check, cleanup, readAll, setup, type Env } from "../harness/nats.js";
import { quietLog, startSupervisor, testConfig } from "../harness/pipeline.js";

let env: Env;
before(async () => {
  env = await setup();
});
after(async () => {
  await cleanup(env);
});

type Cursor = { n: number };
/** Where each run of each key started, and on which member: the proof that a restart resumed from the cursor. */
const starts: { key: string; owner: string; from: number }[] = [];

/** A poller per source: publishes item n on news.raw.<key>, then saves the cursor n+1. */
function counter(stage: string, keys: string[], owner: () => string): SourceActorDef {
  return {
    kind: "source",
    stage,
    keys: () => keys,
    async run(ctx) {
      let n = (await ctx.loadCheckpoint<Cursor>())?.n ?? 0;
      starts.push({ key: ctx.key, owner: owner(), from: n });
      assert.equal(ctx.pair, undefined);
      while (!ctx.signal.aborted) {
        await ctx.publish({ subject: `news.raw.${ctx.key}`, msgId: `${ctx.key}:${n}`, data: { key: ctx.key, n } });
        n++;
        await ctx.saveCheckpoint({ n });
        ctx.progress({ processed: n });
        await new Promise((r) => setTimeout(r, 20));
      }
    },
  };
}

test("keyed - three static keys on two workers run exactly once each; a halted worker's keys move with their cursors", async () => {
  const keys = ["k-alpha", "k-beta", "k-gamma"];
  const stage = "poller";
  const cfg = testConfig();
  const a = await startSupervisor(env, "kw-a", [counter(stage, keys, () => "kw-a")], cfg);
  const b = await startSupervisor(env, "kw-b", [counter(stage, keys, () => "kw-b")], cfg);
  const svcA = await registerService(env.nc, () => ({ member: a.memberInfo(), actors: a.status() }));
  const svcB = await registerService(env.nc, () => ({ member: b.memberInfo(), actors: b.status() }));
  let svcAStopped = false;
  try {
    const running = (s: typeof a) => s.status().filter((x) => x.state === "running" && x.stage === stage).map((x) => x.key);
    await check(() => {
      const all = [...running(a), ...running(b)].sort();
      return all.length === 3 && JSON.stringify(all) === JSON.stringify(keys) && running(a).length > 0 && running(b).length > 0;
    }, 20_000, "each key running on exactly one worker, both workers busy"); // (rendezvous of these fixed names splits 2/1)
    const kv = await openBuckets(env.js);
    for (const k of keys) {
      const lease = (await kv.leases.get(`${stage}.${k}`))!.json<{ owner: string }>();
      assert.equal(lease.owner, running(a).includes(k) ? "kw-a" : "kw-b", `lease of ${k}`);
    }
    // With a pair followed, a keyed stage still has no per-pair actor, and a status reader without
    // the stage definitions (the gateway) lists none: the members say which stages are per pair.
    await addPairs(env.js, ["KX/USD"]);
    assert.deepEqual(a.memberInfo().pairStages, []);
    const cs = await clusterStatus(env.nc, [stage], { waitMs: 1000 });
    assert.deepEqual(cs.actors.map((x) => [x.key, x.state, x.pair]), keys.map((k) => [k, "running", undefined]), "tickflow status lists keyed actors");
    const moved = running(a);
    // Let the cursors advance, then crash worker a (no checkpoint, no release).
    await check(() => a.status().every((x) => x.processed >= 5), 10_000, "a few items per key on worker a");
    await a.halt();
    await svcA.stop();
    svcAStopped = true;
    await check(() => running(b).length === 3, 20_000, "worker b runs every key after a's leases expire");
    for (const k of moved) {
      const resumed = starts.filter((s) => s.key === k && s.owner === "kw-b");
      assert.ok(resumed.length >= 1, `${k} started on b`);
      assert.ok(resumed[0].from >= 5, `${k} resumed from its cursor (${resumed[0].from}), not from 0`);
    }
    await check(() => b.status().every((x) => x.processed >= 15), 10_000, "progress on b");
    await b.stop();
    // Every item once, none skipped: ids 0..max, contiguous, each stored once (dedup absorbed the replays).
    for (const k of keys) {
      const items = await readAll(env.js, "NEWS", `news.raw.${k}`);
      assert.deepEqual(items.map((m) => m.data.n), items.map((_, i) => i), `${k}: contiguous, no duplicate`);
      const cp = decode((await kv.state.get(`${stage}.${k}`))!.value) as { state: Cursor };
      assert.equal(cp.state.n, items.length, `${k}: saved cursor follows the last stored item`);
    }
  } finally {
    if (!svcAStopped) await svcA.stop();
    await svcB.stop();
    await a.stop();
    await b.stop();
  }
});

test("keyed - a stale owner's checkpoint save is refused and crashes it; dead letters go to dlq.<stage>.<key>", async () => {
  const stage = "fenced";
  const ctxs = new Map<string, SourceContext>();
  const def: SourceActorDef = {
    kind: "source",
    stage,
    keys: () => ["src-1"],
    async run(ctx) {
      ctxs.set(ctx.log.bindings().owner as string, ctx);
      await new Promise<void>((resolve) => ctx.signal.addEventListener("abort", () => resolve(), { once: true }));
    },
  };
  const kv = await openBuckets(env.js);
  const cfg = testConfig();
  cfg.restart.initialBackoffMs = 60_000; // stays down after the crash, so the test can look at it
  const pool = new PublishPool(PublishPool.serverOf(env.nc), { size: 1, name: "fenced", ackTimeoutMs: 10_000 });
  const cell = (owner: string) => new ActorCell({
    def, key: "src-1", owner, config: cfg, nc: env.nc, js: env.js, stateKv: kv.state, pool, hubs: new InputHubs(env.js, quietLog), log: quietLog.child({ owner }), onFailed: () => {},
  });
  const old = cell("old");
  old.start();
  await check(() => ctxs.get("old"), 5_000, "old owner running");
  await ctxs.get("old")!.saveCheckpoint({ n: 1 });
  // The new owner starts (reads the revision of n=1) and saves; the old one then tries to save.
  const neu = cell("new");
  neu.start();
  await check(() => ctxs.get("new"), 5_000, "new owner running");
  assert.deepEqual(await ctxs.get("new")!.loadCheckpoint(), { n: 1 });
  await ctxs.get("new")!.saveCheckpoint({ n: 2 });
  await assert.rejects(ctxs.get("old")!.saveCheckpoint({ n: 0 }), /fenced\.src-1: checkpoint refused, another owner saved since this one started/);
  await check(() => old.status().state === "restarting", 5_000, "the stale owner crashed");
  assert.match(old.status().lastError!, /checkpoint refused/);
  assert.equal((decode((await kv.state.get(`${stage}.src-1`))!.value) as { state: Cursor }).state.n, 2, "the new owner's cursor stands");
  ctxs.get("new")!.deadLetter("unparseable item", "<rss><broken", "http.feed");
  await ctxs.get("new")!.flush();
  const dl = await readAll(env.js, "DLQ", `dlq.${stage}.src-1`);
  assert.equal(dl.length, 1);
  assert.equal(dl[0].data.key, "src-1");
  assert.equal(dl[0].data.reason, "unparseable item");
  assert.equal(Buffer.from(dl[0].data.payload).toString(), "<rss><broken");
  assert.equal(neu.status().key, "src-1");
  await old.stop();
  await neu.stop();
  await pool.close();
});
