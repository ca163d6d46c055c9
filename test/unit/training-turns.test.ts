import { test } from "node:test";
import assert from "node:assert/strict";
import { TrainingTurns } from "../../actors/trainer/training-turns.js";

test("training turns - one at a time, in order of asking; a waiter that stops leaves the line; a turn is given back once", async () => {
  const turns = new TrainingTurns(1);
  const order: string[] = [];
  let inside = 0;
  let most = 0;
  const job = async (name: string, signal?: AbortSignal) => {
    const release = await turns.take(signal);
    if (!release) return order.push(`${name} stopped`);
    inside++;
    most = Math.max(most, inside);
    order.push(name);
    await new Promise((r) => setTimeout(r, 5));
    inside--;
    release();
    release(); // twice: no effect
  };
  const stop = new AbortController();
  const jobs = [job("a"), job("b"), job("c", stop.signal), job("d")];
  stop.abort();
  await Promise.all(jobs);
  assert.equal(most, 1);
  assert.deepEqual(order, ["a", "c stopped", "b", "d"]);
  assert.equal(turns.peakHolding, 1);
  assert.equal(turns.peakWaiting, 3);
  // Given back once each: a new job takes a turn at once.
  assert.notEqual(await Promise.race([turns.take(), new Promise((r) => setTimeout(() => r(null), 100))]), null);
  assert.throws(() => new TrainingTurns(0), /size must be an integer ≥ 1/);
});
