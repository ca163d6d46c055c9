// Scale-out under faults, with real OS processes: several `tickflow run` workers on one
// nats-server, a Kraken-protocol replay, and kill -9 / SIGTERM / a joining worker / a nats-server
// restart / a forced split brain in the middle of the stream. Every scenario ends by comparing the
// candle streams with an independent computation from the recorded trades: nothing lost, nothing
// twice. Each scenario uses its own pair names (the recorded trades relabelled), so they share one
// server without sharing streams.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { jetstream, type JetStreamClient } from "@nats-io/jetstream";
import { lastPublishedTrade } from "../../actors/trades/actor.js";
import { startKrakenReplayServer, type KrakenReplayServer } from "../../actors/trades/kraken-replay-server.js";
import { pairToToken } from "../../protocol/pairs.js";
import { openBuckets } from "../../protocol/streams.js";
import { rendezvousOwner } from "../../supervisor/placement.js";
import { clusterStatus } from "../../supervisor/status.js";
import { BTC_FILE, ETH_FILE, close, oracleCandles, readTrades, type RawTrade } from "../harness/data.js";
import { check, NatsServer, readAll } from "../harness/nats.js";
import { addPair, publishEos, publishTrades } from "../harness/pipeline.js";
import { FAST_LEASES, tickflow, tickflowOk, type Proc } from "../harness/procs.js";

const ALL = "trades,candles,indicators";
const TTL_MS = Number(FAST_LEASES.TICKFLOW_LEASE_TTL_MS);
const SOURCES = { BTC: readTrades(BTC_FILE), ETH: readTrades(ETH_FILE) };

let server: NatsServer;
let nc: NatsConnection;
let js: JetStreamClient;
const procs: Proc[] = [];

before(async () => {
  server = await NatsServer.start();
  await tickflowOk(["bootstrap", "--nats", server.url]);
  nc = await connect({ servers: server.url, maxReconnectAttempts: -1, reconnectTimeWait: 100 });
  js = jetstream(nc);
});
after(async () => {
  await Promise.all(procs.map((p) => p.kill("SIGKILL")));
  await nc?.close();
  await server?.stop();
});

function relabel(raw: RawTrade[], symbol: string): RawTrade[] {
  return raw.map((r) => ({ ...r, symbol }));
}

function worker(id: string, replay: KrakenReplayServer | null, stages = ALL, env: Record<string, string> = {}): Proc {
  const args = ["run", "--stages", stages, "--id", id, "--nats", server.url];
  if (replay) args.push("--kraken-url", replay.restUrl);
  const p = tickflow(args, { ...FAST_LEASES, ...env });
  procs.push(p);
  return p;
}

async function leaseOwner(key: string): Promise<string | null> {
  const kv = await openBuckets(js);
  const e = await kv.leases.get(key);
  return e && e.operation === "PUT" ? (e.json<{ owner: string | null }>().owner ?? null) : null;
}

async function candleCount(pair: string): Promise<number> {
  const jsm = await js.jetstreamManager();
  const info = await jsm.streams.info("CANDLES", { subjects_filter: `md.candles.1m.${pairToToken(pair)}` });
  return Object.values(info.state.subjects ?? {}).reduce((a, b) => a + b, 0);
}

/** The replay is bounded: once TRADES holds its last trade, end the stream as `up --once` does. */
async function endOfInput(replay: KrakenReplayServer, data: Record<string, RawTrade[]>): Promise<void> {
  await replay.done;
  for (const [pair, raw] of Object.entries(data)) {
    await check(async () => (await lastPublishedTrade(js, pair)).cursor?.trade_id === raw[raw.length - 1].trade_id, 60_000, `${pair}: last trade in TRADES`);
    await publishEos(js, pair, raw[raw.length - 1]);
  }
}

async function assertCandlesExact(data: Record<string, RawTrade[]>): Promise<void> {
  for (const [pair, raw] of Object.entries(data)) {
    for (const [tf, ms] of [["1m", 60_000], ["5m", 300_000]] as const) {
      const want = oracleCandles(raw, ms);
      const subject = `md.candles.${tf}.${pairToToken(pair)}`;
      await check(async () => (await readAll(js, "CANDLES", subject)).length >= want.length, 60_000, `${subject}: ${want.length} candles`);
      await new Promise((r) => setTimeout(r, 300)); // anything published twice would land now
      const got = await readAll(js, "CANDLES", subject);
      assert.equal(got.length, want.length, `${subject}: exactly ${want.length} candles (none twice)`);
      assert.equal(new Set(got.map((g) => g.msgId)).size, got.length, `${subject}: unique ids`);
      got.forEach(({ data: c }, i) => {
        const w = want[i];
        assert.deepEqual([c.window_start_ms, c.open, c.high, c.low, c.close, c.trades, c.flat], [w.window_start_ms, w.open, w.high, w.low, w.close, w.trades, w.flat], `${subject} #${i}`);
        assert.ok(close(c.volume, w.volume) && close(c.vwap, w.vwap), `${subject} #${i} volume/vwap`);
      });
    }
    const trades = (await readAll(js, "TRADES", `md.trades.${pairToToken(pair)}`)).filter((m) => m.data.kind !== "watermark");
    assert.deepEqual(trades.map((t) => t.data.trade_id), raw.map((r) => r.trade_id), `${pair}: every trade once, in order`);
  }
}

