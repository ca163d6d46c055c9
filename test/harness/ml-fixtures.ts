// Predictions, outcomes and sentiment signals as the predictor and sentiment stages will publish
// them (DESIGN.md §2 fields, dedup ids, tf_latest keys), built from real candles, for tests of
// their readers (gateway, sink) before those stages exist in this branch.
import type { JetStreamClient } from "@nats-io/jetstream";
import { encode, publishHeaders } from "../../protocol/codec.js";
import { pairToToken } from "../../protocol/pairs.js";
import { subjects } from "../../protocol/subjects.js";
import { latestKeys, LatestWriter } from "../../supervisor/latest.js";
import type { Supervisor } from "../../supervisor/runtime.js";
import { check } from "./nats.js";
import { quietLog } from "./pipeline.js";

type C = { pair: string; window_start_ms: number; window_end_ms: number; close: number };

export function predictionsFrom(candles: C[], horizonMin = 5) {
  const preds = [];
  const outcomes = [];
  const byStart = new Map(candles.map((c) => [c.window_start_ms, c]));
  for (const [i, c] of candles.entries()) {
    const predicted_return = ((i % 7) - 3) * 1e-4;
    const p = {
      v: 1, pair: c.pair, horizon_s: horizonMin * 60, ts_ms: c.window_end_ms, target_ts_ms: c.window_end_ms + horizonMin * 60_000,
      base_price: c.close, predicted_return, predicted_price: c.close * (1 + predicted_return), model: "ridge", model_version: "3",
    };
    preds.push(p);
    // The actual price at the target: the close of the candle that ends there.
    const target = byStart.get(p.target_ts_ms - 60_000);
    if (target) {
      const actual_return = target.close / c.close - 1;
      outcomes.push({
        ...p, actual_price: target.close, actual_return,
        abs_error: Math.abs(p.predicted_price - target.close), baseline_abs_error: Math.abs(c.close - target.close),
      });
    }
  }
  return { preds, outcomes };
}

export async function publishMl(js: JetStreamClient, preds: any[], outcomes: any[], h = "5m"): Promise<void> {
  const w = new LatestWriter(js, "msgpack", quietLog);
  for (const p of preds) {
    const s = subjects.predictions(h, p.pair);
    await js.publish(s, encode(p, "msgpack"), { msgID: `${h}:${pairToToken(p.pair)}:${p.ts_ms}`, headers: publishHeaders("msgpack") });
    w.offer({ key: latestKeys.predictions(h, p.pair), ts: p.ts_ms }, s, p);
  }
  for (const o of outcomes) {
    const s = subjects.outcomes(h, o.pair);
    // Not the prediction's id: both live in the PREDICTIONS stream, and one id would dedup the outcome away.
    await js.publish(s, encode(o, "msgpack"), { msgID: `outcome:${h}:${pairToToken(o.pair)}:${o.ts_ms}`, headers: publishHeaders("msgpack") });
    w.offer({ key: latestKeys.outcomes(h, o.pair), ts: o.ts_ms }, s, o);
  }
  await w.flush();
}

export function sentimentSignal(pair: string, ts_ms: number, score: number) {
  return { v: 1, pair, coin: pair.split("/")[0], ts_ms, score, items: 4, half_life_s: 3600 };
}

export async function publishSentiment(js: JetStreamClient, sigs: ReturnType<typeof sentimentSignal>[]): Promise<void> {
  const w = new LatestWriter(js, "msgpack", quietLog);
  for (const s of sigs) {
    const subj = subjects.sentiment(s.pair);
    await js.publish(subj, encode(s, "msgpack"), { msgID: `${pairToToken(s.pair)}:${s.ts_ms}`, headers: publishHeaders("msgpack") });
    w.offer({ key: latestKeys.sentiment(s.pair), ts: s.ts_ms }, subj, s);
  }
  await w.flush();
}

/**
 * Waits until the candles actor of `pair` has applied every trade up to `eosSeq` and the
 * indicators actor every candle, with both checkpointed: the pipeline output is complete.
 */
export async function pipelineDone(js: JetStreamClient, sup: Supervisor, pair: string, eosSeq: number): Promise<void> {
  await check(() => (sup.cell("candles", pair)?.status().lastSeq ?? 0) >= eosSeq, 60_000, `candles of ${pair} to apply every trade`);
  await sup.cell("candles", pair)!.checkpointIfRunning();
  const jsm = await js.jetstreamManager();
  const last = (await jsm.streams.info("CANDLES")).state.last_seq;
  await check(() => (sup.cell("indicators", pair)?.status().lastSeq ?? 0) >= last, 60_000, `indicators of ${pair} to apply every candle`);
  await sup.cell("indicators", pair)!.checkpointIfRunning();
}
