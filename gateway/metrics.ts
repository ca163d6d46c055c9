// GET /metrics: Prometheus text from a registry of this app (not prom-client's global one, so
// several apps in one process — tests, benchmarks — do not collide). Actor figures are read when
// scraped, from the same cached cluster status as GET /v1/actors.
import { collectDefaultMetrics, Counter, Gauge, Registry } from "prom-client";
import type { ClusterStatus } from "../supervisor/status.js";
import type { AccuracySummary } from "./accuracy.js";

export type GatewayMetrics = {
  registry: Registry;
  predictionsSeen: Counter<"pair" | "horizon">;
  outcomesSeen: Counter<"pair" | "horizon">;
  sseClients: Gauge;
};

export function createMetrics(opts: {
  actors: () => Promise<ClusterStatus>;
  accuracy: () => Iterable<{ pair: string; horizon: string; summary: AccuracySummary }>;
  sseClients: () => number;
  /** A series per actor besides the per-stage totals (config metrics.perActor). */
  perActor: boolean;
}): GatewayMetrics {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: "tickflow_gateway_" });
  const labels = ["stage", "pair", "owner"] as const;
  const lag = new Gauge({ name: "tickflow_actor_lag", help: "Messages pending for the actor's input", labelNames: labels, registers: [registry] });
  const processed = new Gauge({ name: "tickflow_actor_messages_processed", help: "Inputs the actor applied since it started", labelNames: labels, registers: [registry] });
  const published = new Gauge({ name: "tickflow_actor_messages_published", help: "Outputs the actor published since it started", labelNames: labels, registers: [registry] });
  const dead = new Gauge({ name: "tickflow_actor_dead_letters", help: "Inputs the actor sent to the DLQ since it started", labelNames: labels, registers: [registry] });
  const restarts = new Gauge({ name: "tickflow_actor_restarts", help: "Restarts of the actor", labelNames: labels, registers: [registry] });
  const up = new Gauge({ name: "tickflow_actor_running", help: "1 when the actor is running, 0 otherwise", labelNames: [...labels, "state"], registers: [registry] });
  // Per stage over the whole cluster: a bounded number of series whatever the number of pairs.
  const stageLabels = ["stage"] as const;
  const stageLag = new Gauge({ name: "tickflow_stage_lag", help: "Messages pending for the inputs of the stage's actors", labelNames: stageLabels, registers: [registry] });
  const stageProcessed = new Gauge({ name: "tickflow_stage_messages_processed", help: "Inputs the stage's actors applied since they started", labelNames: stageLabels, registers: [registry] });
  const stagePublished = new Gauge({ name: "tickflow_stage_messages_published", help: "Outputs the stage's actors published since they started", labelNames: stageLabels, registers: [registry] });
  const stageDead = new Gauge({ name: "tickflow_stage_dead_letters", help: "Inputs the stage's actors sent to the DLQ since they started", labelNames: stageLabels, registers: [registry] });
  const stageRestarts = new Gauge({ name: "tickflow_stage_restarts", help: "Restarts of the stage's actors", labelNames: stageLabels, registers: [registry] });
  const stageActors = new Gauge({ name: "tickflow_stage_actors", help: "Actors of the stage by state", labelNames: ["stage", "state"] as const, registers: [registry] });
  new Gauge({
    name: "tickflow_members", help: "Live Tickflow processes", registers: [registry],
    async collect() {
      const s = await opts.actors();
      this.set(s.members.length);
      for (const g of [lag, processed, published, dead, restarts, up, stageLag, stageProcessed, stagePublished, stageDead, stageRestarts, stageActors]) g.reset();
      for (const a of s.actors) {
        const st = { stage: a.stage };
        if (a.lag !== null) stageLag.inc(st, a.lag);
        stageProcessed.inc(st, a.processed);
        stagePublished.inc(st, a.published);
        stageDead.inc(st, a.deadLetters);
        stageRestarts.inc(st, a.restarts);
        stageActors.inc({ stage: a.stage, state: a.state }, 1);
        if (!opts.perActor) continue;
        const owner = a.owner ?? "";
        const l = { stage: a.stage, pair: a.pair, owner };
        if (a.lag !== null) lag.set(l, a.lag);
        processed.set(l, a.processed);
        published.set(l, a.published);
        dead.set(l, a.deadLetters);
        restarts.set(l, a.restarts);
        up.set({ stage: a.stage, pair: a.pair, owner, state: a.state }, a.state === "running" ? 1 : 0);
      }
      // Every stage with actors has each series, 0 when none of its actors has a lag (source actors).
      for (const stage of new Set(s.actors.map((a) => a.stage))) for (const g of [stageLag, stageProcessed, stagePublished, stageDead, stageRestarts]) g.inc({ stage }, 0);
    },
  });
  const acc = ["pair", "horizon"] as const;
  const mae = new Gauge({ name: "tickflow_live_mae", help: "Mean absolute price error of the live model over recent outcomes", labelNames: acc, registers: [registry] });
  const maeP = new Gauge({ name: "tickflow_live_mae_persistence", help: "Mean absolute price error of the persistence baseline over the same outcomes", labelNames: acc, registers: [registry] });
  new Gauge({
    name: "tickflow_live_skill", help: "1 - mae / mae_persistence over recent outcomes (> 0: the model beats persistence)", labelNames: acc, registers: [registry],
    collect() {
      this.reset();
      mae.reset();
      maeP.reset();
      for (const { pair, horizon, summary } of opts.accuracy()) {
        const l = { pair, horizon };
        if (summary.skill !== null) this.set(l, summary.skill);
        if (summary.mae !== null) mae.set(l, summary.mae);
        if (summary.mae_persistence !== null) maeP.set(l, summary.mae_persistence);
      }
    },
  });
  const predictionsSeen = new Counter({ name: "tickflow_predictions_total", help: "Predictions this gateway saw on ml.predictions.>", labelNames: acc, registers: [registry] });
  const outcomesSeen = new Counter({ name: "tickflow_outcomes_total", help: "Outcomes this gateway saw on ml.outcomes.>", labelNames: acc, registers: [registry] });
  const sseClients = new Gauge({ name: "tickflow_gateway_sse_clients", help: "Connected SSE clients", registers: [registry], collect() { this.set(opts.sseClients()); } });
  return { registry, predictionsSeen, outcomesSeen, sseClients };
}
