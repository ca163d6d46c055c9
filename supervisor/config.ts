// Configuration: defaults, overridden by a JSON file (TICKFLOW_CONFIG or --config), then by
// environment variables, then by CLI flags. Every value is validated once at start; a bad value
// stops the process with a message that names the setting, where it came from and what is allowed.
import { readFileSync } from "node:fs";
import { Type, type Static } from "@sinclair/typebox";
import { ConfigError } from "../protocol/errors.js";
import { validator } from "../protocol/messages.js";
import { DEFAULT_STORAGE, type StorageSettings } from "../protocol/streams.js";
import { isTimeframe } from "../protocol/timeframes.js";
import { DEFAULT_COINS } from "../protocol/coins.js";

const Int = (min: number, max = Number.MAX_SAFE_INTEGER) => Type.Integer({ minimum: min, maximum: max });
const Limits = Type.Object({ maxAgeMs: Int(0), maxBytes: Int(-1), duplicateWindowMs: Int(1000) });

export const ConfigSchema = Type.Object({
  /** NATS server URL(s); empty = start an embedded nats-server (tickflow up only). */
  natsUrl: Type.String(),
  /** Where the embedded server keeps its store and Tickflow its local files. */
  dataDir: Type.String({ minLength: 1 }),
  codec: Type.Union([Type.Literal("msgpack"), Type.Literal("json")]),
  timeframes: Type.Array(Type.String(), { minItems: 1 }),
  candles: Type.Object({
    /** How long after a window's end it stays open for late trades (event time). */
    graceMs: Int(0, 3_600_000),
  }),
  trades: Type.Object({
    /** After this long without a trade, the source publishes a watermark so quiet pairs' windows close. */
    idleWatermarkMs: Int(100, 3_600_000),
    heartbeatTimeoutMs: Int(1000, 600_000),
  }),
  kraken: Type.Object({ wsUrl: Type.String({ minLength: 1 }), restUrl: Type.String({ minLength: 1 }) }),
  checkpoint: Type.Object({ everyMessages: Int(1, 10_000_000), intervalMs: Int(10, 3_600_000) }),
  restart: Type.Object({
    initialBackoffMs: Int(1, 600_000),
    maxBackoffMs: Int(1, 3_600_000),
    /** OTP-style intensity: more than `maxRestarts` crashes within `periodMs` marks the actor failed. */
    maxRestarts: Int(0, 1000),
    periodMs: Int(100, 86_400_000),
  }),
  lease: Type.Object({ ttlMs: Int(500, 600_000), renewMs: Int(100, 600_000) }),
  membership: Type.Object({ heartbeatMs: Int(100, 60_000), ttlMs: Int(500, 600_000) }),
  storage: Type.Object({
    replicas: Int(1, 5),
    streams: Type.Object({ TRADES: Limits, CANDLES: Limits, INDICATORS: Limits, NEWS: Limits, SENTIMENT: Limits, PREDICTIONS: Limits, DLQ: Limits, JOURNAL: Limits }),
  }),
  publish: Type.Object({
    /** Connections per process on which actors publish (each actor always on the same one). */
    connections: Int(1, 64),
    /** A publish not acked within this long closes its connection; its actors restart from their checkpoints. */
    ackTimeoutMs: Int(500, 600_000),
  }),
  log: Type.Object({ level: Type.Union(["fatal", "error", "warn", "info", "debug", "trace", "silent"].map((l) => Type.Literal(l))) }),
  /** Prediction (trainer and predictor): horizons, walk-forward validation, promotion gate, retraining. */
  ml: Type.Object({
    /** Horizons predicted and trained, as durations (5m, 15m, 1h). */
    horizons: Type.Array(Type.String({ pattern: "^[1-9][0-9]{0,4}[smhd]$" }), { minItems: 1 }),
    /** Candle timeframe the features are built on. */
    timeframe: Type.String({ pattern: "^[1-9][0-9]{0,4}[smhd]$" }),
    /** Promotion needs a one-sided Diebold–Mariano p-value below this, against persistence and the champion. */
    alpha: Type.Number({ exclusiveMinimum: 0, maximum: 1 }),
    folds: Int(1, 50),
    /** Share of the rows only ever trained on, before the first test block. */
    initialTrainFraction: Type.Number({ minimum: 0.1, maximum: 0.9 }),
    /** Gap between training rows and a test block; 0 = the horizon (never less than the horizon). */
    embargoMs: Int(0, 86_400_000 * 30),
    /** Wall-time budget of one candidate's hyper-parameter search per fold. */
    searchBudgetMs: Int(1, 3_600_000),
    seed: Int(0, 2 ** 31 - 1),
    /** Fewer usable rows than this and a run is recorded as skipped. */
    minRows: Int(100, 100_000_000),
    /** Trainer actor: retrain after this many new candles (event time, from its input). */
    retrainEveryCandles: Int(1, 10_000_000),
    /** Trainer actor: train on at most this many most recent candles. */
    maxTrainCandles: Int(100, 100_000_000),
    /** Predictor: outcomes kept for the rolling live metrics. */
    liveWindow: Int(1, 100_000),
  }),
  // --- runtime: pool stages (competing consumers) ---
  pool: Type.Object({
    /** Messages in flight per process and pool stage (LLM calls are slow: several at once). */
    concurrency: Int(1, 1000),
    /** Attempts before a message that keeps failing is dead-lettered. */
    maxDeliver: Int(1, 100),
    /** Redelivery after this long without an ack (a worker that died); a live handler extends it. */
    ackWaitMs: Int(500, 3_600_000),
    /** Backoff before a failed message is redelivered: initial · 2^(attempt−1), capped. */
    backoffInitialMs: Int(0, 3_600_000),
    backoffMaxMs: Int(0, 3_600_000),
  }),
  // --- secured NATS and health endpoint (Kubernetes) ---
  /** How every connection authenticates to NATS; empty strings = not used. See supervisor/nats.ts. */
  natsAuth: Type.Object({
    /** A .creds file (user JWT + NKey seed). */
    credsFile: Type.String(),
    user: Type.String(),
    password: Type.String(),
    token: Type.String(),
    /** CA bundle (PEM) that signed the server's certificate; setting it turns TLS on. */
    caFile: Type.String(),
    /** Client certificate and key (PEM) for servers that verify clients (mTLS). */
    certFile: Type.String(),
    keyFile: Type.String(),
    /** Deadline for each connection handshake (TCP, TLS, auth). */
    connectTimeoutMs: Int(100, 600_000),
  }),
  /** HTTP /healthz, /readyz, /metrics of a worker (`tickflow run`); port 0 = off. */
  health: Type.Object({ port: Int(0, 65535), host: Type.String({ minLength: 1 }) }),
  /**
   * /metrics of workers and the gateway: per-stage totals always; with `perActor`, also each
   * actor's series (about 36,000 at a thousand pairs and six stages).
   */
  metrics: Type.Object({ perActor: Type.Boolean() }),
  // --- serving: gateway and sink (and the terminal) ---
  /** Log lines: `auto` = readable on a terminal, JSON when piped; or force `json` / `pretty`. */
  logFormat: Type.Union([Type.Literal("auto"), Type.Literal("json"), Type.Literal("pretty")]),
  gateway: Type.Object({
    port: Int(0, 65535),
    host: Type.String({ minLength: 1 }),
    /** Bearer token for PUT/DELETE /v1/pairs; empty disables those routes (403). */
    adminToken: Type.String(),
    /** Horizon used when a request names none (and by GET /predictions). */
    defaultHorizon: Type.String({ pattern: "^[0-9]+[smhd]$" }),
    /** Most records one history request returns. */
    maxHistory: Int(1, 100_000),
  }),
  sink: Type.Object({
    /** postgres://… of RisingWave or PostgreSQL; empty: `tickflow up` runs no sink. */
    databaseUrl: Type.String(),
    dialect: Type.Union([Type.Literal("risingwave"), Type.Literal("postgres")]),
    /** Schema the tables live in (created by `tickflow sink migrate`). */
    schema: Type.String({ pattern: "^[a-z_][a-z0-9_]{0,62}$" }),
    /** A batch is written when it holds this many rows or is this old, whichever comes first. */
    batchSize: Int(1, 50_000),
    batchMs: Int(1, 60_000),
    /** Prefix of the durable consumer names (one per table); replicas sharing it share the work. */
    durablePrefix: Type.String({ pattern: "^[A-Za-z0-9_-]{1,32}$" }),
  }),
  // News and sentiment (actors/news, actors/scorer, actors/sentiment).
  news: Type.Object({
    /** Coin → aliases for coin extraction; upper-case aliases are tickers (see actors/scorer/coins.ts). */
    coins: Type.Record(Type.String({ pattern: "^[A-Z0-9]{1,16}$" }), Type.Array(Type.String({ minLength: 1 }), { minItems: 1 })),
    /** Which pollers run (each is one actor across the cluster): cryptopanic, cryptocompare, rss-<name>. */
    sources: Type.Array(Type.String({ pattern: "^(cryptopanic|cryptocompare|rss-[a-z0-9][a-z0-9_-]{0,59})$" })),
    /** RSS/Atom feeds as `name=url`; each runs as source rss-<name> when listed in sources (or when sources is empty). */
    rss: Type.Array(Type.String({ pattern: "^[a-z0-9][a-z0-9_-]{0,59}=https?://" })),
    cryptopanic: Type.Object({ url: Type.String({ minLength: 1 }), token: Type.String() }),
    cryptocompare: Type.Object({ url: Type.String({ minLength: 1 }), apiKey: Type.String() }),
    /** Time between two polls of one source; on errors, backoff doubles up to maxBackoffMs. */
    pollIntervalMs: Int(1000, 86_400_000),
    maxBackoffMs: Int(1000, 86_400_000),
    /** Pages read back on the first poll of a source (newest first); later polls stop at the cursor. */
    firstPollPages: Int(1, 100),
    /** Requests per second to one API at most. */
    maxRequestsPerSecond: Type.Number({ exclusiveMinimum: 0, maximum: 100 }),
    ollama: Type.Object({
      /** Ollama's URL (OLLAMA_HOST); empty: the bundled classifier scores everything. */
      host: Type.String(),
      model: Type.String({ minLength: 1 }),
      timeoutMs: Int(100, 600_000),
      retries: Int(0, 10),
    }),
    /** Half-life of an item's weight in the per-pair sentiment signal. */
    halfLifeS: Type.Number({ exclusiveMinimum: 0, maximum: 30 * 86_400 }),
  }),
});
export type Config = Static<typeof ConfigSchema> & { storage: StorageSettings };

