// Trainer actor, one per pair: follows the pair's indicator records (md.indicators.<tf>.<pair>)
// and retrains every `ml.retrainEveryCandles` new candles — a schedule in event time, counted
// from the data, never from our clock. A run is awaited before the next candle is read, so runs
// of one pair never overlap; a training, its data read included, takes its turn in the process
// (training-turns.ts), and the CPU part runs in a worker thread.
// Its resume point is its output: the newest candle a recorded run has read (`data.input_to_ms`
// and `input_to_seq` in tf_models), so it needs no checkpoint of its own.
import { DeliverPolicy, type Consumer, type JsMsg } from "@nats-io/jetstream";
import type { MsgHdrs } from "@nats-io/transport-node";
import { decodeMsg } from "../../protocol/codec.js";
import { IndicatorsCheck } from "../../protocol/messages.js";
import { pairToToken } from "../../protocol/pairs.js";
import { subjects } from "../../protocol/subjects.js";
import { timeframeMs } from "../../protocol/timeframes.js";
import { headerValue } from "../../protocol/wire-headers.js";
import type { SourceActorDef, SourceContext } from "../../supervisor/actor.js";
import type { HubMsg } from "../../supervisor/input-hub.js";
import { dropConsumer } from "../../supervisor/nats.js";
import type { ComputedRun, ComputeRequest } from "./compute-run.js";
import { Registry } from "./registry.js";
import { readIndicators, readSentiment } from "./stream-data.js";
import { runTraining } from "./train-run.js";
import { computeInWorker } from "./train-worker.js";
import { TrainingTurns, trainingTurns } from "./training-turns.js";

export const TRAINER_STAGE = "trainer";

/**
 * Which candle an indicators record is, from its dedup id (`<tf>:<pair>:<window_start_ms>`, the
 * indicators stage's), not its payload; null when the id is not of that form. Here the trainer only
 * counts candles, and the training window is read and checked record by record (stream-data.ts):
 * decoding the 25 values of every candle of every pair only to count it was 0.5 s of a 21 s
 * 300-pair `up --once`.
 */
export function windowEndOf(m: { headers?: MsgHdrs }, idPrefix: string, tfMs: number): number | null {
  const id = headerValue(m, "Nats-Msg-Id");
  if (!id.startsWith(idPrefix)) return null;
  const rest = id.slice(idPrefix.length);
  const start = /^\d{1,16}$/.test(rest) ? Number(rest) : NaN;
  return Number.isSafeInteger(start) ? start + tfMs : null;
}

/** How long one training's stream reads may take before the run fails (and the actor restarts). */
const READ_DEADLINE_MS = 120_000;

export type TrainerOptions = {
  compute?: (req: ComputeRequest, signal?: AbortSignal) => Promise<ComputedRun>;
  /** Whose turn it is to train, read included (default: the process's, one at a time; see training-turns.ts). */
  turns?: TrainingTurns;
};

