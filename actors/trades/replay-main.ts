// Child entry of a replay server in a process of its own (replay-process.ts): serves the files
// given as JSON in argv[2], prints one JSON line with where it listens and what it replays, and
// stops when its parent closes its stdin or goes away.
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
// It stops when its parent says so (closes our stdin) or goes away (stdin closes too). Signals sent
// to the whole process group (Ctrl-C on `npm start`) are for the parent, which stops the replay
// last, after its actors; stopping first here would look like a replay that died mid-way.
process.on("SIGINT", () => {});
process.on("SIGTERM", () => {});
process.stdin.on("end", stop);
process.stdin.on("error", stop);
process.stdin.resume();
