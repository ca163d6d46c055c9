// Stream, KV bucket definitions of DESIGN.md §2 and their idempotent creation. Limits (replicas,
// max age, max bytes, dedup window) come from config: 1 replica on a laptop, 3 on a cluster.
import {
  DiscardPolicy, RetentionPolicy, StorageType,
  type JetStreamClient, type JetStreamManager, type StreamConfig,
} from "@nats-io/jetstream";
import { Kvm, type KV } from "@nats-io/kv";
import { Objm } from "@nats-io/obj";
import { nanos } from "@nats-io/transport-node";

export type StreamName = "TRADES" | "CANDLES" | "INDICATORS" | "NEWS" | "SENTIMENT" | "PREDICTIONS" | "DLQ" | "JOURNAL";

export type StreamLimits = {
  /** 0 = unlimited. */
  maxAgeMs: number;
  /** -1 = unlimited. */
  maxBytes: number;
  /**
   * How long the server remembers a Nats-Msg-Id. Replays after a crash republish at most one
   * checkpoint interval of outputs, so this only has to outlive a restart; low-rate streams get
   * a long window because each remembered id costs memory.
   */
  duplicateWindowMs: number;
};

export type StorageSettings = {
  replicas: number;
  streams: Record<StreamName, StreamLimits>;
};

export const STREAM_SUBJECTS: Record<StreamName, string[]> = {
  TRADES: ["md.trades.>"],
  CANDLES: ["md.candles.>"],
  INDICATORS: ["md.indicators.>"],
  /** Raw news items per source (`news.raw.<source>`). */
  NEWS: ["news.raw.>"],
  /** Scored items per coin (`news.scored.<COIN>`) and the per-pair sentiment signal (`md.sentiment.<pair>`). */
  SENTIMENT: ["news.scored.>", "md.sentiment.>"],
  /** Predictions and their outcomes per horizon and pair. */
  PREDICTIONS: ["ml.predictions.>", "ml.outcomes.>"],
  DLQ: ["dlq.>"],
  /** Per-actor journals of joined inputs (`tf.journal.<stage>.<key>`): the recorded interleaving, replayed on restart. */
  JOURNAL: ["tf.journal.>"],
};

export const DEFAULT_STORAGE: StorageSettings = {
  replicas: 1,
  streams: {
    TRADES: { maxAgeMs: 7 * 86_400_000, maxBytes: -1, duplicateWindowMs: 2 * 60_000 },
    CANDLES: { maxAgeMs: 0, maxBytes: -1, duplicateWindowMs: 60 * 60_000 },
    INDICATORS: { maxAgeMs: 0, maxBytes: -1, duplicateWindowMs: 60 * 60_000 },
    NEWS: { maxAgeMs: 0, maxBytes: -1, duplicateWindowMs: 24 * 60 * 60_000 },
    SENTIMENT: { maxAgeMs: 0, maxBytes: -1, duplicateWindowMs: 60 * 60_000 },
    PREDICTIONS: { maxAgeMs: 0, maxBytes: -1, duplicateWindowMs: 60 * 60_000 },
    DLQ: { maxAgeMs: 30 * 86_400_000, maxBytes: -1, duplicateWindowMs: 10 * 60_000 },
    // Kept like the streams it copies: an entry must outlive the actor's lag behind it.
    JOURNAL: { maxAgeMs: 0, maxBytes: -1, duplicateWindowMs: 10 * 60_000 },
  },
};

export const BUCKETS = {
  /** Desired pairs and per-pair settings: the source of truth for what runs. */
  pairs: "tf_pairs",
  /** Process heartbeats. */
  members: "tf_members",
  /** Who runs which `<stage>.<pair>`. */
  leases: "tf_leases",
  /** Actor checkpoints: state + last applied input sequence. */
  state: "tf_state",
  /** Latest candle / indicators / prediction / sentiment per pair, for the gateway. */
  latest: "tf_latest",
  /** Model registry records (per pair and horizon: runs, versions, champion alias). */
  models: "tf_models",
} as const;

/** Object store holding model artifacts (ONNX). */
export const ARTIFACTS_BUCKET = "tf_artifacts";

