// The README's path, as a user runs it: `tickflow up --replay … --speed max --once` against a
// nats-server, then `tickflow tail … --all` and `tickflow status --json`, each a real process.
import { after, before, test } from "node:test";
import { createServer, type AddressInfo } from "node:net";
import assert from "node:assert/strict";
import { EMA, OBV, RSI, SMA } from "technicalindicators";
import { BTC_FILE, ETH_FILE, close, oracleCandles, readTrades } from "../harness/data.js";
import { check, NatsServer } from "../harness/nats.js";
import { jetstreamManager } from "@nats-io/jetstream";
import { connect } from "@nats-io/transport-node";
import { FAST_LEASES, jsonLines, tickflow, tickflowOk } from "../harness/procs.js";

let server: NatsServer;
let nats: string[];
before(async () => {
  server = await NatsServer.start();
  nats = ["--nats", server.url];
});
after(async () => {
  await server.stop();
});

test("cli - up --replay --speed max --once, then tail --all gives candles equal to an independent computation from the files", async () => {
  // Several files after one --replay, as the README writes it (`--replay FILE…`).
  await tickflowOk(["up", ...nats, "--replay", BTC_FILE, ETH_FILE, "--speed", "max", "--once"], FAST_LEASES);
  for (const [file, token] of [[BTC_FILE, "BTC-USDT"], [ETH_FILE, "ETH-USDT"]] as const) {
    const raw = readTrades(file);
    for (const [tf, ms] of [["1m", 60_000], ["5m", 300_000]] as const) {
      const got = jsonLines(await tickflowOk(["tail", `md.candles.${tf}.${token}`, "--all", ...nats]));
      const want = oracleCandles(raw, ms);
      assert.equal(got.length, want.length, `${token} ${tf} count`);
      got.forEach((c, i) => {
        const w = want[i];
        assert.deepEqual([c.window_start_ms, c.open, c.high, c.low, c.close, c.trades, c.flat], [w.window_start_ms, w.open, w.high, w.low, w.close, w.trades, w.flat], `${token} ${tf} #${i}`);
        assert.ok(close(c.volume, w.volume) && close(c.vwap, w.vwap), `${token} ${tf} #${i} volume/vwap`);
      });
    }
  }
});


test("cli - a large output read through a pipe arrives whole: tail --all of every trade of a pair (megabytes), the CLI exiting only once stdout has taken it; a reader that goes away stops it quietly", async () => {
  // Runs after the up test above, whose trades are in TRADES. process.exit() right after the last
  // write dropped what the pipe had not taken yet: `status --json | jq` at 1,000 pairs got 192 KB
  // of 2.5 MB.
  const subject = "md.trades.BTC-USDT";
  const nc = await connect({ servers: server.url });
  const held = (await (await jetstreamManager(nc)).streams.info("TRADES", { subjects_filter: subject })).state.subjects?.[subject] ?? 0;
  await nc.close();
  assert.ok(held > 10_000, `${held} messages on ${subject}`);
  // A reader that takes nothing for the first 1.5 s, as a busy `jq` would: the CLI has written
  // everything by then, and the pipe holds 64 KB of it.
  const p = tickflow(["tail", subject, "--all", ...nats]);
  p.child.stdout!.pause();
  setTimeout(() => p.child.stdout!.resume(), 1500);
  const r = await p.exited;
  assert.equal(r.code, 0, p.stderr());
  assert.ok(p.stdout().length > 1_000_000, `${p.stdout().length} bytes`);
  assert.equal(jsonLines(p.stdout()).length, held);
  // A reader that goes away after the first lines (`| head`): the CLI stops quietly.
  const q = tickflow(["tail", subject, "--all", ...nats]);
  q.child.stdout!.once("data", () => q.child.stdout!.destroy());
  const rq = await q.exited;
  assert.equal(rq.code, 0, q.stderr());
  assert.doesNotMatch(q.stderr(), /EPIPE|Error/);
});
test("cli - up --once with --pairs follows only those of the recorded pairs, and ends when they have", async () => {
  const own = await NatsServer.start();
  try {
    await tickflowOk(["up", "--nats", own.url, "--replay", BTC_FILE, ETH_FILE, "--speed", "max", "--once", "--pairs", "ETH/USDT"], FAST_LEASES);
    const nc = await connect({ servers: own.url });
    try {
      const info = await (await jetstreamManager(nc)).streams.info("TRADES", { subjects_filter: ">" });
      assert.deepEqual(Object.keys(info.state.subjects ?? {}), ["md.trades.ETH-USDT"], "only the followed pair was replayed into TRADES");
      // Every recorded ETH trade plus the end-of-stream watermark.
      assert.equal(info.state.messages, readTrades(ETH_FILE).length + 1);
    } finally {
      await nc.close();
    }
  } finally {
    await own.stop();
  }
});

