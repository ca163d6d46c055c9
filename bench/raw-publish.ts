// Reference figure: how fast this machine's nats-server takes JetStream publishes from one Node
// client, with everything the pipeline's trades stage pays for and nothing else — file storage, the
// TRADES stream config (same dedup window), msgpack payloads of the same trades, a Nats-Msg-Id per
// message (the server checks it against the dedup window) and the Content-Type header. Publishes
// are pipelined exactly like supervisor/publisher.ts: fire without waiting, and once `window` acks
// are outstanding, wait for all of them — on the same kind of connection the actors publish on (a
// pooled connection with acks collected on one reply subscription, noAsyncTraces). A fresh server
// per repetition, so no run inherits a bigger store or dedup table from the one before. Should the
// Publisher change technique, change this loop with it: the ratio is meant to measure everything
// the pipeline adds around publishing.
import { jetstreamManager } from "@nats-io/jetstream";
import { PooledConnection, type Ack } from "../supervisor/publish-pool.js";
import { connect } from "@nats-io/transport-node";
import { encode, outputHeaders } from "../protocol/codec.js";
import type { Trade } from "../protocol/messages.js";
import { pairToToken } from "../protocol/pairs.js";
import { DEFAULT_STORAGE, streamConfig } from "../protocol/streams.js";
import { subjects } from "../protocol/subjects.js";
import { startNatsServer } from "./nats.js";
import { defer } from "./cleanup.js";
import { cpuMeter, type CpuSplit } from "./cpu.js";
import { median } from "./stats.js";

export type RawRun = { messages: number; seconds: number; msgsPerSec: number; duplicates: number; cpu: CpuSplit };
export type RawResult = { runs: RawRun[]; medianMsgsPerSec: number; window: number; storage: "file"; duplicateWindowMs: number };

/** Same window as the Publisher the actors use (its default maxInflight). */
export const WINDOW = 4096;

export async function rawRun(trades: Trade[], opts: { window?: number } = {}): Promise<RawRun> {
  const window = opts.window ?? WINDOW;
  const { server, stop: stopServer } = await startNatsServer("raw-publish nats-server");
  // As the publish pool connects (supervisor/publish-pool.ts): no reconnect, no async traces.
  const nc = await connect({ servers: server.url, reconnect: false, noAsyncTraces: true });
  const closeNc = defer("raw-publish connection", () => nc.close());
  try {
    const jsm = await jetstreamManager(nc);
    await jsm.streams.add(streamConfig("TRADES", DEFAULT_STORAGE));
    const conn = new PooledConnection(nc, 10_000);
    // Subjects and ids are built per message, as the trades stage does for each trade.
    let inflight: Promise<Ack>[] = [];
    let acked = 0;
    let duplicates = 0;
    const drain = async () => {
      const acks = await Promise.all(inflight);
      inflight = [];
      acked += acks.length;
      for (const a of acks) if (a.duplicate) duplicates++;
    };
    const t0 = performance.now();
    const meter = cpuMeter(server.pid);
    for (const t of trades) {
      const data = encode(t, "msgpack");
      inflight.push(conn.publish(subjects.trades(t.pair), data, outputHeaders("msgpack", `${pairToToken(t.pair)}:${t.trade_id}`)));
      if (inflight.length >= window) await drain();
    }
    await drain();
    const seconds = (performance.now() - t0) / 1000;
    const cpu = meter();
    const stored = (await jsm.streams.info("TRADES")).state.messages;
    if (stored !== trades.length) throw new Error(`raw publish: TRADES holds ${stored} messages, expected ${trades.length}`);
    return { messages: acked, seconds, msgsPerSec: acked / seconds, duplicates, cpu };
  } finally {
    await closeNc();
    await stopServer();
  }
}

/** Several runs summarised by their median (run.ts interleaves them with the pipeline runs, so both see the same background load). */
export function summariseRaw(runs: RawRun[], window = WINDOW): RawResult {
  return {
    runs, medianMsgsPerSec: median(runs.map((r) => r.msgsPerSec)), window, storage: "file",
    duplicateWindowMs: DEFAULT_STORAGE.streams.TRADES.duplicateWindowMs,
  };
}
