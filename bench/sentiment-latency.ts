// Per-pair sentiment signal latency: a 1m candle is stored on md.candles.1m.<pair> → the sentiment
// actor (joined inputs: candles, its main input, + news.scored.<COIN> through its journal) → md.sentiment.<pair>
// is stored and delivered. Measured from just before the candle's publish to the signal's arrival
// on a plain subscription, for every pair of a round at once, round after round. The reference,
// in the same run on the same server: a JetStream publish on one subject straight to a
// subscriber (the floor any stage's hop sits on).
import { connect } from "@nats-io/transport-node";
import { jetstream, jetstreamManager } from "@nats-io/jetstream";
import pino from "pino";
import { sentimentActor } from "../actors/sentiment/actor.js";
import { encode, publishHeaders } from "../protocol/codec.js";
import { pairToToken } from "../protocol/pairs.js";
import { bootstrap } from "../protocol/streams.js";
import { subjects } from "../protocol/subjects.js";
import { addPairs } from "../supervisor/desired-pairs.js";
import { loadConfig } from "../supervisor/config.js";
import { Supervisor } from "../supervisor/runtime.js";
import { startNatsServer } from "./nats.js";
import { until } from "./stats.js";

export type LatencyResult = { pairs: number; candles: number; p50Ms: number; p95Ms: number; maxMs: number; refP50Ms: number; refP95Ms: number };

const PAIRS = ["BTC/USDT", "ETH/USDT", "SOL/USDT", "XRP/USDT", "ADA/USDT", "DOGE/USDT", "DOT/USDT", "LINK/USDT", "LTC/USDT", "AVAX/USDT"];

function pct(xs: number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))];
}

export async function signalLatency(rounds = 30, log: (s: string) => void = () => {}): Promise<LatencyResult> {
  const srv = await startNatsServer("sentiment latency nats-server");
  const nc = await connect({ servers: srv.server.url });
  const js = jetstream(nc);
  const config = loadConfig({ env: {} });
  await bootstrap(js, await jetstreamManager(nc), config.storage);
  await addPairs(js, PAIRS);
  const sup = new Supervisor({ id: "bench-sentiment", stages: [sentimentActor(config)], config, nc, js, log: pino({ level: "silent" }) });
  await sup.start();
  const got = new Map<string, number>();
  const sub = nc.subscribe("md.sentiment.>", { callback: (_e, m) => { got.set(m.subject, performance.now()); } });
  const refGot: number[] = [];
  const refSub = nc.subscribe("md.candles.1m.REF-BENCH", { callback: () => { refGot.push(performance.now()); } });
  const h = publishHeaders("msgpack");
  const lat: number[] = [];
  const ref: number[] = [];
  try {
    await until(() => sup.status().filter((s) => s.state === "running").length === PAIRS.length, 30_000, "sentiment actors running");
    const t0 = Date.UTC(2024, 7, 8, 0, 0);
    // One scored item per coin before the first close: a pair whose coin has no news publishes no
    // signal (pair-sentiment.ts), and each close below must give one.
    for (const pair of PAIRS) {
      const coin = pair.split("/")[0];
      const item = { v: 1, id: `bench-${coin}`, source: "bench", ts_ms: t0 - 30_000, title: `${coin} rallies`, coin, signal: "bullish", confidence: 0.8, reason: "bench", scorer: "lexicon" };
      await js.publish(subjects.newsScored(coin), encode(item, "msgpack"), { msgID: `bench-${coin}:${coin}`, headers: h });
    }
    await until(() => sup.status().every((s) => Number(s.detail.items) >= 1), 30_000, "every actor applied its coin's item");
    for (let r = 0; r < rounds; r++) {
      got.clear();
      const sent = new Map<string, number>();
      await Promise.all(PAIRS.map(async (pair) => {
        const c = { v: 1, pair, tf: "1m", window_start_ms: t0 + r * 60_000, window_end_ms: t0 + (r + 1) * 60_000, open: 1, high: 1, low: 1, close: 1, volume: 0, vwap: 1, trades: 0, flat: true };
        sent.set(subjects.sentiment(pair), performance.now());
        await js.publish(subjects.candles("1m", pair), encode(c, "msgpack"), { msgID: `1m:${pairToToken(pair)}:${c.window_start_ms}`, headers: h });
      }));
      await until(() => got.size === PAIRS.length, 30_000, `round ${r} signals`);
      for (const [s, t] of sent) lat.push((got.get(s) as number) - t);
      // Reference: one JetStream publish delivered to a subscriber.
      const before = refGot.length;
      const t = performance.now();
      await js.publish("md.candles.1m.REF-BENCH", encode({ r }, "msgpack"), { msgID: `ref:${r}`, headers: h });
      await until(() => refGot.length > before, 10_000, "reference delivery");
      ref.push(refGot[refGot.length - 1] - t);
    }
  } finally {
    sub.unsubscribe();
    refSub.unsubscribe();
    await sup.stop();
    await nc.close();
    await srv.stop();
  }
  const res = { pairs: PAIRS.length, candles: lat.length, p50Ms: pct(lat, 50), p95Ms: pct(lat, 95), maxMs: Math.max(...lat), refP50Ms: pct(ref, 50), refP95Ms: pct(ref, 95) };
  log(`sentiment latency: p50 ${res.p50Ms.toFixed(1)} ms, p95 ${res.p95Ms.toFixed(1)} ms over ${res.candles} candles; reference publish→delivery p50 ${res.refP50Ms.toFixed(1)} ms`);
  return res;
}
