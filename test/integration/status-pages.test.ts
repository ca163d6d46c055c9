// `tickflow status` when a process's actors do not fit in one NATS message. A server whose
// max_payload is 8 KB stands in for the default 1 MB with six thousand actors (six stages over a
// thousand pairs, 2.4 MB of status): before paging, the micro-service stats that carried every
// actor could not be sent, the failed reply crashed the worker, and status listed its running
// actors as stopped.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { encode, publishHeaders } from "../../protocol/codec.js";
import { subjects } from "../../protocol/subjects.js";
import type { SourceActorDef, StreamActorDef } from "../../supervisor/actor.js";
import { addPairs } from "../../supervisor/desired-pairs.js";
import { clusterStatus } from "../../supervisor/status.js";
import { registerService, statusSubject, type StatusPage, type StatusSummary } from "../../supervisor/service.js";
import { check, cleanup, setup, type Env } from "../harness/nats.js";
import { startSupervisor } from "../harness/pipeline.js";

let env: Env;
before(async () => {
  env = await setup({ extraConfig: "max_payload: 8KB" });
});
after(async () => {
  await cleanup(env);
});

/** Counts its inputs, with a little detail so that each actor's status is a few hundred bytes. */
const counter: StreamActorDef<{ n: number }> = {
  kind: "stream",
  stage: "counter",
  input: (pair) => ({ stream: "TRADES", filter: subjects.trades(pair) }),
  init: () => ({ n: 0 }),
  receive(s) {
    s.n++;
  },
  describe: (s) => ({ n: s.n, note: "counts the trades of its pair" }),
};

/** A source that publishes nothing of its own; its output is taken to be its pair's trades (see `outputs` below). */
const src: SourceActorDef = {
  kind: "source",
  stage: "src",
  async run(ctx) {
    await new Promise<void>((r) => ctx.signal.addEventListener("abort", () => r(), { once: true }));
  },
};

test("status pages - 300 actors whose status is 10 messages: stats stay small, every actor is listed running, the worker stays up; stopped ones read in bulk", async () => {
  const pairs = Array.from({ length: 150 }, (_, i) => `S${String(i).padStart(3, "0")}/USD`);
  await addPairs(env.js, pairs);
  const sup = await startSupervisor(env, "w-pages", [counter, src]);
  const svc = await registerService(env.nc, () => ({ member: sup.memberInfo(), actors: sup.status() }));
  try {
    const h = publishHeaders("json");
    for (const [i, pair] of pairs.entries()) for (let k = 0; k <= i % 3; k++) await env.js.publish(subjects.trades(pair), encode({ k }, "json"), { headers: h });
    await check(() => sup.runsAllItOwns() && sup.status().length === 300 && sup.status().every((a) => a.state === "running" && (a.stage === "src" || (a.detail.n as number) === (pairs.indexOf(a.pair!) % 3) + 1)), 20_000, "every actor running with its inputs applied");
    const whole = JSON.stringify(sup.status()).length;
    assert.ok(whole > 8 * 8 * 1024, `the actors' status is ${whole} bytes, several messages' worth`);

    // The stats: a summary with where to read the actors.
    const stats = (await env.nc.request("$SRV.STATS.tickflow")).json<{ endpoints: { data: StatusSummary }[] }>();
    const summary = stats.endpoints[0].data;
    assert.equal(summary.statusSubject, statusSubject("w-pages"));
    assert.equal(summary.total, 300);
    assert.deepEqual(summary.stages.counter, { actors: 150, states: { running: 150 }, restarts: 0, deadLetters: 0 });
    assert.deepEqual(summary.stages.src, { actors: 150, states: { running: 150 }, restarts: 0, deadLetters: 0 });

    // The pages: each under the limit, in key order, together every actor once.
    const seen: string[] = [];
    let after: string | null = null;
    let pages = 0;
    do {
      const m = await env.nc.request(summary.statusSubject, JSON.stringify({ after }));
      assert.ok(m.data.length <= 8 * 1024, `page ${pages + 1} is ${m.data.length} bytes`);
      const page: StatusPage = m.json<StatusPage>();
      assert.equal(page.total, 300);
      seen.push(...page.actors.map((a) => `${a.stage} ${a.pair}`));
      after = page.next;
      pages++;
    } while (after !== null);
    assert.ok(pages >= 8, `${pages} pages`);
    assert.deepEqual(seen, [...pairs.map((p) => `counter ${p}`), ...pairs.map((p) => `src ${p}`)]);

    // A bad request gets a message saying what is wrong, and the endpoint keeps answering.
    assert.match((await env.nc.request(summary.statusSubject, "{oops")).json<{ error: string }>().error, /status request: not JSON/);
    assert.match((await env.nc.request(summary.statusSubject, JSON.stringify({ after: 5 }))).json<{ error: string }>().error, /"after" must be an actor key/);

    // "never": a stage nobody runs here and that never ran (no lease, no checkpoint) lists no actor.
    const cs = await clusterStatus(env.nc, ["counter", "src", "never"], { waitMs: 1000 });
    assert.equal(cs.actors.length, 300);
    assert.deepEqual(cs.actors.filter((a) => a.state === "running" && a.owner === "w-pages").length, 300);
  } finally {
    await svc.stop();
    await sup.stop();
  }
  // Nobody runs them now: listed from leases and checkpoints (read in bulk), each where it stopped.
  const outputs = { src: (key: string) => ({ stream: "TRADES", subject: subjects.trades(key) }) };
  const stopped = await clusterStatus(env.nc, ["counter", "src", "never"], { waitMs: 500, outputs });
  assert.equal(stopped.actors.length, 300, "the stages that ran are listed, not the one that never did");
  for (const a of stopped.actors) {
    assert.equal(a.state, "stopped", a.key);
    assert.equal(a.owner, null, `${a.key}: its lease was released`);
  }
  const trades = await env.jsm.streams.info("TRADES", { subjects_filter: "md.trades.>" });
  const lastSeqs = await Promise.all(pairs.map((p) => env.jsm.streams.getMessage("TRADES", { last_by_subj: subjects.trades(p) }).then((m) => m!.seq)));
  assert.equal(trades.state.messages, pairs.reduce((n, _, i) => n + (i % 3) + 1, 0));
  const at = (stage: string) => stopped.actors.filter((a) => a.stage === stage).map((a) => a.lastSeq);
  assert.deepEqual(at("counter"), lastSeqs, "each stopped actor at its checkpoint: the last trade of its pair");
  // A source keeps no checkpoint: where it stopped is its output's last message (read in bulk too).
  assert.deepEqual(at("src"), lastSeqs, "each stopped source at its output's last message");
});
