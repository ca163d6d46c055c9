// The replay server of `tickflow up --replay` in a process of its own: it serves the recorded
// trades over the real Kraken protocol to the production client, says what it replays, stops on
// close(), and a file it cannot read is an error before anything starts.
import { test } from "node:test";
import assert from "node:assert/strict";
import { KrakenTradeFeed } from "../../actors/trades/kraken-ws-client.js";
import { startReplayProcess } from "../../actors/trades/replay-process.js";
import { ETH_FILE, readTrades } from "../harness/data.js";
import { check } from "../harness/nats.js";

test("replay process - serves a recorded file to the Kraken client, in order; close() ends the process", async () => {
  const want = readTrades(ETH_FILE);
  const replay = await startReplayProcess({ files: [ETH_FILE], speed: "max", startWhen: "all-subscribed" });
  assert.deepEqual(replay.pairs, ["ETH/USDT"]);
  assert.equal(replay.totals["ETH/USDT"], want.length);
  assert.equal(replay.lastTradeIds["ETH/USDT"], want[want.length - 1].trade_id);
  const feed = new KrakenTradeFeed({ wsUrl: replay.wsUrl, restUrl: replay.restUrl });
  const got: number[] = [];
  const sub = feed.subscribe("ETH/USDT", { lastSeen: () => null, onTrades: async (ts) => void got.push(...ts.map((t) => t.trade_id)), onBadFrame: (reason) => assert.fail(`bad frame: ${reason}`) });
  try {
    await check(() => got.length >= want.length, 60_000, "every recorded trade delivered");
    assert.deepEqual(got, want.map((t) => t.trade_id));
  } finally {
    await sub.unsubscribe();
    await feed.close();
    await replay.close();
  }
  assert.match(await replay.exited, /code 0|signal/);
});

test("replay process - a file that does not exist fails the start with a clear error", async () => {
  await assert.rejects(startReplayProcess({ files: ["/nonexistent/trades.jsonl.gz"], speed: "max" }), /replay server exited .* before it was listening/);
});
