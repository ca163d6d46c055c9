// History by event time (gateway/history.ts) against a filter over everything published: three
// series interleaved in one stream, with gaps, many random windows; nothing scanned.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { readHistory } from "../../gateway/history.js";
import { encode, publishHeaders } from "../../protocol/codec.js";
import { check, cleanup, setup, type Env } from "../harness/nats.js";

let env: Env;
before(async () => {
  env = await setup();
});
after(async () => {
  await cleanup(env);
});

test("history - binary search over direct gets finds every window of interleaved series exactly", async () => {
  const subjectsOf = ["md.candles.1m.AAA-USD", "md.candles.1m.BBB-USD", "md.candles.5m.AAA-USD"];
  const series = new Map<string, number[]>(subjectsOf.map((s) => [s, []]));
  // A deterministic interleaving with gaps in event time (a series may skip windows).
  let x = 7;
  const rnd = () => (x = (x * 1103515245 + 12345) % 2147483648) / 2147483648;
  const next = new Map(subjectsOf.map((s) => [s, 1_000_000]));
  const acks = [];
  for (let i = 0; i < 1500; i++) {
    const s = subjectsOf[Math.floor(rnd() * subjectsOf.length)];
    const t = next.get(s)! + 60_000 * (1 + Math.floor(rnd() * 3));
    next.set(s, t);
    series.get(s)!.push(t);
    acks.push(env.js.publish(s, encode({ window_start_ms: t }, "msgpack"), { headers: publishHeaders("msgpack") }));
  }
  await Promise.all(acks);
  const tsOf = (d: unknown) => (d as { window_start_ms: number }).window_start_ms;
  for (let q = 0; q < 40; q++) {
    const subject = subjectsOf[q % subjectsOf.length];
    const all = series.get(subject)!;
    const a = all[Math.floor(rnd() * all.length)] + (q % 2 ? 1 : 0);
    const b = a + Math.floor(rnd() * 60) * 60_000;
    const limit = 1 + Math.floor(rnd() * 40);
    const got = (await readHistory(env.js, env.jsm, { stream: "CANDLES", subject, tsOf, from: a, to: b, limit, stepMs: 60_000 })).map((h) => tsOf(h.data));
    assert.deepEqual(got, all.filter((t) => t >= a && t <= b).slice(0, limit), `${subject} from ${a} to ${b} limit ${limit}`);
  }
  // Without `from`: the window of `limit` steps up to the newest.
  const s0 = series.get(subjectsOf[0])!;
  const last = s0[s0.length - 1];
  const got = (await readHistory(env.js, env.jsm, { stream: "CANDLES", subject: subjectsOf[0], tsOf, limit: 10, stepMs: 60_000 })).map((h) => tsOf(h.data));
  assert.deepEqual(got, s0.filter((t) => t >= last - 9 * 60_000));
  assert.deepEqual(await readHistory(env.js, env.jsm, { stream: "CANDLES", subject: "md.candles.1m.ZZZ-USD", tsOf, limit: 10, stepMs: 60_000 }), []);
  assert.deepEqual(await readHistory(env.js, env.jsm, { stream: "CANDLES", subject: subjectsOf[1], tsOf, from: last * 2, limit: 10, stepMs: 60_000 }), []);
  // Every request that read forward made a consumer: none is left on the server (each would stay
  // five minutes, the client's inactive threshold, so a busy gateway piled them up).
  await check(async () => (await env.jsm.consumers.list("CANDLES").next()).length === 0, 10_000, "no history consumer left on CANDLES");
});
