// Many actors' periodic chores on one timer (supervisor/shared-timer.ts): each job once per
// period, jobs spread over the period's phases, nothing left running once the last job is gone.
// Checked by the order in which jobs run, which does not depend on how fast the machine is.
import { test } from "node:test";
import assert from "node:assert/strict";
import { SharedTimer, SLOTS, sharedTimer } from "../../supervisor/shared-timer.js";

test("shared timer - jobs take turns by phase, each once per period, and the timer stops with the last job", async () => {
  const t = new SharedTimer(40);
  const JOBS = SLOTS * 2;
  const log: number[] = [];
  let done!: () => void;
  const enough = new Promise<void>((r) => (done = r));
  const stops = Array.from({ length: JOBS }, (_, i) =>
    t.add(() => {
      if (i === 3) throw new Error("a failing chore");
      log.push(i);
      if (log.length === (JOBS - 1) * 3) done();
    }),
  );
  assert.equal(t.active(), true);
  await enough;
  for (const stop of stops) stop();
  stops[0](); // a second call changes nothing
  assert.equal(t.active(), false, "no timer once every job is removed");
  // Job i sits in phase i % SLOTS; the phases run in turn, so the jobs run in this order, round after round.
  const round = Array.from({ length: SLOTS }, (_, s) => [s, s + SLOTS]).flat().filter((i) => i !== 3);
  assert.deepEqual(log.slice(0, round.length * 3), [...round, ...round, ...round]);
});

test("shared timer - one per period in a process", () => {
  assert.equal(sharedTimer(2500), sharedTimer(2500));
  assert.notEqual(sharedTimer(2500), sharedTimer(1000));
  assert.equal(sharedTimer(2500).active(), false);
});
