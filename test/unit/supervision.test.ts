import { test } from "node:test";
import assert from "node:assert/strict";
import { holderDeadline, leaseExpired } from "../../supervisor/lease-math.js";
import { rendezvousOwner } from "../../supervisor/placement.js";
import { backoffDelay, recordFault } from "../../supervisor/supervision.js";
import { loadConfig } from "../../supervisor/config.js";

test("supervision - backoff doubles from the initial delay and is capped", () => {
  assert.deepEqual([1, 2, 3, 4, 10].map((n) => backoffDelay(n, 100, 1000)), [100, 200, 400, 800, 1000]);
});

test("supervision - more than maxRestarts crashes within the period marks the actor failed; old crashes are forgotten", () => {
  const p = { initialBackoffMs: 100, maxBackoffMs: 1000, maxRestarts: 3, periodMs: 10_000 };
  const faults: number[] = [];
  assert.deepEqual(recordFault(faults, 0, p), { restart: true, delayMs: 100, inWindow: 1 });
  assert.equal(recordFault(faults, 1000, p).delayMs, 200);
  assert.equal(recordFault(faults, 2000, p).restart, true);
  assert.equal(recordFault(faults, 3000, p).restart, false, "4th crash in 10 s");
  const later: number[] = [0, 1000, 2000];
  assert.deepEqual(recordFault(later, 50_000, p), { restart: true, delayMs: 100, inWindow: 1 }, "a quiet spell resets the budget and the backoff");
});

test("placement - rendezvous owner is stable and moves about 1/n of the keys when a member joins", () => {
  const keys = Array.from({ length: 600 }, (_, i) => `candles.P${i}-USD`);
  const three = ["w1", "w2", "w3"];
  const before = keys.map((k) => rendezvousOwner(k, three));
  assert.deepEqual(keys.map((k) => rendezvousOwner(k, [...three].reverse())), before, "order of members does not matter");
  const counts = new Map<string, number>();
  for (const o of before) counts.set(o!, (counts.get(o!) ?? 0) + 1);
  for (const c of counts.values()) assert.ok(c > 140 && c < 260, `balanced: ${[...counts.values()]}`);
  const after = keys.map((k) => rendezvousOwner(k, [...three, "w4"]));
  const moved = after.filter((o, i) => o !== before[i]);
  assert.ok(moved.every((o) => o === "w4"), "keys only move to the new member");
  assert.ok(moved.length > 90 && moved.length < 210, `about a quarter moved: ${moved.length}`);
  assert.equal(rendezvousOwner("x", []), null);
});

test("leases - expiry is judged from when this observer saw the revision; the holder stops before that", () => {
  assert.equal(leaseExpired({ revision: 3, seenAt: 1000 }, 5999, 5000), false);
  assert.equal(leaseExpired({ revision: 3, seenAt: 1000 }, 6000, 5000), true);
  const d = holderDeadline(1000, 5000, 1500);
  assert.ok(d < 6000 && d > 1000 + 1500, `holder deadline ${d}`);
});

test("config - a bad value names the setting and where it came from", () => {
  assert.throws(() => loadConfig({ env: { TICKFLOW_GRACE_MS: "soon" } }), /environment variable TICKFLOW_GRACE_MS: expected a whole number, got "soon"/);
  assert.throws(() => loadConfig({ env: { TICKFLOW_METRICS_PER_ACTOR: "sometimes" } }), /environment variable TICKFLOW_METRICS_PER_ACTOR: expected true or false, got "sometimes"/);
  assert.equal(loadConfig({ env: { TICKFLOW_METRICS_PER_ACTOR: "false" } }).metrics.perActor, false);
  assert.equal(loadConfig({ env: {} }).metrics.perActor, true);
  assert.throws(() => loadConfig({ env: { TICKFLOW_CODEC: "xml" } }), /config codec: /);
  assert.throws(() => loadConfig({ env: { TICKFLOW_TIMEFRAMES: "1m,7x" } }), /timeframes.1: "7x" is not a timeframe/);
  assert.throws(() => loadConfig({ env: { TICKFLOW_LEASE_TTL_MS: "1000", TICKFLOW_LEASE_RENEW_MS: "900" } }), /lease.renewMs \(900\) must be at most half/);
  const c = loadConfig({ env: { TICKFLOW_TIMEFRAMES: "1m, 15m", NATS_URL: "nats://x:1" } });
  assert.deepEqual(c.timeframes, ["1m", "15m"]);
  assert.equal(c.natsUrl, "nats://x:1");
});