test("cli - indicators published for the replayed candles equal technicalindicators' batch results over the same candles", async () => {
  const candles = jsonLines(await tickflowOk(["tail", "md.candles.1m.BTC-USDT", "--all", ...nats]));
  const ind = jsonLines(await tickflowOk(["tail", "md.indicators.1m.BTC-USDT", "--all", ...nats]));
  assert.equal(ind.length, candles.length);
  const closes = candles.map((c) => c.close);
  const series: Record<string, number[]> = {
    sma_7: SMA.calculate({ period: 7, values: closes }),
    ema_7: EMA.calculate({ period: 7, values: closes }),
    rsi_7: RSI.calculate({ period: 7, values: closes }),
    obv: OBV.calculate({ close: closes, volume: candles.map((c) => c.volume) }),
  };
  for (const [name, batch] of Object.entries(series)) {
    const mine = ind.map((m) => m.values[name]);
    const nulls = mine.length - batch.length;
    assert.ok(batch.length > 0, `${name} has values over ${closes.length} candles`);
    assert.deepEqual(mine.slice(0, nulls), Array(nulls).fill(null), `${name} warm-up is null`);
    mine.slice(nulls).forEach((v, i) => assert.ok(close(v, batch[i]), `${name}[${i}] ${v} vs ${batch[i]}`));
  }
  assert.equal(ind[0].values.adx_14, null, "12 one-minute candles are too few for ADX(14)");
});

const CORE_STAGES = ["candles", "indicators", "trades"];

test("cli - status --json lists one running actor per stage per pair while up runs, and stopped ones after", async () => {
  // --port 0: a long-running up serves its gateway, and a fixed port (3000 by default) may be taken on the machine.
  const up = tickflow(["up", ...nats, "--replay", ETH_FILE, "--speed", "1", "--port", "0"], FAST_LEASES);
  try {
    const s = await check(async () => {
      const st = JSON.parse(await tickflowOk(["status", "--json", ...nats]));
      const eth = st.actors.filter((a: any) => a.pair === "ETH/USDT");
      // Every stage of the build runs for the pair (market data, sentiment, trainer, predictor, …), one actor each.
      return eth.length === CORE_STAGES.length + 3 && eth.every((a: any) => a.state === "running") ? st : null;
    }, 30_000, "every ETH/USDT actor running");
    const eth = s.actors.filter((a: any) => a.pair === "ETH/USDT");
    assert.deepEqual(eth.map((a: any) => a.stage).sort(), [...CORE_STAGES, "predictor", "sentiment", "trainer"].sort());
    assert.equal(new Set(eth.map((a: any) => a.owner)).size, 1);
    assert.equal(s.members.length, 1);
    const text = await tickflowOk(["status", ...nats]);
    assert.match(text, /candles\s+ETH\/USDT\s+running/);
    // With thousands of actors: a line per stage, one stage only, or only what needs a look.
    assert.match(text, /^candles\s+\d+ actors?: (\d+ \w+, )*\d+ running/m);
    const candles = JSON.parse(await tickflowOk(["status", "--json", "--stages", "candles", ...nats]));
    assert.ok(candles.actors.length > 0 && candles.actors.every((a: any) => a.stage === "candles"), JSON.stringify(candles.actors.map((a: any) => a.stage)));
    const problems = JSON.parse(await tickflowOk(["status", "--json", "--problems", ...nats]));
    assert.ok(problems.actors.every((a: any) => a.state !== "running" || a.restarts > 0 || a.deadLetters > 0));
    assert.ok(!problems.actors.some((a: any) => a.pair === "ETH/USDT"), "ETH/USDT's actors run without restarts or dead letters");
    const bad = tickflow(["status", "--stages", "candels", ...nats]);
    assert.equal((await bad.exited).code, 2);
    assert.match(bad.stderr(), /unknown stage "candels"/);
  } finally {
    const r = await up.kill("SIGTERM");
    assert.equal(r.code, 0, `graceful exit on SIGTERM:\n${up.stderr()}`);
  }
  const after = JSON.parse(await tickflowOk(["status", "--json", ...nats]));
  assert.ok(after.actors.filter((a: any) => a.pair === "ETH/USDT").every((a: any) => a.state === "stopped"));
});