/** Every actor of these pairs is owned by exactly one of the live workers, and running. */
async function assertOwnedByLive(pairs: string[], live: string[]): Promise<void> {
  const st = await check(async () => {
    const s = await clusterStatus(nc, ["trades", "candles", "indicators"], { waitMs: 1500 });
    const mine = s.actors.filter((a) => pairs.includes(a.key));
    return mine.length === pairs.length * 3 && mine.every((a) => a.state === "running" && live.includes(a.owner ?? "")) ? mine : null;
  }, 30_000, `every actor of ${pairs.join(",")} running on a live worker (${live.join(",")})`);
  assert.equal(new Set(st.map((a) => `${a.stage}.${a.pair}`)).size, st.length, "one entry per (stage, pair)");
}

async function startScenario(labels: Record<keyof typeof SOURCES, string>, speed: number) {
  const data: Record<string, RawTrade[]> = {};
  for (const [src, label] of Object.entries(labels) as [keyof typeof SOURCES, string][]) data[label] = relabel(SOURCES[src], label);
  // The clock starts once every pair is subscribed: three workers starting at once on two cores take a while.
  const replay = await startKrakenReplayServer({ trades: Object.values(data).flat(), speed, startWhen: "all-subscribed", startGraceMs: 60_000 });
  return { data, replay };
}

/**
 * The pairs are added once every worker of the scenario is a member, so the replay (which starts
 * when every pair has a subscriber) does not begin while the first worker to arrive still holds
 * every pair. A pair whose trades actor moved before publishing anything would resume from the
 * subscription snapshot, not from the replay's first trade: the start-up is not what these
 * scenarios test (the fourth-worker scenario moves actors mid-stream on purpose).
 */
async function addPairsOnceMembers(data: Record<string, RawTrade[]>, ids: string[]): Promise<void> {
  const kv = await openBuckets(js);
  await check(async () => {
    for (const id of ids) {
      const e = await kv.members.get(id);
      if (!e || e.operation !== "PUT") return false;
    }
    return true;
  }, 90_000, `workers ${ids.join(", ")} registered`);
  for (const pair of Object.keys(data)) await addPair(js, pair);
}

/** Every scenario ends the same way: end the replay, then candles exact and every actor on a live worker. */
async function finishAndCheck(replay: KrakenReplayServer, data: Record<string, RawTrade[]>, live: string[]): Promise<void> {
  await endOfInput(replay, data);
  await assertCandlesExact(data);
  await assertOwnedByLive(Object.keys(data), live);
}

/** The owner of `key` once `pair` is mid-stream (two 1m candles out). */
async function ownerMidStream(key: string, pair: string): Promise<string> {
  const owner = await check(() => leaseOwner(key), 90_000, `an owner for ${key}`); // three workers starting at once on two busy cores
  await check(async () => (await candleCount(pair)) >= 2, 60_000, `two ${pair} candles (mid-stream)`);
  return owner;
}

/** Waits until a member other than `previous` holds `key`. */
async function nextOwner(key: string, previous: string, ms: number): Promise<string> {
  return check(async () => {
    const o = await leaseOwner(key);
    return o && o !== previous ? o : null;
  }, ms, `a new owner of ${key} after ${previous}`);
}

async function stopAll(ps: Proc[]) {
  await Promise.all(ps.map((p) => p.kill("SIGTERM")));
}

test("scale-out - kill -9 of the worker owning a pair's candles mid-stream: another owner within the lease TTL plus a margin; candles exact", async () => {
  const { data, replay } = await startScenario({ BTC: "KA/USDT", ETH: "KB/USDT" }, 40);
  const ws = ["k1", "k2", "k3"].map((id) => ({ id, p: worker(id, replay) }));
  await addPairsOnceMembers(data, ws.map((w) => w.id));
  try {
    const key = "candles.KA-USDT";
    const victim = await ownerMidStream(key, "KA/USDT");
    const killedAt = Date.now();
    await ws.find((w) => w.id === victim)!.p.kill("SIGKILL");
    const next = await nextOwner(key, victim, TTL_MS + 15_000);
    const failoverMs = Date.now() - killedAt;
    assert.notEqual(next, victim);
    const live = ws.map((w) => w.id).filter((id) => id !== victim);
    await finishAndCheck(replay, data, live);
    process.stderr.write(`# failover of ${key}: ${failoverMs} ms (lease TTL ${TTL_MS} ms)\n`);
  } finally {
    await stopAll(ws.map((w) => w.p));
    await replay.close();
  }
});

