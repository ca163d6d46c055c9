// The newest value per key in the `tf_latest` bucket, which the gateway watches into memory.
//
// Key scheme (one KV key per series; `<pair>` is the subject token, e.g. `BTC-USD`):
//   candles.<tf>.<pair>          the newest closed candle            (ts = window_start_ms)
//   indicators.<tf>.<pair>       the newest candle + indicator values (ts = window_start_ms)
//   sentiment.<pair>             the newest sentiment signal          (ts = ts_ms)
//   predictions.<h>.<pair>       the newest prediction per horizon    (ts = ts_ms)
//   outcomes.<h>.<pair>          the newest prediction outcome        (ts = ts_ms)
// Value: `{ v: 1, key, ts, subject, data }` in the configured codec (readers sniff it), `data`
// being the message exactly as published on `subject`.
//
// A stream actor marks outputs with `StreamActorDef.latest(out)`; its cell collects the newest
// per key and writes them when it checkpoints (after its outputs are acked), not per message.
// A write never moves a key backwards in event time: a replay after a restart re-marks older
// values, and those lose against what the bucket already holds (compare-and-set on revision).
import type { JetStreamClient } from "@nats-io/jetstream";
import { Kvm, type KV } from "@nats-io/kv";
import type { Logger } from "pino";
import { decode, encode, type CodecName } from "../protocol/codec.js";
import { pairToToken } from "../protocol/pairs.js";
import { BUCKETS } from "../protocol/streams.js";
import type { PooledConnection } from "./publish-pool.js";

/** What an actor says about one output: it is the value of `key` as of event time `ts`. */
export type LatestMark = { key: string; ts: number };

export type LatestValue = { v: 1; key: string; ts: number; subject: string; data: unknown };

export const latestKeys = {
  candles: (tf: string, pair: string) => `candles.${tf}.${pairToToken(pair)}`,
  indicators: (tf: string, pair: string) => `indicators.${tf}.${pairToToken(pair)}`,
  sentiment: (pair: string) => `sentiment.${pairToToken(pair)}`,
  predictions: (h: string, pair: string) => `predictions.${h}.${pairToToken(pair)}`,
  outcomes: (h: string, pair: string) => `outcomes.${h}.${pairToToken(pair)}`,
} as const;

/** Parses a tf_latest key into its kind, optional qualifier (timeframe or horizon) and pair token. */
export function parseLatestKey(key: string): { kind: string; qualifier: string | null; token: string } | null {
  const t = key.split(".");
  if (t.length === 3) return { kind: t[0], qualifier: t[1], token: t[2] };
  if (t.length === 2) return { kind: t[0], qualifier: null, token: t[1] };
  return null;
}

export function decodeLatest(bytes: Uint8Array): LatestValue | null {
  try {
    const v = decode(bytes) as LatestValue;
    return v && typeof v === "object" && typeof v.ts === "number" ? v : null;
  } catch {
    return null;
  }
}

/** The bucket handle, opened once per client: opening asks the server for the stream's info, and every cell has a writer. */
const buckets = new WeakMap<JetStreamClient, Promise<KV>>();
function latestBucket(js: JetStreamClient): Promise<KV> {
  let kv = buckets.get(js);
  if (!kv) {
    kv = new Kvm(js).open(BUCKETS.latest);
    kv.catch(() => buckets.delete(js));
    buckets.set(js, kv);
  }
  return kv;
}

/** Per-cell buffer of the newest marked output per key, written in one round at checkpoint time. */
export class LatestWriter {
  private readonly pending = new Map<string, LatestValue>();
  /** What this writer last saw in the bucket per key: saves a read per write in the steady state. */
  private readonly known = new Map<string, { revision: number; ts: number }>();
  private kv: KV | null = null;

  /** With `conn` (an actor's publish connection), writes go out on it (PooledConnection.kvPut); reads always through the KV client. */
  constructor(private readonly js: JetStreamClient, private readonly codec: CodecName, private readonly log: Logger, private readonly conn?: PooledConnection) {}

  offer(mark: LatestMark, subject: string, data: unknown): void {
    const prev = this.pending.get(mark.key);
    if (prev && prev.ts > mark.ts) return;
    this.pending.set(mark.key, { v: 1, key: mark.key, ts: mark.ts, subject, data });
  }

  /**
   * Writes what is pending. Failures are logged and the values kept for the next round: the
   * bucket is a convenience for readers and must never stop the pipeline.
   */
  async flush(): Promise<void> {
    if (this.pending.size === 0) return;
    const batch = [...this.pending.values()];
    this.pending.clear();
    try {
      this.kv ??= await latestBucket(this.js);
    } catch (err) {
      this.requeue(batch);
      this.log.warn({ err: (err as Error).message }, "tf_latest: cannot open bucket; will retry");
      return;
    }
    await Promise.all(batch.map((v) => this.write(this.kv!, v).catch((err) => {
      this.requeue([v]);
      this.log.warn({ key: v.key, err: (err as Error).message }, "tf_latest: write failed; will retry");
    })));
  }

  private requeue(values: LatestValue[]): void {
    for (const v of values) {
      const cur = this.pending.get(v.key);
      if (!cur || cur.ts < v.ts) this.pending.set(v.key, v);
    }
  }

  private async write(kv: KV, v: LatestValue): Promise<void> {
    const bytes = encode(v, this.codec);
    for (let attempt = 0; attempt < 3; attempt++) {
      let k = this.known.get(v.key);
      if (!k && attempt === 0) {
        // A key this writer has not seen: usually a new one, so try to create it before reading.
        try {
          this.known.set(v.key, { revision: await this.put(kv, v.key, bytes, 0), ts: v.ts });
          return;
        } catch {
          // it exists: read it and compare below
        }
      }
      if (!k) {
        const e = await kv.get(v.key);
        const cur = e && e.operation === "PUT" ? decodeLatest(e.value) : null;
        k = { revision: e?.revision ?? 0, ts: cur ? cur.ts : -Infinity };
      }
      if (k.ts >= v.ts) {
        this.known.set(v.key, k);
        return; // the bucket already holds this or a newer value (a replay)
      }
      try {
        const revision = k.revision === 0 ? await kv.create(v.key, bytes) : await this.put(kv, v.key, bytes, k.revision);
        this.known.set(v.key, { revision, ts: v.ts });
        return;
      } catch (err) {
        // Someone else wrote meanwhile (a previous owner, a deleted key): read again and compare.
        this.known.delete(v.key);
        if (attempt === 2) throw err;
      }
    }
  }

  /** A compare-and-set write (`previous` 0: the key must not exist), on the actor's connection when there is one. */
  private put(kv: KV, key: string, bytes: Uint8Array, previous: number): Promise<number> {
    if (this.conn) return this.conn.kvPut(BUCKETS.latest, key, bytes, previous);
    return previous === 0 ? kv.create(key, bytes) : kv.update(key, bytes, previous);
  }
}
