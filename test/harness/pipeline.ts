// Helpers to drive actors without the Kraken source: publish recorded trades straight into
// md.trades.<pair> exactly as the trades stage would (same dedup ids), and run supervisors.
import type { JetStreamClient } from "@nats-io/jetstream";
import pino from "pino";
import { encode, publishHeaders } from "../../protocol/codec.js";
import { pairToToken } from "../../protocol/pairs.js";
import { addPairs } from "../../supervisor/desired-pairs.js";
import { subjects } from "../../protocol/subjects.js";
import type { ActorDef } from "../../supervisor/actor.js";
import { loadConfig, type Config } from "../../supervisor/config.js";
import { Supervisor } from "../../supervisor/runtime.js";
import type { Env } from "./nats.js";
import { toTrade, type RawTrade } from "./data.js";

export const quietLog = pino({ level: process.env.TEST_LOG ?? "silent" });

export function testConfig(env: Record<string, string> = {}): Config {
  return loadConfig({ env: { TICKFLOW_LEASE_TTL_MS: "1500", TICKFLOW_LEASE_RENEW_MS: "300", TICKFLOW_HEARTBEAT_MS: "300", TICKFLOW_MEMBER_TTL_MS: "1500", ...env } });
}

export async function publishTrades(js: JetStreamClient, raw: RawTrade[], pair = raw[0].symbol): Promise<number> {
  const token = pairToToken(pair);
  let last = 0;
  const pending: Promise<{ seq: number }>[] = [];
  for (const r of raw) {
    const t = toTrade(r);
    pending.push(js.publish(subjects.trades(pair), encode(t, "msgpack"), { msgID: `${token}:${t.trade_id}`, headers: publishHeaders("msgpack") }));
    if (pending.length >= 1000) for (const a of pending.splice(0)) last = Math.max(last, (await a).seq);
  }
  for (const a of pending) last = Math.max(last, (await a).seq);
  return last;
}

export async function publishEos(js: JetStreamClient, pair: string, last: RawTrade): Promise<number> {
  const t = toTrade(last);
  const w = { v: 1, kind: "watermark", pair, ts_ms: t.ts_ms, eos: true, last_trade_id: t.trade_id, last_trade_ts: t.ts_ms };
  return (await js.publish(subjects.trades(pair), encode(w, "msgpack"), { msgID: `${pairToToken(pair)}:eos`, headers: publishHeaders("msgpack") })).seq;
}

export async function addPair(js: JetStreamClient, pair: string): Promise<void> {
  await addPairs(js, [pair]);
}

export async function startSupervisor(env: Env, id: string, stages: ActorDef[], config = testConfig()): Promise<Supervisor> {
  const sup = new Supervisor({ id, stages, config, nc: env.nc, js: env.js, log: quietLog });
  await sup.start();
  return sup;
}
