// What a joined-input actor costs next to a single-input one, measured in the same run on the same
// nats-server: its main input is read as a single input is, and each message of its other input
// goes through the journal first (input → JOURNAL append, acked → actor), so both throughput
// (messages applied per second) and latency (input published → the actor's output stored, seen by
// a subscriber on the output subject) are printed for both, with their ratio.
import { connect } from "@nats-io/transport-node";
import { jetstream, jetstreamManager } from "@nats-io/jetstream";
import pino from "pino";
import { decode, encode, publishHeaders } from "../protocol/codec.js";
import { bootstrap } from "../protocol/streams.js";
import type { StreamActorDef } from "../supervisor/actor.js";
import { loadConfig } from "../supervisor/config.js";
import { Supervisor } from "../supervisor/runtime.js";
import { defer } from "./cleanup.js";
import { startNatsServer } from "./nats.js";
import { fixed, int, median, sleep, until } from "./stats.js";

export type JoinedSide = { msgsPerSec: number[]; latencyP50Ms: number; latencyP99Ms: number; latencyMaxMs: number };
export type JoinedResult = {
  messages: number;
  latencySamples: number;
  single: JoinedSide;
  joined: JoinedSide;
  /** median joined msgs/s ÷ median single msgs/s. */
  throughputRatio: number;
};

function actor(stage: string, inputs: string[]): StreamActorDef<{ n: number }> {
  return {
    kind: "stream",
    stage,
    keys: () => ["b1"],
    input: () => (inputs.length === 1 ? { stream: "NEWS", filter: inputs[0] } : inputs.map((f, i) => ({ name: `in${i}`, stream: "NEWS", filter: f }))),
    init: () => ({ n: 0 }),
    receive(s, msg, emit) {
      s.n++;
      emit({ subject: `md.sentiment.bench-${stage}`, msgId: `${stage}:${msg.input}:${msg.seq}`, data: { n: s.n, t: (msg.data as { t: number }).t } });
    },
  };
}

function pctl(xs: number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(p * s.length))];
}

export async function joinedBench(o: { messages: number; runs: number; log: (s: string) => void }): Promise<JoinedResult> {
  const { server, stop } = await startNatsServer("joined bench nats-server");
  const nc = await connect({ servers: server.url });
  const closeNc = defer("joined bench connection", () => nc.close());
  const js = jetstream(nc);
  const config = loadConfig({ env: {} });
  await bootstrap(js, await jetstreamManager(nc), config.storage);
  const h = publishHeaders("msgpack");
  const sides = { single: { rates: [] as number[], lat: [] as number[] }, joined: { rates: [] as number[], lat: [] as number[] } };
  try {
    for (let run = 0; run < o.runs; run++) {
      for (const kind of ["single", "joined"] as const) {
        const stage = `b${kind}${run}`;
        const subjects = kind === "single" ? [`news.raw.${stage}-a`] : [`news.raw.${stage}-a`, `news.raw.${stage}-b`];
        const sup = new Supervisor({ id: `bench-${stage}`, stages: [actor(stage, subjects)], config, nc, js, log: pino({ level: "silent" }) });
        await sup.start();
        try {
          await until(() => sup.cell(stage, "b1")?.status().state === "running", 10_000, `${stage} running`);
          // Throughput: the whole input published (pipelined) at once, timed until every message is applied.
          const t0 = performance.now();
          let acks: Promise<unknown>[] = [];
          for (let i = 0; i < o.messages; i++) {
            acks.push(js.publish(subjects[i % subjects.length], encode({ t: 0, i }, "msgpack"), { headers: h }));
            if (acks.length >= 500) await Promise.all(acks.splice(0));
          }
          await Promise.all(acks);
          acks = [];
          await until(() => (sup.cell(stage, "b1")?.status().processed ?? 0) >= o.messages, 120_000, `${stage} applied ${o.messages}`);
          const rate = o.messages / ((performance.now() - t0) / 1000);
          sides[kind].rates.push(rate);
          // Latency: one message at a time (a candle close is one message), alternating inputs.
          const sub = nc.subscribe(`md.sentiment.bench-${stage}`);
          const seen = (async () => {
            for await (const m of sub) {
              const d = decode(m.data, m.headers?.get("Content-Type") || null) as { t: number };
              if (d.t > 0) sides[kind].lat.push(performance.now() - d.t);
            }
          })();
          const samples = 200;
          const before = sides[kind].lat.length;
          for (let i = 0; i < samples; i++) {
            await js.publish(subjects[i % subjects.length], encode({ t: performance.now(), i }, "msgpack"), { headers: h });
            await until(() => sides[kind].lat.length > before + i, 10_000, `${stage} output ${i}`, 1);
            await sleep(2);
          }
          sub.unsubscribe();
          await seen;
          o.log(`joined bench ${stage}: ${int(rate)} msgs/s; latency p50 ${fixed(pctl(sides[kind].lat.slice(before), 0.5))} ms`);
        } finally {
          await sup.stop();
        }
      }
    }
  } finally {
    await closeNc();
    await stop();
  }
  const side = (k: "single" | "joined"): JoinedSide => ({
    msgsPerSec: sides[k].rates, latencyP50Ms: pctl(sides[k].lat, 0.5), latencyP99Ms: pctl(sides[k].lat, 0.99), latencyMaxMs: Math.max(...sides[k].lat),
  });
  const single = side("single");
  const joined = side("joined");
  return { messages: o.messages, latencySamples: sides.single.lat.length, single, joined, throughputRatio: median(joined.msgsPerSec) / median(single.msgsPerSec) };
}

export function formatJoined(r: JoinedResult, line: (s?: string) => void): void {
  line();
  line(`4. Joined inputs: one actor with two inputs (journal) next to one with a single input, same server`);
  const row = (name: string, s: JoinedSide) =>
    line(`   ${name.padEnd(8)} ${s.msgsPerSec.map((x) => int(x)).join(" · ")} msgs/s (median ${int(median(s.msgsPerSec))}) · latency p50 ${fixed(s.latencyP50Ms)} ms, p99 ${fixed(s.latencyP99Ms)} ms, max ${fixed(s.latencyMaxMs)} ms`);
  row("single", r.single);
  row("joined", r.joined);
  line(`   ratio    joined / single throughput = ${fixed(r.throughputRatio, 2)} · ${int(r.messages)} messages per throughput run, ${r.latencySamples} latency samples per kind (one at a time, publish → output seen)`);
}