export const DEFAULT_CONFIG: Config = {
  natsUrl: "",
  dataDir: ".tickflow",
  codec: "msgpack",
  timeframes: ["1m", "5m", "1h"],
  candles: { graceMs: 2000 },
  trades: { idleWatermarkMs: 2000, heartbeatTimeoutMs: 10_000 },
  kraken: { wsUrl: "wss://ws.kraken.com/v2", restUrl: "https://api.kraken.com" },
  checkpoint: { everyMessages: 2000, intervalMs: 5000 },
  restart: { initialBackoffMs: 200, maxBackoffMs: 10_000, maxRestarts: 5, periodMs: 60_000 },
  lease: { ttlMs: 5000, renewMs: 1500 },
  membership: { heartbeatMs: 1000, ttlMs: 5000 },
  storage: structuredClone(DEFAULT_STORAGE),
  publish: { connections: 4, ackTimeoutMs: 10_000 },
  log: { level: "info" },
  ml: {
    horizons: ["5m"], timeframe: "1m", alpha: 0.05, folds: 5, initialTrainFraction: 0.5, embargoMs: 0, searchBudgetMs: 30_000, seed: 42,
    minRows: 1000, retrainEveryCandles: 1440, maxTrainCandles: 43_200, liveWindow: 1440,
  },
  pool: { concurrency: 4, maxDeliver: 5, ackWaitMs: 30_000, backoffInitialMs: 1000, backoffMaxMs: 60_000 },
  natsAuth: { credsFile: "", user: "", password: "", token: "", caFile: "", certFile: "", keyFile: "", connectTimeoutMs: 10_000 },
  health: { port: 0, host: "0.0.0.0" },
  metrics: { perActor: true },
  logFormat: "auto",
  gateway: { port: 3000, host: "0.0.0.0", adminToken: "", defaultHorizon: "5m", maxHistory: 5000 },
  sink: { databaseUrl: "", dialect: "postgres", schema: "tickflow", batchSize: 500, batchMs: 250, durablePrefix: "tf_sink" },
  news: {
    coins: structuredClone(DEFAULT_COINS),
    sources: [],
    rss: [],
    cryptopanic: { url: "https://cryptopanic.com/api/v1", token: "" },
    cryptocompare: { url: "https://min-api.cryptocompare.com", apiKey: "" },
    pollIntervalMs: 60_000,
    maxBackoffMs: 600_000,
    firstPollPages: 1,
    maxRequestsPerSecond: 1,
    // Worst case per item, (retries + 1) × timeoutMs plus backoff, stays inside the scorer pool's ack wait.
    ollama: { host: "", model: "llama3.2:3b", timeoutMs: 10_000, retries: 1 },
    halfLifeS: 3600,
  },
};

