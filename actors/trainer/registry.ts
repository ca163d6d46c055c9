// The model registry in JetStream: records in KV `tf_models` (`<PAIR-TOKEN>.<h>`, JSON), each
// run in full under `run.<PAIR-TOKEN>.<h>.<run_id>`, and ONNX artifacts in the object store
// `tf_artifacts`. Record updates are compare-and-set on the KV revision, so two writers (a CLI
// promote and a trainer) never lose each other's change.
import { createHash } from "node:crypto";
import type { JetStreamClient } from "@nats-io/jetstream";
import { Kvm, type KV } from "@nats-io/kv";
import { Objm, type ObjectStore } from "@nats-io/obj";
import { ErrorCode, TickflowError } from "../../protocol/errors.js";
import { pairToToken } from "../../protocol/pairs.js";
import { ARTIFACTS_BUCKET, BUCKETS } from "../../protocol/streams.js";
import { timeframeMs } from "../../protocol/timeframes.js";
import { emptyRecord, type RegistryRecord } from "./registry-record.js";
import { kvEntryOf, LastMsgLoader } from "../../supervisor/state-prefetch.js";

export function recordKey(pair: string, horizon: string): string {
  return `${pairToToken(pair)}.${horizon}`;
}

export function runKey(pair: string, horizon: string, runId: string): string {
  return `run.${recordKey(pair, horizon)}.${runId}`;
}

export function artifactName(pair: string, horizon: string, version: number): string {
  return `${pairToToken(pair)}/${horizon}/v${version}.onnx`;
}

export function sha256(bytes: Uint8Array): string {
  return createHash("sha256").update(bytes).digest("hex");
}

const utf8 = new TextEncoder();
const utf8d = new TextDecoder();

const opened = new WeakMap<JetStreamClient, Promise<Registry>>();

export class Registry {
  /**
   * Record reads (not runs: `*.*` is two tokens, a run key four) of one event-loop turn together:
   * every trainer actor of a pass reads its pair's records as it starts, and in a fresh system one
   * request answers all of them (state-prefetch.ts).
   */
  private readonly records: LastMsgLoader;

  private constructor(readonly kv: KV, readonly obj: ObjectStore, js: JetStreamClient) {
    this.records = new LastMsgLoader(js, `KV_${BUCKETS.models}`, `$KV.${BUCKETS.models}.*.*`);
  }

  /** Opened once per client (opening asks the server for two streams' info; every trainer actor has a registry). */
  static open(js: JetStreamClient): Promise<Registry> {
    let r = opened.get(js);
    if (!r) {
      r = (async () => new Registry(await new Kvm(js).open(BUCKETS.models), await new Objm(js).open(ARTIFACTS_BUCKET), js))();
      r.catch(() => opened.delete(js));
      opened.set(js, r);
    }
    return r;
  }

  async get(pair: string, horizon: string): Promise<{ record: RegistryRecord; revision: number }> {
    const key = recordKey(pair, horizon);
    const m = await this.records.get(`$KV.${BUCKETS.models}.${key}`);
    const e = m && kvEntryOf(m);
    if (!e || e.operation !== "PUT" || e.length === 0) return { record: emptyRecord(pair, horizon, timeframeMs(horizon) / 1000), revision: 0 };
    return { record: parseRecord(e.value, key), revision: e.revision };
  }

  /** Applies `change` to the current record with compare-and-set, retrying on a concurrent write. */
  async update(pair: string, horizon: string, change: (r: RegistryRecord) => RegistryRecord): Promise<RegistryRecord> {
    const key = recordKey(pair, horizon);
    for (let attempt = 0; ; attempt++) {
      const { record, revision } = await this.get(pair, horizon);
      const next = change(record);
      if (next === record) return record;
      const bytes = utf8.encode(JSON.stringify(next));
      try {
        if (revision === 0) await this.kv.create(key, bytes);
        else await this.kv.update(key, bytes, revision);
        return next;
      } catch (err) {
        if (attempt >= 10) throw new TickflowError(ErrorCode.RegistryConflict, `tf_models ${key}: gave up after ${attempt + 1} concurrent updates`, { cause: err });
      }
    }
  }

  async putRun(pair: string, horizon: string, runId: string, run: unknown): Promise<void> {
    await this.kv.put(runKey(pair, horizon, runId), utf8.encode(JSON.stringify(run)));
  }

  async getRun(pair: string, horizon: string, runId: string): Promise<unknown | null> {
    const e = await this.kv.get(runKey(pair, horizon, runId));
    return e && e.operation === "PUT" && e.length ? JSON.parse(utf8d.decode(e.value)) : null;
  }

  /** Every (pair, horizon) with a record. */
  async list(): Promise<{ pair: string; horizon: string }[]> {
    const out: { pair: string; horizon: string }[] = [];
    for await (const k of await this.kv.keys()) {
      if (k.startsWith("run.")) continue;
      const [token, horizon] = k.split(".");
      if (token && horizon) out.push({ pair: token.replace("-", "/"), horizon });
    }
    return out.sort((a, b) => (a.pair + a.horizon).localeCompare(b.pair + b.horizon));
  }

  async putArtifact(name: string, bytes: Uint8Array): Promise<string> {
    const digest = sha256(bytes);
    await this.obj.putBlob({ name, description: `ONNX model, sha256 ${digest}` }, bytes);
    return digest;
  }

  /** The artifact's bytes, checked against the digest the record names. */
  async getArtifact(name: string, digest: string): Promise<Uint8Array> {
    const bytes = await this.obj.getBlob(name);
    if (!bytes) throw new TickflowError(ErrorCode.ArtifactMissing, `object ${name} is not in ${ARTIFACTS_BUCKET}`);
    const got = sha256(bytes);
    if (got !== digest) throw new TickflowError(ErrorCode.ArtifactMissing, `object ${name} in ${ARTIFACTS_BUCKET} has sha256 ${got}, the registry names ${digest}`);
    return bytes;
  }
}

export function parseRecord(bytes: Uint8Array, where: string): RegistryRecord {
  let r: RegistryRecord;
  try {
    r = JSON.parse(utf8d.decode(bytes));
  } catch (err) {
    throw new TickflowError(ErrorCode.BadMessage, `tf_models ${where}: not JSON (${(err as Error).message})`);
  }
  if (!r || r.v !== 1 || typeof r.pair !== "string" || !r.champion || !Array.isArray(r.versions)) {
    throw new TickflowError(ErrorCode.BadMessage, `tf_models ${where}: not a registry record (v 1 with pair, champion, versions)`);
  }
  return r;
}
