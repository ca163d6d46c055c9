// Codec figure: protocol/msgpack.ts against @msgpack/msgpack (the reference, measured in the same
// run) on the messages a run makes: trades from the recorded BTC/USDT trades, candles and indicators
// from the recorded candles through the indicators engine, predictions and outcomes of their shape.
// Per kind, the time per message to encode and to decode with each, and the speed-up as a ratio.
// Versions are taken in turn, several times, and the fastest pass of each is kept (the least
// disturbed by a neighbour on a shared box).
import { Decoder, Encoder } from "@msgpack/msgpack";
import { createIndicatorState, DEFAULT_INDICATORS, updateIndicators } from "../actors/indicators/engine.js";
import { rfc3339ToMs } from "../actors/trades/kraken-messages.js";
import { loadTradeFiles } from "../actors/trades/kraken-replay-server.js";
import { decodeMsgpack, encodeMsgpack } from "../protocol/msgpack.js";
import { BTC_FILE, CANDLE_FILE, readCandlesCsv } from "../test/harness/data.js";
import { fixed } from "./stats.js";

export type CodecRow = { kind: string; bytes: number; encodeUs: { library: number; ours: number }; decodeUs: { library: number; ours: number } };
export type CodecBench = { passes: number; rows: CodecRow[] };

const PER_KIND = 400;

/** Messages of each kind, as the stages make them. */
function messages(): Record<string, unknown[]> {
  const trades = loadTradeFiles([BTC_FILE]).slice(0, PER_KIND).map((r) => ({
    v: 1, pair: "XBT/USD", trade_id: r.trade_id, price: r.price, qty: r.qty, side: r.side, ord_type: r.ord_type, ts_ms: rfc3339ToMs(r.timestamp)!,
  }));
  const state = createIndicatorState(DEFAULT_INDICATORS);
  const candles: Record<string, unknown>[] = [];
  const indicators: Record<string, unknown>[] = [];
  let end = 1723163520000;
  for (const b of readCandlesCsv(CANDLE_FILE).slice(0, PER_KIND)) {
    end += 60_000;
    const c = { v: 1, pair: "XBT/USD", tf: "1m", window_start_ms: end - 60_000, window_end_ms: end, open: b.open, high: b.high, low: b.low, close: b.close, volume: b.volume, vwap: (b.high + b.low + b.close) / 3, trades: 59, flat: false };
    candles.push(c);
    indicators.push({ ...c, values: updateIndicators(state, b) });
  }
  const predictions = candles.map((c) => ({
    v: 1, pair: "XBT/USD", horizon: "5m", horizon_s: 300, ts_ms: c.window_end_ms, target_ts_ms: (c.window_end_ms as number) + 300_000,
    base_price: c.close, predicted_return: 0.00012, predicted_price: (c.close as number) * 1.00012, model: "ridge", model_version: 3,
  }));
  const outcomes = predictions.map((p) => ({
    ...p, actual_price: p.predicted_price, actual_return: 0.0003, abs_error: 0.00018, baseline_abs_error: 0.0003,
    live_n: 86, live_mae: 0.0010168307734935806, live_mae_persistence: 0.0011, live_mae_ratio: 0.92, live_hit_rate: 0.54,
  }));
  return { trade: trades, candle: candles, indicators, prediction: predictions, outcome: outcomes };
}

/** Microseconds per item of the fastest of `passes` passes over `items`. */
function fastest(passes: number, items: unknown[], fn: (x: unknown) => unknown): number {
  let best = Infinity;
  for (let p = 0; p < passes; p++) {
    const t0 = performance.now();
    for (let r = 0; r < 25; r++) for (const x of items) fn(x);
    best = Math.min(best, performance.now() - t0);
  }
  return (best * 1000) / (25 * items.length);
}

export function codecBench(opts: { passes?: number; log?: (s: string) => void } = {}): CodecBench {
  const passes = opts.passes ?? 7;
  const lib = new Encoder({ ignoreUndefined: true });
  const libDecoder = new Decoder();
  const rows: CodecRow[] = [];
  for (const [kind, values] of Object.entries(messages())) {
    const encoded = values.map((v) => lib.encode(v));
    // Warm both up, then take them in turn.
    for (let w = 0; w < 3; w++) for (const v of values) (lib.encode(v), encodeMsgpack(v));
    const encodeUs = { library: Infinity, ours: Infinity };
    const decodeUs = { library: Infinity, ours: Infinity };
    for (let turn = 0; turn < 3; turn++) {
      encodeUs.library = Math.min(encodeUs.library, fastest(passes, values, (v) => lib.encode(v)));
      encodeUs.ours = Math.min(encodeUs.ours, fastest(passes, values, encodeMsgpack));
      decodeUs.library = Math.min(decodeUs.library, fastest(passes, encoded, (b) => libDecoder.decode(b as Uint8Array)));
      decodeUs.ours = Math.min(decodeUs.ours, fastest(passes, encoded, (b) => decodeMsgpack(b as Uint8Array)));
    }
    const bytes = Math.round(encoded.reduce((n, b) => n + b.length, 0) / encoded.length);
    rows.push({ kind, bytes, encodeUs, decodeUs });
    opts.log?.(`codec ${kind}: encode ${fixed(encodeUs.library)} → ${fixed(encodeUs.ours)} µs, decode ${fixed(decodeUs.library)} → ${fixed(decodeUs.ours)} µs`);
  }
  return { passes, rows };
}

export function formatCodec(c: CodecBench): string[] {
  const lines = [
    "Codec: protocol/msgpack.ts against @msgpack/msgpack (the reference, same run), on the messages a run makes",
    "   µs per message, fastest of the passes, versions in turn; speed-up = library time ÷ ours (the same bytes and values: test/unit/msgpack.test.ts)",
    "   kind         bytes   encode: library    ours  speed-up   decode: library    ours  speed-up",
  ];
  for (const r of c.rows) {
    lines.push(
      `   ${r.kind.padEnd(11)} ${String(r.bytes).padStart(6)}   ${fixed(r.encodeUs.library).padStart(15)} ${fixed(r.encodeUs.ours).padStart(7)} ${`${fixed(r.encodeUs.library / r.encodeUs.ours)}×`.padStart(9)}   ${fixed(r.decodeUs.library).padStart(15)} ${fixed(r.decodeUs.ours).padStart(7)} ${`${fixed(r.decodeUs.library / r.decodeUs.ours)}×`.padStart(9)}`,
    );
  }
  return lines;
}
