// Child entry of a replay server in a process of its own (replay-process.ts): serves the files
// given as JSON in argv[2], prints one JSON line with where it listens and what it replays, and
// stops on SIGTERM or when its parent goes away (stdin closes).
import { startKrakenReplayServer, type KrakenReplayOptions } from "./kraken-replay-server.js";

const opts = JSON.parse(process.argv[2]) as KrakenReplayOptions;
const srv = await startKrakenReplayServer(opts);
process.stdout.write(`${JSON.stringify({ wsUrl: srv.wsUrl, restUrl: srv.restUrl, pairs: srv.pairs, lastTradeIds: srv.lastTradeIds, totals: srv.totals })}\n`);
let closing = false;
const stop = async () => {
  if (closing) return;
  closing = true;
  await srv.close().catch(() => {});
  process.exit(0);
};
process.once("SIGTERM", stop);
process.once("SIGINT", stop);
process.stdin.on("end", stop);
process.stdin.resume();
