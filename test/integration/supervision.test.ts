// Supervision on a real nats-server: a poison message crashes an actor, which restarts with
// backoff from its checkpoint, crashes again, and once past its restart budget is marked failed —
// its lease kept as "failed, owned by nobody" so no other member retries it — until
// `tickflow actors restart` clears it.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { encode, publishHeaders } from "../../protocol/codec.js";
import { openBuckets } from "../../protocol/streams.js";
import { subjects } from "../../protocol/subjects.js";
import type { StreamActorDef } from "../../supervisor/actor.js";
import { clusterStatus } from "../../supervisor/status.js";
import { registerService } from "../../supervisor/service.js";
import { check, cleanup, setup, type Env } from "../harness/nats.js";
import { addPair, startSupervisor, testConfig } from "../harness/pipeline.js";
import { tickflowOk } from "../harness/procs.js";

let env: Env;
before(async () => {
  env = await setup();
});
after(async () => {
  await cleanup(env);
});

/** Counts inputs; a `{poison: true}` input is a bug that throws (not bad input, which would be dead-lettered). */
const crashy: StreamActorDef<{ n: number }> = {
  kind: "stream",
  stage: "crashy",
  input: (pair) => ({ stream: "TRADES", filter: subjects.trades(pair) }),
  init: () => ({ n: 0 }),
  receive(s, msg) {
    if ((msg.data as { poison?: boolean }).poison) throw new Error("poison pill");
    s.n++;
  },
  describe: (s) => ({ n: s.n }),
};

test("supervision - a poison message: restart with backoff, failed past the budget (visible in status), cleared by `tickflow actors restart`", async () => {
  const pair = "PX/USD";
  await addPair(env.js, pair);
  const cfg = testConfig({ TICKFLOW_MAX_RESTARTS: "2", TICKFLOW_RESTART_PERIOD_MS: "60000" });
  cfg.restart.initialBackoffMs = 400;
  const sup = await startSupervisor(env, "w-sup", [crashy], cfg);
  const svc = await registerService(env.nc, () => ({ member: sup.memberInfo(), actors: sup.status() }));
  const status = () => sup.status().find((a) => a.pair === pair);
  try {
    const h = publishHeaders("json");
    await env.js.publish(subjects.trades(pair), encode({ ok: 1 }, "json"), { headers: h });
    await check(() => status()?.detail.n === 1, 10_000, "first input applied");
    const poison = await env.js.publish(subjects.trades(pair), encode({ poison: true }, "json"), { headers: h });
    // Down during the backoff, then up again (and down again: the poison is still there).
    await check(() => status()?.state === "restarting" && status()!.restarts === 1, 5_000, "restarting after the first crash");
    await check(() => status()?.state === "failed", 20_000, "failed after 3 crashes within the period");
    assert.equal(status()!.restarts, 3);
    assert.match(status()!.lastError!, /3 crashes within 60000 ms; last: poison pill/);
    const kv = await openBuckets(env.js);
    const lease = (await kv.leases.get("crashy.PX-USD"))!.json<{ owner: string | null; failed?: { reason: string } }>();
    assert.equal(lease.owner, null, "the lease is released");
    assert.match(lease.failed!.reason, /poison pill/);
    // What `nats micro ls` / `nats micro info tickflow` ask: the worker answers as a micro service.
    const info = (await env.nc.request("$SRV.INFO.tickflow")).json<{ name: string; metadata: Record<string, string>; endpoints: { name: string; subject: string }[] }>();
    assert.equal(info.name, "tickflow");
    assert.equal(info.metadata.member, "w-sup");
    assert.deepEqual(info.endpoints.map((e) => [e.name, e.subject]), [["status", "tf.status.w-sup"]]);
    const cs = await clusterStatus(env.nc, ["crashy"], { waitMs: 1000 });
    assert.equal(cs.actors.find((a) => a.pair === pair)?.state, "failed", "failed is visible in the cluster status");
    // Remove the poison, then clear the failure: the actor starts again and goes on from its checkpoint.
    await env.jsm.streams.deleteMessage("TRADES", poison.seq);
    await env.js.publish(subjects.trades(pair), encode({ ok: 2 }, "json"), { headers: h });
    await tickflowOk(["actors", "restart", "crashy", pair, "--nats", env.server.url]);
    await check(() => status()?.state === "running" && status()?.detail.n === 2, 10_000, "running again after actors restart");
  } finally {
    await svc.stop();
    await sup.stop();
  }
});
