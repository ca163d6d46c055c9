// The embedded nats-server of `tickflow up` after an `up` that did not stop cleanly (kill -9, a
// crash): its nats-server lived on, holding the data directory's JetStream store. The next `up`
// started a second server on the same store (two servers writing one store) and left the first
// running for good. Now the next start stops the one left behind, then serves the same store.
import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync, writeFileSync, existsSync } from "node:fs";
import { hostname, tmpdir } from "node:os";
import { join } from "node:path";
import { jetstream, jetstreamManager } from "@nats-io/jetstream";
import { connect } from "@nats-io/transport-node";
import { Kvm } from "@nats-io/kv";
import { NatsServer } from "../../supervisor/nats-server.js";
import { decode } from "../../protocol/codec.js";
import { check } from "../harness/nats.js";
import { tickflow } from "../harness/procs.js";
import { BTC_FILE, readTrades } from "../harness/data.js";
import { dealOverPairs } from "../harness/many-pairs.js";

const alive = (pid: number) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

test("embedded nats - a server left running on a store is stopped before another starts on it; the store's data is served by the new one", async () => {
  const store = mkdtempSync(join(tmpdir(), "tf-embedded-"));
  try {
    const first = await NatsServer.start({ storeDir: store });
    const firstPid = first.pid!;
    const nc = await connect({ servers: first.url });
    const jsm = await jetstreamManager(nc);
    await jsm.streams.add({ name: "KEEP", subjects: ["keep.>"] });
    await jetstream(nc).publish("keep.one", "kept");
    await nc.close();
    assert.equal(Number(readFileSync(join(store, "tickflow-nats.pid"), "utf8")), firstPid);
    // Its owner is gone without stopping it (as after kill -9 of `up`): the next start on the store.
    const second = await NatsServer.start({ storeDir: store });
    try {
      assert.equal(second.leftoverStopped, firstPid);
      assert.equal(alive(firstPid), false, "the server left behind is stopped");
      assert.equal(Number(readFileSync(join(store, "tickflow-nats.pid"), "utf8")), second.pid);
      const nc2 = await connect({ servers: second.url });
      const m = await (await jetstreamManager(nc2)).streams.getMessage("KEEP", { last_by_subj: "keep.one" });
      assert.equal(new TextDecoder().decode(m!.data), "kept");
      await nc2.close();
    } finally {
      await second.stop();
    }
    assert.equal(existsSync(join(store, "tickflow-nats.pid")), false, "a clean stop removes the pid file");
    // A pid file naming a live process that is not a nats-server (a reused pid) is not acted on.
    writeFileSync(join(store, "tickflow-nats.pid"), `${process.pid}\n`);
    const third = await NatsServer.start({ storeDir: store });
    assert.equal(third.leftoverStopped, null);
    await third.stop();
    await first.stop(); // its temp files; the process is long gone
  } finally {
    rmSync(store, { recursive: true, force: true });
  }
});

test("embedded nats - `up` after an `up` killed with SIGKILL says it stopped the server left running, and runs", async () => {
  const dataDir = mkdtempSync(join(tmpdir(), "tf-up-kill-"));
  try {
    const first = tickflow(["up", "--replay", BTC_FILE, "--speed", "1", "--data-dir", dataDir]);
    const url = await check(() => (existsSync(join(dataDir, "nats.url")) ? readFileSync(join(dataDir, "nats.url"), "utf8").trim() : null), 30_000, "the first up's embedded nats-server");
    const leftPid = await check(() => (existsSync(join(dataDir, "nats", "tickflow-nats.pid")) ? Number(readFileSync(join(dataDir, "nats", "tickflow-nats.pid"), "utf8")) : null), 10_000, "its pid file");
    await first.kill("SIGKILL");
    assert.ok(alive(leftPid), `the first up's nats-server (${url}) outlives it`);
    const p = tickflow(["up", "--replay", BTC_FILE, "--speed", "max", "--once", "--data-dir", dataDir]);
    const r = await p.exited;
    assert.equal(r.code, 0, p.stderr());
    assert.match(p.stderr(), new RegExp(`stopped the nats-server \\(pid ${leftPid}\\) that an earlier up left running on ${join(dataDir, "nats")}`));
    assert.equal(alive(leftPid), false);
    // And nothing of either is left: the second up stopped its own server on exit.
    assert.equal(existsSync(join(dataDir, "nats", "tickflow-nats.pid")), false);
  } finally {
    rmSync(dataDir, { recursive: true, force: true });
  }
});