/** Environment variable → config path, with how to parse it. */
const ENV: [string, string, "string" | "int" | "list" | "number" | "bool"][] = [
  ["NATS_URL", "natsUrl", "string"],
  ["TICKFLOW_DATA_DIR", "dataDir", "string"],
  ["TICKFLOW_CODEC", "codec", "string"],
  ["TICKFLOW_TIMEFRAMES", "timeframes", "list"],
  ["TICKFLOW_GRACE_MS", "candles.graceMs", "int"],
  ["TICKFLOW_IDLE_WATERMARK_MS", "trades.idleWatermarkMs", "int"],
  ["KRAKEN_WS_URL", "kraken.wsUrl", "string"],
  ["KRAKEN_REST_URL", "kraken.restUrl", "string"],
  ["TICKFLOW_CHECKPOINT_EVERY", "checkpoint.everyMessages", "int"],
  ["TICKFLOW_CHECKPOINT_MS", "checkpoint.intervalMs", "int"],
  ["TICKFLOW_MAX_RESTARTS", "restart.maxRestarts", "int"],
  ["TICKFLOW_RESTART_PERIOD_MS", "restart.periodMs", "int"],
  ["TICKFLOW_LEASE_TTL_MS", "lease.ttlMs", "int"],
  ["TICKFLOW_LEASE_RENEW_MS", "lease.renewMs", "int"],
  ["TICKFLOW_HEARTBEAT_MS", "membership.heartbeatMs", "int"],
  ["TICKFLOW_MEMBER_TTL_MS", "membership.ttlMs", "int"],
  ["TICKFLOW_REPLICAS", "storage.replicas", "int"],
  ["TICKFLOW_PUBLISH_CONNECTIONS", "publish.connections", "int"],
  ["TICKFLOW_PUBLISH_ACK_TIMEOUT_MS", "publish.ackTimeoutMs", "int"],
  ["LOG_LEVEL", "log.level", "string"],
  ["TICKFLOW_ML_HORIZONS", "ml.horizons", "list"],
  ["TICKFLOW_ML_ALPHA", "ml.alpha", "number"],
  ["TICKFLOW_ML_FOLDS", "ml.folds", "int"],
  ["TICKFLOW_ML_SEARCH_BUDGET_MS", "ml.searchBudgetMs", "int"],
  ["TICKFLOW_ML_SEED", "ml.seed", "int"],
  ["TICKFLOW_ML_RETRAIN_EVERY", "ml.retrainEveryCandles", "int"],
  ["TICKFLOW_ML_MAX_TRAIN_CANDLES", "ml.maxTrainCandles", "int"],
  ["TICKFLOW_POOL_CONCURRENCY", "pool.concurrency", "int"],
  ["TICKFLOW_POOL_MAX_DELIVER", "pool.maxDeliver", "int"],
  ["TICKFLOW_POOL_ACK_WAIT_MS", "pool.ackWaitMs", "int"],
  ["TICKFLOW_POOL_BACKOFF_MS", "pool.backoffInitialMs", "int"],
  ["NATS_CREDS", "natsAuth.credsFile", "string"],
  ["NATS_USER", "natsAuth.user", "string"],
  ["NATS_PASSWORD", "natsAuth.password", "string"],
  ["NATS_TOKEN", "natsAuth.token", "string"],
  ["NATS_CA", "natsAuth.caFile", "string"],
  ["NATS_CERT", "natsAuth.certFile", "string"],
  ["NATS_KEY", "natsAuth.keyFile", "string"],
  ["NATS_CONNECT_TIMEOUT_MS", "natsAuth.connectTimeoutMs", "int"],
  ["TICKFLOW_HEALTH_PORT", "health.port", "int"],
  ["TICKFLOW_HEALTH_HOST", "health.host", "string"],
  ["TICKFLOW_METRICS_PER_ACTOR", "metrics.perActor", "bool"],
  ["LOG_FORMAT", "logFormat", "string"],
  ["PORT", "gateway.port", "int"],
  // The Helm chart's name for it (wins over PORT when both are set).
  ["TICKFLOW_GATEWAY_PORT", "gateway.port", "int"],
  ["TICKFLOW_GATEWAY_HOST", "gateway.host", "string"],
  ["TICKFLOW_ADMIN_TOKEN", "gateway.adminToken", "string"],
  ["TICKFLOW_DEFAULT_HORIZON", "gateway.defaultHorizon", "string"],
  ["DATABASE_URL", "sink.databaseUrl", "string"],
  ["SINK_DIALECT", "sink.dialect", "string"],
  ["SINK_SCHEMA", "sink.schema", "string"],
  ["SINK_BATCH_SIZE", "sink.batchSize", "int"],
  ["SINK_BATCH_MS", "sink.batchMs", "int"],
  ["TICKFLOW_NEWS_SOURCES", "news.sources", "list"],
  ["TICKFLOW_RSS_FEEDS", "news.rss", "list"],
  ["CRYPTOPANIC_URL", "news.cryptopanic.url", "string"],
  ["CRYPTOPANIC_TOKEN", "news.cryptopanic.token", "string"],
  ["CRYPTOCOMPARE_URL", "news.cryptocompare.url", "string"],
  ["CRYPTOCOMPARE_API_KEY", "news.cryptocompare.apiKey", "string"],
  ["TICKFLOW_NEWS_POLL_MS", "news.pollIntervalMs", "int"],
  ["OLLAMA_HOST", "news.ollama.host", "string"],
  ["OLLAMA_MODEL", "news.ollama.model", "string"],
  ["OLLAMA_TIMEOUT_MS", "news.ollama.timeoutMs", "int"],
  ["TICKFLOW_SENTIMENT_HALF_LIFE_S", "news.halfLifeS", "int"],
];