test("cli - bad arguments and config get a clear message and exit code 2 / 1", async () => {
  const help = await tickflowOk(["--help"]);
  for (const cmd of ["up", "run", "replay serve", "tail", "status", "bootstrap", "pairs add", "actors restart"]) assert.ok(help.includes(cmd), cmd);
  const bad = tickflow(["up", "--speed", "fast", ...nats]);
  assert.equal((await bad.exited).code, 2);
  assert.match(bad.stderr(), /--speed must be a positive number or "max" \(got "fast"\)/);
  const once = tickflow(["up", "--once", ...nats]);
  assert.equal((await once.exited).code, 2);
  assert.match(once.stderr(), /--once needs --replay/);
  const cfg = tickflow(["status", ...nats], { TICKFLOW_GRACE_MS: "-5" });
  assert.equal((await cfg.exited).code, 1);
  assert.match(cfg.stderr(), /config candles.graceMs: /);
  const pair = tickflow(["pairs", "add", "BTCUSD", ...nats]);
  assert.equal((await pair.exited).code, 1);
  assert.match(pair.stderr(), /"BTCUSD" is not a pair/);
  // A stray positional argument is an error, never silently ignored.
  const stray = tickflow(["up", ...nats, "--pairs", "BTC/USD", "ETH/USD", "--once"]);
  assert.equal((await stray.exited).code, 2);
  assert.match(stray.stderr(), /up does not take positional arguments: unexpected "ETH\/USD"/);
  const extra = tickflow(["status", "now", ...nats]);
  assert.equal((await extra.exited).code, 2);
  assert.match(extra.stderr(), /status does not take positional arguments: unexpected "now"/);
});

test("cli - a command waiting on a server that never answers stops at its deadline and says what it waited for", async () => {
  // Accepts TCP and says nothing: a NATS client waits for the INFO line that never comes.
  const silent = createServer(() => {});
  await new Promise<void>((r) => silent.listen(0, "127.0.0.1", r));
  const port = (silent.address() as AddressInfo).port;
  try {
    const st = tickflow(["status", "--nats", `nats://127.0.0.1:${port}`, "--timeout", "2"]);
    assert.equal((await st.exited).code, 1);
    assert.match(st.stderr(), new RegExp(`timed out after 2 s waiting for a connection to NATS at nats://127.0.0.1:${port}`));
  } finally {
    silent.close();
  }
});

test("cli - pairs add/ls/rm edit the desired pairs", async () => {
  await tickflowOk(["pairs", "add", "sol/usd", "XRP-USD", ...nats]);
  assert.match(await tickflowOk(["pairs", "ls", ...nats]), /SOL\/USD\n(.|\n)*XRP\/USD|XRP\/USD\n(.|\n)*SOL\/USD/);
  await tickflowOk(["pairs", "rm", "SOL/USD", ...nats]);
  assert.doesNotMatch(await tickflowOk(["pairs", "ls", ...nats]), /SOL\/USD/);
  // Many pairs: the output names them as a count, and ls reads the bucket in one pass (a removed
  // pair's newest entry is its delete marker, so it is not listed).
  const many = Array.from({ length: 40 }, (_, i) => `L${String(i).padStart(3, "0")}/USD`);
  assert.equal(await tickflowOk(["pairs", "add", many.join(","), ...nats]), "added: 40 pairs (L000/USD … L039/USD)\n");
  assert.equal(await tickflowOk(["pairs", "rm", "L005/USD,L007/USD", ...nats]), "removed: L005/USD, L007/USD\n");
  const listed = (await tickflowOk(["pairs", "ls", ...nats])).split("\n").filter((l) => l.startsWith("L0"));
  assert.deepEqual(listed, many.filter((p) => p !== "L005/USD" && p !== "L007/USD"));
});