test("embedded nats - Ctrl-C during `up --once` stops the run: actors checkpointed, its nats-server stopped, exit 130", async () => {
  const dataDir = mkdtempSync(join(tmpdir(), "tf-up-int-"));
  let serverPid = 0;
  try {
    // A hundred pairs (600 actors to stop) at real-time speed, so the run is mid-way when
    // interrupted: the recording takes its 23 minutes.
    const file = join(dataDir, "trades.jsonl");
    writeFileSync(file, dealOverPairs(readTrades(BTC_FILE), 100).map((r) => JSON.stringify(r)).join("\n") + "\n");
    // Checkpoints every 10 minutes, so none is written during the run: every candles actor that
    // applied a trade has its checkpoint to write on the way out. (With the default 5 s, whether any
    // was still unsaved depended on when the signal fell: right after a burst of trades in one
    // millisecond, all of them could have been saved a moment before.)
    const p = tickflow(["up", "--replay", file, "--speed", "1", "--once", "--data-dir", dataDir], { TICKFLOW_CHECKPOINT_MS: "600000" }, { group: true });
    const pidFile = join(dataDir, "nats", "tickflow-nats.pid");
    serverPid = await check(() => (existsSync(pidFile) ? Number(readFileSync(pidFile, "utf8")) : null), 30_000, "the embedded nats-server's pid file");
    // `up` writes nats.url once its server answers, which is after the server wrote its pid file.
    const urlFile = join(dataDir, "nats.url");
    const url = await check(() => (existsSync(urlFile) ? readFileSync(urlFile, "utf8").trim() || null : null), 30_000, "up's nats.url");
    const nc = await connect({ servers: url });
    try {
      const jsm = await jetstreamManager(nc);
      await check(async () => (await jsm.streams.info("TRADES").catch(() => null))?.state.messages! >= 300, 60_000, "trades flowing into TRADES (watermarks too)");
    } finally {
      await nc.close();
    }
    // As Ctrl-C in a terminal: to the whole process group (up, its nats-server, its replay server).
    const signalledAt = Date.now();
    process.kill(-p.child.pid!, "SIGINT");
    // Unanswered, the run would go on for the recording's 23 minutes.
    const late = setTimeout(() => p.kill("SIGKILL"), 60_000);
    const r = await p.exited;
    clearTimeout(late);
    assert.equal(r.code, 130, `exited ${r.code ?? r.signal} (SIGKILL: not stopped within 60 s of Ctrl-C)\n${p.stderr()}`);
    const m = /tickflow up: interrupted before every input was processed \((\d+) of 19904 trades\); the actors stopped with their checkpoints saved/.exec(p.stderr());
    assert.ok(m && Number(m[1]) > 0 && Number(m[1]) < 19904, p.stderr());
    assert.match(p.stderr(), /actors stopped; leases released/);
    assert.equal(alive(serverPid), false, "its embedded nats-server stopped");
    assert.equal(existsSync(pidFile), false, "up stopped its server itself (one the terminal's signal took down leaves its pid file)");
    // The server outlived the signal long enough for the actors to checkpoint through it.
    const server = await NatsServer.start({ storeDir: join(dataDir, "nats") });
    try {
      const nc2 = await connect({ servers: server.url });
      const kv = await new Kvm(nc2).open("tf_state");
      // The candles actors apply trades as they come (about 14 a second), and each that applied one
      // wrote its checkpoint on the way out (none was written before: see the checkpoint interval).
      let atStop = 0;
      const before: string[] = [];
      for await (const k of await kv.keys("candles.>")) {
        const e = await kv.get(k);
        if (e?.operation !== "PUT") continue;
        if ((decode(e.value) as { at: number }).at >= signalledAt) atStop++;
        else before.push(k);
      }
      assert.ok(atStop > 0, "candles checkpoints written after the signal");
      assert.deepEqual(before, [], "no candles checkpoint from before the signal (the interval is 10 minutes)");
      // …and for the worker to say goodbye: its member entry is gone, so no other worker waits out its TTL.
      const member = await (await new Kvm(nc2).open("tf_members")).get(`up-${hostname()}`);
      assert.ok(!member || member.operation !== "PUT", "the member entry of the interrupted up is deleted");
      await nc2.close();
    } finally {
      await server.stop();
    }
  } finally {
    // A run that had to be killed left its server running.
    if (serverPid && alive(serverPid)) process.kill(serverPid, "SIGKILL");
    rmSync(dataDir, { recursive: true, force: true });
  }
});