const check = validator(ConfigSchema);

export type ConfigSources = {
  file?: string;
  env?: NodeJS.ProcessEnv;
  /** Already-parsed overrides from CLI flags, as config paths → values. */
  overrides?: Record<string, unknown>;
};

export function loadConfig(src: ConfigSources = {}): Config {
  const env = src.env ?? process.env;
  const cfg = structuredClone(DEFAULT_CONFIG) as Record<string, unknown>;
  const file = src.file ?? env.TICKFLOW_CONFIG;
  if (file) {
    let parsed: unknown;
    try {
      parsed = JSON.parse(readFileSync(file, "utf8"));
    } catch (err) {
      throw new ConfigError(`config file ${file}: ${(err as Error).message}`);
    }
    if (!parsed || typeof parsed !== "object" || Array.isArray(parsed)) throw new ConfigError(`config file ${file}: expected a JSON object`);
    mergeInto(cfg, parsed as Record<string, unknown>, `config file ${file}`);
  }
  for (const [name, path, kind] of ENV) {
    const raw = env[name];
    if (raw === undefined || raw === "") continue;
    setPath(cfg, path, parseValue(raw, kind, `environment variable ${name}`));
  }
  for (const [path, value] of Object.entries(src.overrides ?? {})) if (value !== undefined) setPath(cfg, path, value);
  return validateConfig(cfg);
}

