// Helpers for the prediction tests: a CommandContext for calling a plugin's commands directly
// (against a real nats-server), stdout capture, and a predictable synthetic candle series.
import { connect } from "@nats-io/transport-node";
import { jetstream, type JetStreamClient } from "@nats-io/jetstream";
import { encode, publishHeaders } from "../../protocol/codec.js";
import { pairToToken } from "../../protocol/pairs.js";
import { subjects } from "../../protocol/subjects.js";
import pino from "pino";
import { loadConfig, type Config } from "../../supervisor/config.js";
import type { CommandContext, CommandDef, Flags } from "../../supervisor/plugin.js";
import { mulberry32 } from "../../actors/ml/prng.js";
import { indicatorsOf, type CandleBar } from "../../actors/ml/mod.js";

export function testConfig(url: string, ml: Partial<Config["ml"]> = {}): Config {
  const c = loadConfig({ env: {} });
  c.natsUrl = url;
  c.ml = { ...c.ml, folds: 3, minRows: 500, searchBudgetMs: 600_000, ...ml };
  return c;
}

/** Runs a command (made with a writer) as the CLI would, returning what it printed as its result. */
export async function runCommand(make: (io: { out(s: string): void; err(s: string): void }) => CommandDef, config: Config, args: string[], flags: Flags = {}): Promise<string> {
  let out = "";
  const cmd = make({ out: (s) => void (out += s), err: (s) => void (process.env.TEST_LOG && process.stderr.write(s)) });
  const ctx: CommandContext = {
    args, flags, config, log: pino({ level: "silent" }),
    async withNats(name, fn) {
      const nc = await connect({ servers: config.natsUrl, name, timeout: 5000 });
      try {
        return await fn(nc, jetstream(nc));
      } finally {
        await nc.close();
      }
    },
    usage(msg: string): never {
      throw new Error(`usage: ${msg}`);
    },
    stopSignal: new Promise(() => {}),
  };
  await cmd.run(ctx);
  return out;
}

/**
 * 1m candles whose log price is a 20-minute sine plus noise: the 5-minute return is mostly
 * predictable from the lagged returns, so a real model must beat persistence on it (and the gate
 * must let it through). Used only to exercise promotion; quality figures come from real data.
 */
export function predictableCandles(n: number, seed = 1, startMs = Date.UTC(2023, 3, 1)): CandleBar[] {
  const rng = mulberry32(seed);
  const out: CandleBar[] = [];
  for (let i = 0; i < n; i++) {
    const lp = Math.log(100) + 0.01 * Math.sin((2 * Math.PI * i) / 20) + (rng() - 0.5) * 0.0005;
    const close = Math.exp(lp);
    out.push({ window_start_ms: startMs + i * 60_000, window_end_ms: startMs + (i + 1) * 60_000, open: close, high: close * 1.0002, low: close * 0.9998, close, volume: 1 + rng() * 10 });
  }
  return out;
}

export function toCsv(c: CandleBar[]): string {
  return "open_time_ms,open,high,low,close,volume\n" + c.map((b) => [b.window_start_ms, b.open, b.high, b.low, b.close, b.volume].join(",")).join("\n") + "\n";
}

/** Indicator records (md.indicators.1m.<pair>) of candles, as the indicators stage computes and publishes them. */
export function indicatorRecords(pair: string, candles: CandleBar[]) {
  return indicatorsOf(candles).map((x, i) => ({
    v: 1 as const, pair, tf: "1m", window_start_ms: x.window_start_ms, window_end_ms: x.window_end_ms,
    open: candles[i].open, high: candles[i].high, low: candles[i].low, close: x.close, volume: x.volume, vwap: x.close, trades: 1, flat: false,
    values: x.values as Record<string, number | null>,
  }));
}

export async function publishIndicators(js: JetStreamClient, records: ReturnType<typeof indicatorRecords>): Promise<number> {
  let last = 0;
  const pending: Promise<{ seq: number }>[] = [];
  for (const r of records) {
    pending.push(js.publish(subjects.indicators(r.tf, r.pair), encode(r, "msgpack"), { msgID: `${r.tf}:${pairToToken(r.pair)}:${r.window_start_ms}`, headers: publishHeaders("msgpack") }));
    if (pending.length >= 500) for (const a of pending.splice(0)) last = Math.max(last, (await a).seq);
  }
  for (const a of pending) last = Math.max(last, (await a).seq);
  return last;
}
