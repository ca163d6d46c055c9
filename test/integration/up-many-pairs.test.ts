// The scale issue's own check, without its stopwatch: `tickflow up --replay FILE --speed max --once`
// with every stage, on a 300-pair file made from recorded trades (each pair a share of the real
// trades, its own symbol and its own consecutive trade ids), against a nats-server of the test's
// own. Then every pair's 1m candles equal an independent group-by of its trades, every candle has
// its indicators, nothing was dead-lettered, no lease was lost, and every lease was released.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { gzipSync } from "node:zlib";
import { Kvm } from "@nats-io/kv";
import { ETH_FILE, readTrades } from "../harness/data.js";
import { assertOracleCandles, byPair, dealOverPairs } from "../harness/many-pairs.js";
import { cleanup, setup, type Env } from "../harness/nats.js";
import { tickflow } from "../harness/procs.js";

const PAIRS = 300;

let env: Env;
let dir: string;
before(async () => {
  env = await setup();
  dir = mkdtempSync(join(tmpdir(), "tf-up-many-"));
});
after(async () => {
  await cleanup(env);
  rmSync(dir, { recursive: true, force: true });
});

test("up - 300 pairs of recorded trades through every stage with --once: candles equal an independent computation, every candle has its indicators, nothing dead-lettered, no lease lost, every lease released", async () => {
  const records = dealOverPairs(readTrades(ETH_FILE), PAIRS);
  const file = join(dir, "many.jsonl.gz");
  writeFileSync(file, gzipSync(records.map((r) => JSON.stringify(r)).join("\n") + "\n"));

  const p = tickflow(["up", "--nats", env.server.url, "--replay", file, "--speed", "max", "--once"]);
  const timer = setTimeout(() => p.child.kill("SIGKILL"), 300_000);
  const r = await p.exited;
  clearTimeout(timer);
  assert.equal(r.code, 0, `up exited ${r.code ?? r.signal}:\n${p.stderr().slice(-4000)}`);
  assert.match(p.stderr(), new RegExp(`inputs processed for ${PAIRS} pair\\(s\\)`));
  assert.doesNotMatch(p.stderr(), /lease lost/i, "no actor lost its lease");

  const pairs = byPair(records);
  assert.equal(pairs.size, PAIRS);
  await assertOracleCandles(env.js, pairs);
  const streams = async (name: string) => (await env.jsm.streams.info(name)).state.messages;
  assert.equal(await streams("DLQ"), 0, "nothing dead-lettered");
  assert.equal(await streams("INDICATORS"), await streams("CANDLES"), "an indicators record for every candle");
  const leases = await new Kvm(env.js).open("tf_leases");
  const held: string[] = [];
  for await (const k of await leases.keys()) held.push(k);
  assert.deepEqual(held, [], "every lease released when up stopped");
});