export function validateConfig(cfg: unknown): Config {
  const why = check.explain(cfg);
  if (why) throw new ConfigError(`config ${why}`);
  const c = cfg as Config;
  for (const [i, tf] of c.timeframes.entries()) {
    if (!isTimeframe(tf)) throw new ConfigError(`config timeframes.${i}: "${tf}" is not a timeframe such as 1m, 5m or 1h`);
  }
  if (c.lease.renewMs * 2 > c.lease.ttlMs) {
    throw new ConfigError(`config lease.renewMs (${c.lease.renewMs}) must be at most half of lease.ttlMs (${c.lease.ttlMs}), or a lease expires between two renewals`);
  }
  if (c.restart.maxBackoffMs < c.restart.initialBackoffMs) {
    throw new ConfigError(`config restart.maxBackoffMs (${c.restart.maxBackoffMs}) is below restart.initialBackoffMs (${c.restart.initialBackoffMs})`);
  }
  return c;
}

function parseValue(raw: string, kind: "string" | "int" | "list" | "number" | "bool", where: string): unknown {
  if (kind === "string") return raw;
  if (kind === "bool") {
    const v = raw.trim().toLowerCase();
    if (v === "true" || v === "1") return true;
    if (v === "false" || v === "0") return false;
    throw new ConfigError(`${where}: expected true or false, got "${raw}"`);
  }
  if (kind === "number") {
    if (!/^-?[0-9]*\.?[0-9]+(e-?[0-9]+)?$/i.test(raw.trim())) throw new ConfigError(`${where}: expected a number, got "${raw}"`);
    return Number(raw);
  }
  if (kind === "list") return raw.split(",").map((s) => s.trim()).filter(Boolean);
  if (!/^-?[0-9]+$/.test(raw.trim())) throw new ConfigError(`${where}: expected a whole number, got "${raw}"`);
  return Number(raw);
}

function setPath(obj: Record<string, unknown>, path: string, value: unknown): void {
  const keys = path.split(".");
  let o = obj;
  for (const k of keys.slice(0, -1)) {
    if (typeof o[k] !== "object" || o[k] === null) o[k] = {};
    o = o[k] as Record<string, unknown>;
  }
  o[keys[keys.length - 1]] = value;
}

function mergeInto(target: Record<string, unknown>, src: Record<string, unknown>, where: string, prefix = ""): void {
  for (const [k, v] of Object.entries(src)) {
    const path = prefix ? `${prefix}.${k}` : k;
    if (!(k in target)) throw new ConfigError(`${where}: unknown setting "${path}"`);
    const t = target[k];
    if (t && typeof t === "object" && !Array.isArray(t) && v && typeof v === "object" && !Array.isArray(v)) {
      mergeInto(t as Record<string, unknown>, v as Record<string, unknown>, where, path);
    } else target[k] = v;
  }
}
