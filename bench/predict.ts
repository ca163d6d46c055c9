// Prediction figures through the production path: indicator records published to INDICATORS →
// the predictor actor, for which they are the main input of its joined inputs (champion: gradient-boosted trees from
// the registry, run by onnxruntime-node) → ml.predictions.5m.<pair>, in one process with a real
// Supervisor. Measured:
//  - latency, candle close → prediction published: one record at a time, from the publish of the
//    indicator record to the prediction's arrival on a subscription (p50, p99);
//  - throughput: a burst of records, predictions/s from the first publish to the last prediction.
// Reference in the same run: the latency of one bare JetStream hop (publish to a stream, delivery
// to an ordered consumer of it); the predictor path has two such hops (input → actor → output)
// plus the actor's work.
import { jetstream, jetstreamManager } from "@nats-io/jetstream";
import { connect } from "@nats-io/transport-node";
import pino from "pino";
import { BASE_FEATURES, buildDataset, fitGbt, indicatorsOf, readCandleFile } from "../actors/ml/mod.js";
import { treesToOnnx } from "../actors/ml/onnx.js";
import { predictorActor } from "../actors/predictor/actor.js";
import { ModelCache } from "../actors/predictor/model-cache.js";
import { Registry, artifactName } from "../actors/trainer/registry.js";
import { addRun, promote, type ModelVersion } from "../actors/trainer/registry-record.js";
import { decodeMsg, encode, publishHeaders } from "../protocol/codec.js";
import { pairToToken } from "../protocol/pairs.js";
import { bootstrap, DEFAULT_STORAGE } from "../protocol/streams.js";
import { subjects } from "../protocol/subjects.js";
import { loadConfig } from "../supervisor/config.js";
import { addPairs } from "../supervisor/desired-pairs.js";
import { Supervisor } from "../supervisor/runtime.js";
import { fileURLToPath } from "node:url";
import { defer } from "./cleanup.js";
import { startNatsServer } from "./nats.js";
import { median, until } from "./stats.js";

const SLICE = fileURLToPath(new URL("../data/candles/binance-BTC-USDT-1m-2023-03-16-slice.csv.gz", import.meta.url));
const PAIR = "BTC/USDT";

export type PredictBench = {
  model: string;
  latency: { n: number; p50Ms: number; p99Ms: number; maxMs: number };
  reference: { n: number; p50Ms: number; p99Ms: number };
  throughput: { predictions: number; seconds: number; perSec: number };
};

function pct(xs: number[], q: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(q * s.length))];
}

