// A KV bucket watched into memory: reads are map lookups, never requests to NATS. Used for
// tf_latest (newest values per series), tf_pairs (known pairs) and tf_models (model registry).
import type { KV } from "@nats-io/kv";
import type { Logger } from "pino";
import { nextTurn, sliceUsedUp } from "../supervisor/time-slice.js";

export class KvMirror<T> {
  readonly map = new Map<string, T>();
  /** Bumped on every change: lets callers cache what they derive from the map. */
  version = 0;
  private stopFn: (() => void) | null = null;
  private readyFlag = false;
  private listeners = new Set<(key: string, value: T | null) => void>();

  constructor(private readonly kv: KV, private readonly parse: (key: string, bytes: Uint8Array) => T | null, private readonly log: Logger) {}

  get ready(): boolean {
    return this.readyFlag;
  }

  /** Resolves once the current contents are loaded; updates keep flowing until stop(). */
  async start(): Promise<void> {
    const st = await this.kv.status();
    let initial = st.values;
    const w = await this.kv.watch();
    this.stopFn = () => w.stop();
    let markReady: () => void = () => {};
    const ready = new Promise<void>((r) => (markReady = r));
    if (initial === 0) {
      this.readyFlag = true;
      markReady();
    }
    (async () => {
      for await (const e of w) {
        // At 1,000 pairs a minute's close is thousands of updates: the gateway's requests get a turn between slices.
        while (sliceUsedUp()) await nextTurn();
        const v = e.operation === "PUT" && e.length > 0 ? this.parse(e.key, e.value) : null;
        if (v === null) this.map.delete(e.key);
        else this.map.set(e.key, v);
        this.version++;
        for (const l of this.listeners) l(e.key, v);
        if (!this.readyFlag && (--initial <= 0 || e.delta === 0)) {
          this.readyFlag = true;
          markReady();
        }
      }
    })().catch((err) => this.log.error({ err: (err as Error).message }, "KV watch ended"));
    await ready;
  }

  onChange(fn: (key: string, value: T | null) => void): () => void {
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  }

  stop(): void {
    this.stopFn?.();
    this.stopFn = null;
  }
}
