// The desired pairs (the tf_pairs bucket): the source of truth for what runs. Supervisors watch
// it; these are the writes the CLI, the gateway and the tests make.
import type { JetStreamClient } from "@nats-io/jetstream";
import { normalizePair, pairToToken } from "../protocol/pairs.js";
import { BUCKETS, bucketKeys, openBuckets } from "../protocol/streams.js";

/** Adds pairs that are not there yet (an existing entry keeps its settings and `addedAt`). */
export async function addPairs(js: JetStreamClient, pairs: string[]): Promise<void> {
  const kv = await openBuckets(js);
  for (const p of pairs) {
    const e = await kv.pairs.get(pairToToken(p));
    if (e && e.operation === "PUT") continue;
    await kv.pairs.put(pairToToken(p), JSON.stringify({ pair: p, addedAt: Date.now() }));
  }
}

export async function removePairs(js: JetStreamClient, pairs: string[]): Promise<void> {
  const kv = await openBuckets(js);
  for (const p of pairs) await kv.pairs.delete(pairToToken(p));
}

export async function listPairs(js: JetStreamClient): Promise<string[]> {
  const kv = await openBuckets(js);
  const out: string[] = [];
  for (const k of await bucketKeys(await js.jetstreamManager(), BUCKETS.pairs)) {
    const e = await kv.pairs.get(k);
    if (e && e.operation === "PUT") out.push(normalizePair(k));
  }
  return out.sort();
}
