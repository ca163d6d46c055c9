// A burst of input for many actors must not hold the event loop of a process that serves requests:
// actors give it a turn after each time slice (supervisor/time-slice.ts), so timers and I/O (the
// gateway's requests, lease renewals) run while a backlog is worked off. A backlog of 4 × 60 inputs, each costing its actor 2 ms of
// CPU, is about half a second of work; before slicing it ran in a handful of unbroken stretches
// (one per batch the input reader fetched), so a timer probing every millisecond fired only a few
// times while it lasted. Counted, not timed: the test asserts how often the probe got a turn.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { encode, publishHeaders } from "../../protocol/codec.js";
import { subjects } from "../../protocol/subjects.js";
import type { StreamActorDef } from "../../supervisor/actor.js";
import { enableTimeSlices, SLICE_MS } from "../../supervisor/time-slice.js";
import { check, cleanup, setup, type Env } from "../harness/nats.js";
import { addPair, startSupervisor } from "../harness/pipeline.js";

let env: Env;
before(async () => {
  env = await setup();
  enableTimeSlices(); // as the gateway does in a process that serves requests
});
after(async () => {
  await cleanup(env);
});

const COST_MS = 2;
let processed = 0;

/** Spends COST_MS of CPU on every input, as a busy stage does at a minute's close. */
const busy: StreamActorDef<{ n: number }> = {
  kind: "stream",
  stage: "busy",
  input: (pair) => ({ stream: "TRADES", filter: subjects.trades(pair) }),
  init: () => ({ n: 0 }),
  receive(s) {
    const until = performance.now() + COST_MS;
    while (performance.now() < until);
    s.n++;
    processed++;
  },
  describe: (s) => ({ n: s.n }),
};

test("time slices - a backlog of busy inputs for several actors leaves the event loop a turn every slice", async () => {
  const pairs = ["SA/USD", "SB/USD", "SC/USD", "SD/USD"];
  const perPair = 60;
  const h = publishHeaders("json");
  for (const pair of pairs) {
    await addPair(env.js, pair);
    await Promise.all(Array.from({ length: perPair }, (_, i) => env.js.publish(subjects.trades(pair), encode({ i }, "json"), { headers: h })));
  }
  const total = pairs.length * perPair;
  // The probe: a timer due every millisecond, counting the turns it gets while the backlog is worked off.
  let turnsDuring = 0;
  let probing = true;
  const probe = (): void => {
    if (processed > 0 && processed < total) turnsDuring++;
    if (probing) setTimeout(probe, 1);
  };
  setTimeout(probe, 1);
  const sup = await startSupervisor(env, "w-slice", [busy]);
  try {
    await check(() => processed === total, 60_000, `all ${total} inputs processed`);
    probing = false;
    // total × COST_MS of work in slices of SLICE_MS: a turn for the probe after each slice.
    const slices = Math.floor((total * COST_MS) / SLICE_MS);
    // Measured 32 of 48 (a slice ends only after the input that overruns it); before slicing, 0.
    assert.ok(turnsDuring >= slices / 4, `the probe got ${turnsDuring} turns during ${total * COST_MS} ms of work; at least ${slices / 4} expected (one per ${SLICE_MS} ms slice, a quarter for slack)`);
    assert.deepEqual(sup.status().map((a) => a.detail.n).sort(), pairs.map(() => perPair), "every actor applied each of its inputs once");
  } finally {
    probing = false;
    await sup.stop();
  }
});