export async function predictBench(log: (s: string) => void, opts: { latencyN?: number } = {}): Promise<PredictBench> {
  const latencyN = opts.latencyN ?? 1000;
  const { server, stop } = await startNatsServer("predict nats-server");
  const nc = await connect({ servers: server.url });
  const closeNc = defer("predict connection", () => nc.close());
  try {
    const js = jetstream(nc);
    const jsm = await jetstreamManager(nc);
    await bootstrap(js, jsm, DEFAULT_STORAGE);
    const candles = readCandleFile(SLICE);
    const inputs = indicatorsOf(candles);
    const records = inputs.map((x, i) => ({
      v: 1, pair: PAIR, tf: "1m", window_start_ms: x.window_start_ms, window_end_ms: x.window_end_ms, open: candles[i].open, high: candles[i].high,
      low: candles[i].low, close: x.close, volume: x.volume, vwap: x.close, trades: 1, flat: false, values: x.values,
    }));

    // A champion the size of the trainer's default trees, registered as the trainer would.
    const ds = buildDataset(inputs.slice(0, 1500), { tfMs: 60_000, horizonMs: 300_000, features: [...BASE_FEATURES] });
    const gbt = fitGbt(ds.X, ds.y, { trees: 80, depth: 3, learningRate: 0.05, minLeaf: 50, subsample: 0.8, bins: 32, seed: 1 });
    const reg = await Registry.open(js);
    const bytes = treesToOnnx(gbt, ds.features);
    const artifact = artifactName(PAIR, "5m", 1);
    const digest = await reg.putArtifact(artifact, bytes);
    const m = { mae: 0, mae_persistence: 0, mae_ratio: 1, hit_rate: null, hit_pvalue: null, dm_pvalue: null, rmse: 0, rmse_persistence: 0, n: 0 };
    const v: ModelVersion = { version: 1, name: "gbt", params: gbt.params, features: ds.features, artifact, digest, metrics: m, run_id: "bench", code_version: "bench", data: { source: "bench", from_ms: null, to_ms: null, candles: 1500, rows: ds.stats.rows }, gate: { promote: true, reasons: [] } };
    await reg.update(PAIR, "5m", (r) => promote(addRun(r, { run_id: "bench", started_at: "", duration_ms: 0, trigger: "bench", status: "done", message: "", data: v.data, best: "gbt", version: 1, promoted: true, candidates: [], code_version: "bench" }, v), 1, "bench"));

    const config = loadConfig({ env: {} });
    const sup = new Supervisor({ id: "bench-predict", stages: [predictorActor({ config, run: new ModelCache((n, d) => reg.getArtifact(n, d)).run })], config, nc, js, log: pino({ level: "error" }) });
    await sup.start();
    const stopSup = defer("predict supervisor", () => sup.stop());
    await addPairs(js, [PAIR]);

    const arrivals = new Map<number, number>();
    const waiters = new Map<number, () => void>();
    const sub = nc.subscribe(subjects.predictions("5m", PAIR), {
      callback: (_e, msg) => {
        const t = performance.now();
        const p = decodeMsg(msg) as { ts_ms: number; model_version: number };
        arrivals.set(p.ts_ms, t);
        waiters.get(p.ts_ms)?.();
      },
    });
    // Resolved by the subscription itself (no polling delay in the measurement); bounded by a deadline.
    const arrival = (ts: number) => new Promise<number>((resolve, reject) => {
      if (arrivals.has(ts)) return resolve(arrivals.get(ts)!);
      const t = setTimeout(() => reject(new Error(`no prediction for ${ts} within 30 s`)), 30_000);
      waiters.set(ts, () => {
        clearTimeout(t);
        waiters.delete(ts);
        resolve(arrivals.get(ts)!);
      });
    });
    const h = publishHeaders("msgpack");
    const publish = (r: (typeof records)[number]) => js.publish(subjects.indicators("1m", PAIR), encode(r, "msgpack"), { msgID: `1m:${pairToToken(PAIR)}:${r.window_start_ms}`, headers: h });

    // Warm-up: features need 60 candles; the model loads at the first prediction that uses it.
    for (const r of records.slice(0, 100)) await publish(r);
    await until(() => arrivals.size >= 100, 120_000, "the warm-up predictions");
    const lat: number[] = [];
    const paced = records.slice(100, 100 + latencyN);
    for (const r of paced) {
      const t0 = performance.now();
      const got = arrival(r.window_end_ms);
      await publish(r);
      lat.push((await got) - t0);
    }
    log(`predict: latency p50 ${median(lat).toFixed(2)} ms over ${lat.length}`);

    const burst = records.slice(100 + latencyN);
    const t0 = performance.now();
    await Promise.all(burst.map(publish));
    const last = burst[burst.length - 1].window_end_ms;
    await until(() => arrivals.has(last), 120_000, "the burst's predictions");
    const seconds = (arrivals.get(last)! - t0) / 1000;
    sub.unsubscribe();
    await stopSup();

    // Reference: one bare JetStream hop for a message of the same size.
    await jsm.streams.add({ name: "BENCH_HOP", subjects: ["bench.hop"] });
    const c = await js.consumers.get("BENCH_HOP");
    const iter = await c.consume({ max_messages: 1 });
    const ref: number[] = [];
    const payload = encode(records[200], "msgpack");
    const it = iter[Symbol.asyncIterator]();
    for (let i = 0; i < Math.min(latencyN, 500); i++) {
      const t = performance.now();
      await js.publish("bench.hop", payload);
      await it.next();
      ref.push(performance.now() - t);
    }
    iter.stop();
    return {
      model: `gbt (80 trees, depth 3) via onnxruntime-node, ${ds.features.length} features`,
      latency: { n: lat.length, p50Ms: median(lat), p99Ms: pct(lat, 0.99), maxMs: Math.max(...lat) },
      reference: { n: ref.length, p50Ms: median(ref), p99Ms: pct(ref, 0.99) },
      throughput: { predictions: burst.length, seconds, perSec: burst.length / seconds },
    };
  } finally {
    await closeNc();
    await stop();
  }
}

export function formatPredict(p: PredictBench): string[] {
  return [
    `Prediction: INDICATORS → predictor (joined inputs; indicators the main one) (${p.model}) → PREDICTIONS, one process, file storage`,
    `   latency   candle record published → prediction received: p50 ${p.latency.p50Ms.toFixed(2)} ms · p99 ${p.latency.p99Ms.toFixed(2)} ms · max ${p.latency.maxMs.toFixed(1)} ms (${p.latency.n} candles, one at a time; goal p99 ≤ 10 ms)`,
    `   reference one bare JetStream hop (publish → ordered consumer): p50 ${p.reference.p50Ms.toFixed(2)} ms · p99 ${p.reference.p99Ms.toFixed(2)} ms; predictor p50 / hop p50 = ${(p.latency.p50Ms / p.reference.p50Ms).toFixed(1)}×`,
    `   rate      ${Math.round(p.throughput.perSec).toLocaleString("en-US")} predictions/s (${p.throughput.predictions} candles published at once, one pair, one process)`,
  ];
}