test("scale-out - SIGTERM hands a worker's actors over (checkpoint, release) and loses nothing", async () => {
  const { data, replay } = await startScenario({ BTC: "TA/USDT", ETH: "TB/USDT" }, 40);
  const ws = ["t1", "t2", "t3"].map((id) => ({ id, p: worker(id, replay) }));
  await addPairsOnceMembers(data, ws.map((w) => w.id));
  try {
    const key = "candles.TA-USDT";
    const victim = await ownerMidStream(key, "TA/USDT");
    const r = await ws.find((w) => w.id === victim)!.p.kill("SIGTERM");
    assert.equal(r.code, 0, "graceful exit");
    // A released lease is deleted, so the next owner does not wait for a TTL.
    await nextOwner(key, victim, 30_000);
    await finishAndCheck(replay, data, ws.map((w) => w.id).filter((id) => id !== victim));
  } finally {
    await stopAll(ws.map((w) => w.p));
    await replay.close();
  }
});

test("scale-out - a fourth worker joining mid-stream takes its share without a gap", async () => {
  // Pick labels for which the newcomer wins at least one candles actor, so the test must see a move.
  let n = 0;
  let labels: { BTC: string; ETH: string };
  const three = ["j1", "j2", "j3"];
  do {
    labels = { BTC: `JA${n}/USDT`, ETH: `JB${n}/USDT` };
    n++;
  } while (![labels.BTC, labels.ETH].some((p) => rendezvousOwner(`candles.${pairToToken(p)}`, [...three, "j4"]) === "j4"));
  const moved = [labels.BTC, labels.ETH].find((p) => rendezvousOwner(`candles.${pairToToken(p)}`, [...three, "j4"]) === "j4")!;
  const { data, replay } = await startScenario(labels, 40);
  const ws = three.map((id) => ({ id, p: worker(id, replay) }));
  await addPairsOnceMembers(data, ws.map((w) => w.id));
  try {
    const key = `candles.${pairToToken(moved)}`;
    const before = await ownerMidStream(key, moved);
    ws.push({ id: "j4", p: worker("j4", replay) });
    await check(async () => (await leaseOwner(key)) === "j4", 30_000, `${key} moves from ${before} to j4`);
    await finishAndCheck(replay, data, ws.map((w) => w.id));
  } finally {
    await stopAll(ws.map((w) => w.p));
    await replay.close();
  }
});

test("scale-out - a nats-server restart (same store) mid-stream: workers reconnect and continue with nothing lost", async () => {
  const { data, replay } = await startScenario({ BTC: "RA/USDT", ETH: "RB/USDT" }, 40);
  const ws = ["r1", "r2"].map((id) => ({ id, p: worker(id, replay) }));
  await addPairsOnceMembers(data, ws.map((w) => w.id));
  try {
    await check(async () => (await candleCount("RA/USDT")) >= 2, 60_000, "two RA/USDT candles");
    await server.restart("SIGTERM");
    await check(async () => (await candleCount("RA/USDT")) >= 5, 60_000, "candles flow again after the restart");
    await finishAndCheck(replay, data, ws.map((w) => w.id));
  } finally {
    await stopAll(ws.map((w) => w.p));
    await replay.close();
  }
});

test("scale-out - two processes forced to both own a pair's candles (split brain) publish no duplicate candle", async () => {
  const pair = "SB/USDT";
  const raw = relabel(SOURCES.BTC, pair);
  await addPair(js, pair);
  const env = { TICKFLOW_UNSAFE_SPLIT_BRAIN: "1" };
  const ws = [worker("s1", null, "candles", env), worker("s2", null, "candles", env)];
  try {
    // Both run the actor: each reports it running in its own status.
    await check(async () => {
      const s = await clusterStatus(nc, ["candles"], { waitMs: 1000 });
      return s.actors.filter((a) => a.pair === pair).length >= 1 && (await nc.request(`tf.status.s1`).then((m) => m.json<any>().actors.some((a: any) => a.pair === pair && a.state === "running"))) &&
        (await nc.request(`tf.status.s2`).then((m) => m.json<any>().actors.some((a: any) => a.pair === pair && a.state === "running")));
    }, 30_000, "both split-brain workers running the candles actor");
    await publishTrades(js, raw);
    await publishEos(js, pair, raw[raw.length - 1]);
    await assertCandlesExactOnly({ [pair]: raw });
  } finally {
    await stopAll(ws);
  }
});

/** Candles only (the split-brain scenario publishes trades itself). */
async function assertCandlesExactOnly(data: Record<string, RawTrade[]>): Promise<void> {
  for (const [pair, raw] of Object.entries(data)) {
    const want = oracleCandles(raw, 60_000);
    const subject = `md.candles.1m.${pairToToken(pair)}`;
    await check(async () => (await readAll(js, "CANDLES", subject)).length >= want.length, 60_000, `${subject}: ${want.length} candles`);
    await new Promise((r) => setTimeout(r, 1000));
    const got = await readAll(js, "CANDLES", subject);
    assert.equal(got.length, want.length, `${subject}: no candle twice`);
    got.forEach(({ data: c }, i) => assert.equal(c.window_start_ms, want[i].window_start_ms));
  }
}
