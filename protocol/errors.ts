// One catalogue of error codes for the whole project. Codes are stable (they appear in logs, DLQ
// reasons and HTTP responses); messages say what was wrong and where.

export const ErrorCode = {
  BadPair: "TF_BAD_PAIR",
  BadSubject: "TF_BAD_SUBJECT",
  BadTimeframe: "TF_BAD_TIMEFRAME",
  BadMessage: "TF_BAD_MESSAGE",
  BadCodec: "TF_BAD_CODEC",
  BadConfig: "TF_BAD_CONFIG",
  BadArgs: "TF_BAD_ARGS",
  NatsServerMissing: "TF_NATS_SERVER_MISSING",
  LeaseLost: "TF_LEASE_LOST",
  /** A command waited past its deadline (what it waited for is in the message). */
  Timeout: "TF_TIMEOUT",
  /** Kraken answered with a non-empty `error` array. */
  KrakenApi: "TF_KRAKEN_API",
  /** A REST backfill gave up after its retry budget. */
  KrakenBackfillFailed: "TF_KRAKEN_BACKFILL_FAILED",
  /** Prediction: a registry record kept changing under a compare-and-set update. */
  RegistryConflict: "TF_REGISTRY_CONFLICT",
  /** Prediction: a model artifact named by the registry is missing or does not match its digest. */
  ArtifactMissing: "TF_ARTIFACT_MISSING",
  /** Prediction: too little data to train or evaluate (fewer rows than folds and settings need). */
  NotEnoughData: "TF_NOT_ENOUGH_DATA",
  /** Prediction: the exported ONNX model does not reproduce the in-process model. */
  OnnxMismatch: "TF_ONNX_MISMATCH",
  /** NATS refused our credentials (creds file, user/password or token). */
  NatsAuth: "TF_NATS_AUTH",
  /** The TLS handshake with NATS failed (unknown CA, missing client certificate, TLS required/not offered). */
  NatsTls: "TF_NATS_TLS",
  /** No NATS server answered within the connect deadline. */
  NatsUnreachable: "TF_NATS_UNREACHABLE",
  // --- serving (gateway HTTP errors and the sink) ---
  /** No such route, or a pair that Tickflow does not know. */
  NotFound: "TF_NOT_FOUND",
  /** A known pair that has no value of this kind yet (e.g. no prediction before the first model). */
  NoData: "TF_NO_DATA",
  /** An admin route without `Authorization: Bearer …`. */
  Unauthorized: "TF_UNAUTHORIZED",
  /** An admin route with a wrong token, or with admin disabled (no token configured). */
  Forbidden: "TF_FORBIDDEN",
  /** NATS (or what the answer needs) is not reachable right now; retry. */
  Unavailable: "TF_UNAVAILABLE",
  /** An unexpected failure inside the gateway; the log has the details. */
  Internal: "TF_INTERNAL",
  /** The sink's database refused a statement that retrying cannot fix (schema mismatch). */
  SinkSchema: "TF_SINK_SCHEMA",
  /** A news API or feed answered something unusable (not JSON/XML, an API error, truncated). */
  NewsApi: "TF_NEWS_API",
  /** A recorded-headlines file has a line that cannot be read. */
  BadNewsRecord: "TF_BAD_NEWS_RECORD",
  /** Ollama's answer stayed invalid (not JSON, wrong schema) after the retries. */
  LlmInvalidAnswer: "TF_LLM_INVALID_ANSWER",
  /** Ollama did not answer in time or could not be reached, after the retries. */
  LlmUnavailable: "TF_LLM_UNAVAILABLE",
  /** The bundled sentiment model is missing or does not match its vocabulary. */
  BadModel: "TF_BAD_MODEL",
} as const;
export type ErrorCode = (typeof ErrorCode)[keyof typeof ErrorCode];

export class TickflowError extends Error {
  readonly code: ErrorCode;
  constructor(code: ErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = "TickflowError";
    this.code = code;
  }
}

/** Input that can never be processed (malformed, wrong schema, late): it goes to the DLQ, never crashes an actor. */
export class BadInputError extends TickflowError {
  constructor(message: string, options?: { cause?: unknown }) {
    super(ErrorCode.BadMessage, message, options);
    this.name = "BadInputError";
  }
}

export class ConfigError extends TickflowError {
  constructor(message: string, options?: { cause?: unknown }) {
    super(ErrorCode.BadConfig, message, options);
    this.name = "ConfigError";
  }
}
