// The HTTP endpoints Kubernetes probes on a worker (`tickflow run --health-port N`, or
// TICKFLOW_HEALTH_PORT): /healthz is liveness (the process is up and its NATS connection is
// connected), /readyz is readiness (the supervisor started and its watches have their initial
// state), /metrics is Prometheus text about this process's actors. node:http only: a worker has no
// web framework, and three routes do not need one.
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { NatsConnection } from "@nats-io/transport-node";
import type { ActorStatus } from "./actor-cell.js";

export const HEALTH_PATHS = { live: "/healthz", ready: "/readyz", metrics: "/metrics" } as const;

export type HealthOptions = {
  /** 0 = any free port (tests). */
  port: number;
  host?: string;
  nc: NatsConnection;
  /** True when the process can do its work (e.g. () => sup?.isReady() ?? false). */
  ready: () => boolean;
  /** Prometheus exposition text for /metrics; without it /metrics is 404. */
  metrics?: () => string;
};

export type HealthServer = { port: number; close(): Promise<void> };

type NatsState = "connected" | "disconnected" | "closed";

/** Starts listening; resolves once the port is bound. */
export async function startHealthServer(o: HealthOptions): Promise<HealthServer> {
  let nats: NatsState = o.nc.isClosed() ? "closed" : "connected";
  // The client reports transitions; a probe reads the last one (no work per request).
  void (async () => {
    for await (const s of o.nc.status()) {
      if (s.type === "disconnect") nats = "disconnected";
      else if (s.type === "reconnect") nats = "connected";
    }
  })().catch(() => {});
  void o.nc.closed().then(() => {
    nats = "closed";
  });

  const reply = (res: ServerResponse, ok: boolean, body: Record<string, unknown>) => {
    res.writeHead(ok ? 200 : 503, { "content-type": "application/json", "cache-control": "no-store" });
    res.end(JSON.stringify({ status: ok ? "ok" : "unavailable", ...body }));
  };
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const path = (req.url ?? "/").split("?")[0];
    if (req.method !== "GET" && req.method !== "HEAD") {
      res.writeHead(405, { allow: "GET, HEAD" }).end();
      return;
    }
    if (path === HEALTH_PATHS.live) return reply(res, nats === "connected", { nats });
    if (path === HEALTH_PATHS.ready) {
      const ready = nats === "connected" && o.ready();
      return reply(res, ready, { nats, ready });
    }
    if (path === HEALTH_PATHS.metrics && o.metrics) {
      res.writeHead(200, { "content-type": "text/plain; version=0.0.4; charset=utf-8" });
      res.end(o.metrics());
      return;
    }
    res.writeHead(404, { "content-type": "application/json" }).end(JSON.stringify({ error: `no route ${path}; try ${Object.values(HEALTH_PATHS).join(", ")}` }));
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", (err) => reject(new Error(`health endpoint cannot listen on ${o.host ?? "0.0.0.0"}:${o.port}: ${err.message}`, { cause: err })));
    server.listen(o.port, o.host ?? "0.0.0.0", () => resolve());
  });
  return {
    port: (server.address() as { port: number }).port,
    close: () => new Promise<void>((resolve) => {
      server.close(() => resolve());
      server.closeAllConnections();
    }),
  };
}

/**
 * Prometheus text for one process: per stage, actors by state and the sums of the actors' counters
 * and lags (bounded by the number of stages, whatever the number of pairs); with `perActor`, each
 * actor's counters and lag too, by key (pair, source, "pool").
 */
export function actorMetrics(member: string, actors: ActorStatus[], perActor = true): string {
  const esc = (v: string) => v.replace(/\\/g, "\\\\").replace(/"/g, '\\"').replace(/\n/g, "\\n");
  const lines: string[] = [];
  const byState = new Map<string, number>();
  for (const a of actors) {
    const k = `${a.stage}\u0000${a.state}`;
    byState.set(k, (byState.get(k) ?? 0) + 1);
  }
  lines.push("# HELP tickflow_actors Actors in this process by stage and state.", "# TYPE tickflow_actors gauge");
  for (const [k, n] of [...byState].sort()) {
    const [stage, state] = k.split("\u0000");
    lines.push(`tickflow_actors{member="${esc(member)}",stage="${esc(stage)}",state="${esc(state)}"} ${n}`);
  }
  const counters: [keyof ActorStatus, string, string][] = [
    ["processed", "tickflow_actor_processed_total", "Inputs applied."],
    ["published", "tickflow_actor_published_total", "Outputs published."],
    ["deadLetters", "tickflow_actor_dead_letters_total", "Inputs sent to the dead-letter stream."],
    ["restarts", "tickflow_actor_restarts_total", "Restarts after a crash."],
  ];
  const stages = [...new Set(actors.map((a) => a.stage))].sort();
  for (const [field, name, help] of counters) {
    const total = name.replace("tickflow_actor_", "tickflow_stage_");
    lines.push(`# HELP ${total} ${help} Sum over the stage's actors in this process.`, `# TYPE ${total} counter`);
    for (const st of stages) lines.push(`${total}{member="${esc(member)}",stage="${esc(st)}"} ${actors.reduce((n, a) => (a.stage === st ? n + (a[field] as number) : n), 0)}`);
  }
  lines.push("# HELP tickflow_stage_lag Messages pending for the inputs of the stage's actors in this process.", "# TYPE tickflow_stage_lag gauge");
  for (const st of stages) lines.push(`tickflow_stage_lag{member="${esc(member)}",stage="${esc(st)}"} ${actors.reduce((n, a) => (a.stage === st && a.lag !== null ? n + a.lag : n), 0)}`);
  if (!perActor) return lines.join("\n") + "\n";
  for (const [field, name, help] of counters) {
    lines.push(`# HELP ${name} ${help}`, `# TYPE ${name} counter`);
    for (const a of actors) lines.push(`${name}{member="${esc(member)}",stage="${esc(a.stage)}",key="${esc(a.key ?? a.pair ?? "")}"} ${a[field] as number}`);
  }
  lines.push("# HELP tickflow_actor_lag Messages pending for the actor's input.", "# TYPE tickflow_actor_lag gauge");
  for (const a of actors) if (a.lag !== null) lines.push(`tickflow_actor_lag{member="${esc(member)}",stage="${esc(a.stage)}",key="${esc(a.key ?? a.pair ?? "")}"} ${a.lag}`);
  return lines.join("\n") + "\n";
}
