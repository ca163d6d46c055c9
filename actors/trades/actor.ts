// Trades actor shell (a source): Kraken trades for one pair → md.trades.<pair>, plus in-band
// watermarks so windows of a quiet pair still close. Its resume point is the last message of its
// own output subject, so a new owner (after a crash or a move) backfills from exactly where the
// stream ends, and dedup ids `<pair>:<trade_id>` drop anything published twice.
import type { JetStreamClient } from "@nats-io/jetstream";
import type { Logger } from "pino";
import { decodeMsg } from "../../protocol/codec.js";
import { SCHEMA_VERSION, type Trade, type Watermark } from "../../protocol/messages.js";
import { pairToToken } from "../../protocol/pairs.js";
import { subjects } from "../../protocol/subjects.js";
import { timeframeMs } from "../../protocol/timeframes.js";
import type { SourceActorDef, SourceContext } from "../../supervisor/actor.js";
import { LastMsgLoader, nullIfNotFound } from "../../supervisor/state-prefetch.js";
import type { Config } from "../../supervisor/config.js";
import { KrakenTradeFeed } from "./kraken-ws-client.js";

export const TRADES_STAGE = "trades";

type Cursor = { trade_id: number; ts_ms: number };

/**
 * Where the stream of this pair ends: its last trade (directly or as recorded in a trailing
 * watermark). With `loader`, the read is made together with the other pairs starting now.
 */
export async function lastPublishedTrade(js: JetStreamClient, pair: string, loader?: LastMsgLoader): Promise<{ cursor: Cursor | null; eos: boolean }> {
  const subject = subjects.trades(pair);
  const m = loader ? await loader.get(subject) : await (await js.jetstreamManager(false)).streams.getMessage("TRADES", { last_by_subj: subject }).catch(nullIfNotFound);
  if (!m) return { cursor: null, eos: false };
  const d = decodeMsg(m) as Partial<Trade & Watermark>;
  if (d.kind === "watermark") {
    const c = d.last_trade_id != null && d.last_trade_ts != null ? { trade_id: d.last_trade_id, ts_ms: d.last_trade_ts } : null;
    return { cursor: c, eos: !!d.eos };
  }
  return { cursor: { trade_id: d.trade_id!, ts_ms: d.ts_ms! }, eos: false };
}

/** One WebSocket per process, shared by every trades actor in it; closed when the last one stops. */
class SharedFeed {
  private feed: KrakenTradeFeed | null = null;
  private users = 0;
  acquire(config: Config, log: Logger): KrakenTradeFeed {
    this.users++;
    this.feed ??= new KrakenTradeFeed({
      wsUrl: config.kraken.wsUrl,
      restUrl: config.kraken.restUrl,
      heartbeatTimeoutMs: config.trades.heartbeatTimeoutMs,
      // Event time follows the feed's own progress (event-time.ts), never our clock alone.
      // Sent only when they close a candle window (event-time.ts, rule 4): the only use of a watermark.
      watermark: { idleMs: config.trades.idleWatermarkMs, closes: { periodsMs: config.timeframes.map(timeframeMs), graceMs: config.candles.graceMs } },
      onEvent: (e) => {
        const quiet = e.type === "backfill" || e.type === "subscribed" || e.type === "open" || e.type === "status" || e.type === "connecting" || e.type === "backpressure";
        if (quiet) log.debug({ feed: e }, `kraken feed: ${e.type}`);
        else log.warn({ feed: { ...e, error: "error" in e ? String(e.error) : undefined } }, `kraken feed: ${e.type}`);
      },
    });
    return this.feed;
  }
  async release(): Promise<void> {
    if (--this.users > 0 || !this.feed) return;
    const f = this.feed;
    this.feed = null;
    await f.close();
  }
}

export type TradesActorOptions = {
  /** Bounded input (a replay with --once): the last trade id of each pair, after which an end-of-stream watermark is published. */
  endOfInput?: Record<string, number>;
};

export function tradesActor(opts: TradesActorOptions = {}): SourceActorDef {
  const shared = new SharedFeed();
  // The resume points of the pairs that start together (a reconcile pass starts hundreds), read together.
  let tails: LastMsgLoader | null = null;
  return {
    kind: "source",
    stage: TRADES_STAGE,
    async run(ctx: SourceContext) {
      const { config } = ctx;
      const pair = ctx.pair!; // keyed by pair (the default)
      const token = pairToToken(pair);
      const subject = subjects.trades(pair);
      tails ??= new LastMsgLoader(ctx.js, "TRADES", subjects.tradesAll, ctx.log);
      const resume = await lastPublishedTrade(ctx.js, pair, tails);
      let last: Cursor | null = resume.cursor;
      let eosSent = resume.eos;
      let processed = 0;
      let lastWatermark = last?.ts_ms ?? 0;
      const finalId = opts.endOfInput?.[pair];

      const watermark = (ts: number, eos: boolean) => {
        const w: Watermark = {
          v: SCHEMA_VERSION, kind: "watermark", pair, ts_ms: ts, eos,
          last_trade_id: last?.trade_id ?? null, last_trade_ts: last?.ts_ms ?? null,
        };
        return { subject, msgId: eos ? `${token}:eos` : `${token}:wm:${ts}`, data: w, headers: { "Tf-Kind": "watermark" } };
      };

      if (eosSent) ctx.progress({ detail: { lastTradeId: last?.trade_id ?? null, eos: true } });
      const feed = shared.acquire(config, ctx.log);
      const sub = feed.subscribe(pair, {
        lastSeen: () => last,
        onTrades: async (trades) => {
          for (const t of trades) {
            if (last && t.trade_id <= last.trade_id) continue;
            ctx.publishAsync({ subject, msgId: `${token}:${t.trade_id}`, data: t });
            last = { trade_id: t.trade_id, ts_ms: t.ts_ms };
            processed++;
          }
          if (last) ctx.progress({ lastInputTs: last.ts_ms, processed, detail: { lastTradeId: last.trade_id } });
          if (finalId !== undefined && !eosSent && last && last.trade_id >= finalId) {
            eosSent = true;
            ctx.publishAsync(watermark(last.ts_ms, true));
          }
          // Backpressure: the feed waits for this promise before delivering more for this pair.
          // A failed publish must not be retried by the feed from our cursor (it already moved
          // past the lost trades): crash, and the restart resumes from what the stream holds.
          try {
            await ctx.flush();
          } catch (err) {
            ctx.crash(err as Error);
            throw err;
          }
          // Stored: a bounded run (up --once) in this process sees the end without asking the stream.
          if (eosSent && last) ctx.progress({ detail: { lastTradeId: last.trade_id, eos: true } });
        },
        onBadFrame: (reason, raw) => ctx.deadLetter(reason, raw, "kraken.ws"),
        // A quiet pair still needs its windows closed. The feed decides when and how far (from its
        // own progress, queued behind this pair's trades), so a lagging feed never makes trades late.
        onWatermark: async (ts) => {
          if (eosSent || !last || ts <= lastWatermark || ts <= last.ts_ms) return;
          lastWatermark = ts;
          ctx.publishAsync(watermark(ts, false));
          try {
            await ctx.flush();
          } catch (err) {
            ctx.crash(err as Error);
            throw err;
          }
        },
      });

      try {
        await new Promise<void>((resolve) => {
          if (ctx.signal.aborted) resolve();
          else ctx.signal.addEventListener("abort", () => resolve(), { once: true });
        });
      } finally {
        await sub.unsubscribe().catch(() => {});
        await shared.release();
      }
    },
  };
}
