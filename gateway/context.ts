// What the routes share: NATS handles, the mirrors of tf_latest / tf_pairs / tf_models, the live
// hub, caches, and the helpers every route uses to read its parameters.
import type { JetStreamClient, JetStreamManager } from "@nats-io/jetstream";
import type { NatsConnection } from "@nats-io/transport-node";
import type { Logger } from "pino";
import { decode } from "../protocol/codec.js";
import { ErrorCode, TickflowError } from "../protocol/errors.js";
import { normalizePair, pairToToken } from "../protocol/pairs.js";
import { subjects } from "../protocol/subjects.js";
import type { Config } from "../supervisor/config.js";
import { decodeLatest, parseLatestKey, type LatestValue } from "../supervisor/latest.js";
import type { PairValue } from "../supervisor/runtime.js";
import { clusterStatus, type ClusterStatus } from "../supervisor/status.js";
import { summarizeOutcomes, type AccuracySummary, type OutcomeLike } from "./accuracy.js";
import { badParam, httpError } from "./errors.js";
import { readHistory } from "./history.js";
import { KvMirror } from "./kv-mirror.js";
import type { LiveHub } from "./live-hub.js";

export type GatewayContext = {
  nc: NatsConnection;
  js: JetStreamClient;
  jsm: JetStreamManager;
  config: Config;
  log: Logger;
  latest: KvMirror<LatestValue>;
  pairs: KvMirror<PairValue>;
  models: KvMirror<unknown>;
  hub: LiveHub;
  /** Pair tokens that have any tf_latest value (a pair with data is known even if removed from tf_pairs). */
  tokensWithData: Set<string>;
  actors(): Promise<ClusterStatus>;
  accuracy: AccuracyBook;
};

export function parseLatest(_key: string, bytes: Uint8Array): LatestValue | null {
  return decodeLatest(bytes);
}

export function parsePairValue(key: string, bytes: Uint8Array): PairValue | null {
  try {
    const v = JSON.parse(new TextDecoder().decode(bytes)) as PairValue;
    return { pair: normalizePair(v.pair ?? key), addedAt: v.addedAt ?? 0 };
  } catch {
    return null;
  }
}

/** Model registry records: JSON or msgpack, whatever the trainer wrote. */
export function parseAny(_key: string, bytes: Uint8Array): unknown {
  try {
    return decode(bytes);
  } catch {
    return new TextDecoder().decode(bytes);
  }
}

/** `BTC-USD`, `BTC%2FUSD` (decoded by the router to `BTC/USD`) or `btc/usd` → `BTC/USD`; 400 naming the parameter. */
export function pairParam(raw: string, where = "params.pair"): string {
  try {
    return normalizePair(decodeURIComponent(raw));
  } catch (err) {
    throw badParam(where, (err as Error).message);
  }
}

/** A well-formed pair that Tickflow knows (in tf_pairs, or with data); else 404. */
export function knownPair(ctx: GatewayContext, raw: string, where = "params.pair"): { pair: string; token: string } {
  const pair = pairParam(raw, where);
  const token = pairToToken(pair);
  if (!ctx.pairs.map.has(token) && !ctx.tokensWithData.has(token)) {
    throw httpError(ErrorCode.NotFound, `unknown pair ${pair}: it is not in tf_pairs and has no data (add it with PUT /v1/pairs/${token})`);
  }
  return { pair, token };
}

/** ms since epoch or ISO 8601 → ms; 400 naming the parameter. */
export function timeParam(raw: string | undefined, where: string): number | undefined {
  if (raw === undefined || raw === "") return undefined;
  if (/^[0-9]{1,15}$/.test(raw)) return Number(raw);
  const t = Date.parse(raw);
  if (!Number.isFinite(t)) throw badParam(where, `"${raw}" is neither milliseconds since the epoch nor an ISO 8601 date-time`);
  return t;
}

export function latestOr404(ctx: GatewayContext, key: string, what: string): LatestValue {
  const v = ctx.latest.map.get(key);
  if (!v) throw httpError(ErrorCode.NoData, `no ${what} yet`);
  return v;
}

/** Single-flight, stale-while-revalidate cache of the cluster status (a status round takes ~0.3 s). */
export function actorsCache(nc: NatsConnection, maxAgeMs = 2000): () => Promise<ClusterStatus> {
  let value: ClusterStatus | null = null;
  let at = 0;
  let inflight: Promise<ClusterStatus> | null = null;
  const refresh = () => {
    inflight ??= (async () => {
      try {
        // Stages: every stage a live member runs (a stage nobody deploys is not listed as stopped).
        const first = value ?? (await clusterStatus(nc, [], { waitMs: 1000 }));
        const stages = [...new Set(first.members.flatMap((m) => m.stages))];
        value = await clusterStatus(nc, stages, { waitMs: 1000 });
        at = Date.now();
        return value;
      } finally {
        inflight = null;
      }
    })();
    return inflight;
  };
  return async () => {
    if (value && Date.now() - at > maxAgeMs) refresh().catch(() => {});
    return value ?? refresh();
  };
}

/** Recent outcomes per (pair, horizon): warmed by a bounded history read, then fed live by the hub. */
export class AccuracyBook {
  private readonly books = new Map<string, { pair: string; horizon: string; outcomes: OutcomeLike[]; summary: AccuracySummary | null; warmed: boolean }>();

  constructor(private readonly js: JetStreamClient, private readonly jsm: JetStreamManager, readonly window = 500) {}

  private key(token: string, horizon: string) {
    return `${horizon}.${token}`;
  }

  /** A live outcome (from the hub); books not yet warmed start from it. */
  add(horizon: string, pair: string, o: OutcomeLike): void {
    const k = this.key(pairToToken(pair), horizon);
    let b = this.books.get(k);
    if (!b) this.books.set(k, (b = { pair, horizon, outcomes: [], summary: null, warmed: false }));
    b.outcomes.push(o);
    if (b.outcomes.length > this.window * 2) b.outcomes.splice(0, b.outcomes.length - this.window);
    b.summary = null;
  }

  async summary(pair: string, horizon: string, n: number): Promise<AccuracySummary> {
    const token = pairToToken(pair);
    const k = this.key(token, horizon);
    let b = this.books.get(k);
    if (!b || (b.outcomes.length < n && !b.warmed)) {
      const items = await readHistory(this.js, this.jsm, {
        stream: "PREDICTIONS", subject: subjects.outcomes(horizon, pair), tsOf: (d) => (d as OutcomeLike).ts_ms,
        limit: Math.max(n, this.window), stepMs: 60_000,
      });
      const live = b?.outcomes ?? [];
      const fromStream = items.map((i) => i.data as OutcomeLike);
      const lastTs = fromStream.length ? fromStream[fromStream.length - 1].ts_ms : -Infinity;
      b = { pair, horizon, outcomes: [...fromStream, ...live.filter((o) => o.ts_ms > lastTs)], summary: null, warmed: true };
      this.books.set(k, b);
    }
    if (n !== this.window) return summarizeOutcomes(b.outcomes.slice(-n));
    b.summary ??= summarizeOutcomes(b.outcomes.slice(-n));
    return b.summary;
  }

  *all(): Iterable<{ pair: string; horizon: string; summary: AccuracySummary }> {
    for (const b of this.books.values()) {
      b.summary ??= summarizeOutcomes(b.outcomes.slice(-this.window));
      yield { pair: b.pair, horizon: b.horizon, summary: b.summary };
    }
  }
}

export { parseLatestKey, TickflowError };