export function trainerActor(opts: TrainerOptions = {}): SourceActorDef {
  return {
    kind: "source",
    stage: TRAINER_STAGE,
    async run(ctx: SourceContext): Promise<void> {
      const { config, js, signal } = ctx;
      // Keyed by pair (the default key source), so the pair is always set.
      const pair = ctx.pair ?? ctx.key;
      const ml = config.ml;
      const tfMs = timeframeMs(ml.timeframe);
      const reg = await Registry.open(js);
      let trainedThrough = -1;
      // The stream sequence of that newest candle read, when the run recorded it (runs from
      // before it was recorded have only the time).
      let throughSeq: number | null = null;
      for (const h of ml.horizons) {
        const { record } = await reg.get(pair, h);
        for (const r of record.runs) {
          const t = r.data.input_to_ms ?? r.data.to_ms ?? -1;
          if (t > trainedThrough) [trainedThrough, throughSeq] = [t, r.data.input_to_seq ?? null];
          else if (t === trainedThrough) throughSeq ??= r.data.input_to_seq ?? null;
        }
      }
      const subject = subjects.indicators(ml.timeframe, pair);
      // Through the process's reader of INDICATORS (input-hub.ts), from the stream's start or, after
      // training, from just after the last candle read: no consumer per pair, which at a thousand
      // pairs was a thousand consumers on INDICATORS after every restart of a trained trainer.
      // A run recorded before sequences were kept gives only a time: a consumer of its own starts
      // at the storage time of that candle (a record is stored after its event time, so this never
      // skips one; older ones are skipped below by their own event time).
      let iter: AsyncIterable<JsMsg | HubMsg> & { stop(): void };
      /** The consumer of the old path, deleted when the trainer stops (see dropConsumer). */
      let own: Consumer | null = null;
      let caughtUp: (m: JsMsg | HubMsg) => boolean;
      if (trainedThrough > 0 && throughSeq === null) {
        const c = await js.consumers.get("INDICATORS", { filter_subjects: subject, deliver_policy: DeliverPolicy.StartTime, opt_start_time: new Date(trainedThrough).toISOString() });
        own = c;
        iter = await c.consume({ max_messages: 512 });
        caughtUp = (m) => (m as JsMsg).info.pending === 0;
      } else {
        const sub = await ctx.read("INDICATORS", subject, trainedThrough > 0 ? throughSeq! + 1 : 1);
        iter = sub;
        caughtUp = () => sub.atStreamEnd();
      }
      signal.addEventListener("abort", () => {
        iter.stop();
        if (own) void dropConsumer(own);
      }, { once: true });
      let fresh = 0;
      let newest = trainedThrough;
      let newestSeq = throughSeq ?? 0;
      let runs = 0;
      let last: string | null = null;
      let read = 0;
      // Its status shows the INDICATORS sequence of the newest candle read, and how many it read.
      const report = (training: boolean) => ctx.progress({
        lastInputTs: newest > 0 ? newest : undefined, lastSeq: newestSeq > 0 ? newestSeq : undefined, processed: read,
        detail: { candlesSinceRun: fresh, every: ml.retrainEveryCandles, runs, lastRun: last, training },
      });
      const idPrefix = `${ml.timeframe}:${pairToToken(pair)}:`;
      for await (const m of iter) {
        if (signal.aborted) break;
        let end = windowEndOf(m, idPrefix, tfMs);
        if (end === null) {
          let d: unknown;
          try {
            d = decodeMsg(m);
          } catch {
            continue; // the indicators stage dead-letters what it cannot read; nothing of ours to add
          }
          if (!IndicatorsCheck.check(d)) continue;
          end = d.window_end_ms;
        }
        if (end <= newest) continue;
        newest = end;
        newestSeq = m.seq;
        fresh++;
        read++;
        // Due: N new candles, once caught up with the stream (a backlog is trained on once, at its end),
        // or a whole training window of new candles even while catching up.
        const due = fresh >= ml.retrainEveryCandles && (caughtUp(m) || fresh >= ml.maxTrainCandles);
        if (!due) {
          if (fresh % 500 === 0 || caughtUp(m)) report(false);
          continue;
        }
        report(true);
        // The window is read only once it is this trainer's turn (training-turns.ts).
        const release = await (opts.turns ?? trainingTurns).take(signal);
        if (!release) break; // stopping
        try {
          const range = { fromMs: newest - ml.maxTrainCandles * tfMs, toMs: newest, deadlineMs: READ_DEADLINE_MS };
          const { inputs } = await readIndicators(js, pair, ml.timeframe, range);
          const sentiment = await readSentiment(js, pair, range);
          for (const h of ml.horizons) {
            if (signal.aborted) break;
            const r = await runTraining(reg, {
              pair, horizon: h, settings: ml, trigger: `schedule: ${fresh} new candles through ${new Date(newest).toISOString()}`,
              data: { inputs, sentiment, source: `stream:INDICATORS ${new Date(range.fromMs).toISOString()}..${new Date(newest).toISOString()}`, inputToMs: newest, inputToSeq: newestSeq },
              compute: (req) => (opts.compute ?? computeInWorker)(req, signal),
              progress: (msg) => ctx.log.debug({ pair, horizon: h }, msg),
            });
            runs++;
            last = `${r.run_id} ${r.status}: ${r.message}`;
            ctx.log.info({ pair, horizon: h, run: r.run_id, promoted: r.promoted }, `training run: ${r.message}`);
          }
        } finally {
          release();
        }
        fresh = 0;
        report(false);
      }
    },
  };
}