export function streamConfig(name: StreamName, s: StorageSettings): Partial<StreamConfig> & { name: string } {
  const l = s.streams[name];
  return {
    name,
    subjects: STREAM_SUBJECTS[name],
    storage: StorageType.File,
    retention: RetentionPolicy.Limits,
    discard: DiscardPolicy.Old,
    num_replicas: s.replicas,
    max_age: nanos(l.maxAgeMs),
    max_bytes: l.maxBytes,
    duplicate_window: nanos(l.duplicateWindowMs),
    // Direct get lets the gateway and tail read single messages from any replica cheaply.
    allow_direct: true,
  };
}

export type BootstrapReport = { created: string[]; updated: string[]; unchanged: string[] };

/** Creates every stream and bucket, or updates the limits of existing ones. Safe to run any number of times. */
export async function bootstrap(js: JetStreamClient, jsm: JetStreamManager, s: StorageSettings): Promise<BootstrapReport> {
  const report: BootstrapReport = { created: [], updated: [], unchanged: [] };
  for (const name of Object.keys(STREAM_SUBJECTS) as StreamName[]) {
    const want = streamConfig(name, s);
    const have = await jsm.streams.info(name).catch((err) => {
      if (isNotFound(err)) return null;
      throw err;
    });
    if (!have) {
      await jsm.streams.add(want);
      report.created.push(`stream ${name}`);
      continue;
    }
    const c = have.config;
    const differs =
      c.max_age !== want.max_age || c.max_bytes !== want.max_bytes || c.duplicate_window !== want.duplicate_window ||
      c.num_replicas !== want.num_replicas || JSON.stringify(c.subjects) !== JSON.stringify(want.subjects);
    if (differs) {
      await jsm.streams.update(name, { ...c, ...want });
      report.updated.push(`stream ${name}`);
    } else report.unchanged.push(`stream ${name}`);
  }
  const kvm = new Kvm(js);
  for (const bucket of Object.values(BUCKETS)) {
    const exists = await jsm.streams.info(`KV_${bucket}`).then(() => true, (err) => {
      if (isNotFound(err)) return false;
      throw err;
    });
    if (exists) {
      report.unchanged.push(`kv ${bucket}`);
      continue;
    }
    await kvm.create(bucket, {
      replicas: s.replicas,
      history: 1,
      storage: StorageType.File,
      // Heartbeats of dead members disappear on their own; liveness itself is judged from revisions.
      ttl: bucket === BUCKETS.members ? 60_000 : 0,
    });
    report.created.push(`kv ${bucket}`);
  }
  // Model artifacts (ONNX). Objm.create opens an existing store, so this is idempotent too.
  const objExists = await jsm.streams.info(`OBJ_${ARTIFACTS_BUCKET}`).then(() => true, (err) => {
    if (isNotFound(err)) return false;
    throw err;
  });
  if (objExists) report.unchanged.push(`object store ${ARTIFACTS_BUCKET}`);
  else {
    await new Objm(js).create(ARTIFACTS_BUCKET, { replicas: s.replicas, storage: StorageType.File });
    report.created.push(`object store ${ARTIFACTS_BUCKET}`);
  }
  return report;
}

export async function openBuckets(js: JetStreamClient): Promise<Record<keyof typeof BUCKETS, KV>> {
  const kvm = new Kvm(js);
  const out = {} as Record<keyof typeof BUCKETS, KV>;
  for (const [k, name] of Object.entries(BUCKETS) as [keyof typeof BUCKETS, string][]) out[k] = await kvm.open(name);
  return out;
}

/**
 * Keys of a KV bucket, from the subjects its stream holds. Unlike `kv.keys()`, which iterates a
 * consumer until the server says nothing is pending, this cannot hang when a value expires (the
 * members bucket has a TTL) between the count and the delivery: one request, one answer.
 */
export async function bucketKeys(jsm: JetStreamManager, bucket: string): Promise<string[]> {
  const prefix = `$KV.${bucket}.`;
  const info = await jsm.streams.info(`KV_${bucket}`, { subjects_filter: `${prefix}>` });
  return Object.keys(info.state.subjects ?? {}).map((s) => s.slice(prefix.length)).sort();
}

export function isNotFound(err: unknown): boolean {
  const e = err as { code?: unknown; api_error?: { err_code?: number }; message?: string };
  return e?.api_error?.err_code === 10059 || /not found/i.test(String(e?.message ?? ""));
}
