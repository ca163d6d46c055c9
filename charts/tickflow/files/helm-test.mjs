// `helm test`: the gateway answers /health and /ready, and every stage has running actors
// (`tickflow status --json`, which reads the cluster's leases and members over NATS).
import { execFileSync } from "node:child_process";
const gateway = process.env.GATEWAY_URL;
for (const path of ["/health", "/ready"]) {
  const r = await fetch(gateway + path, { signal: AbortSignal.timeout(10000) });
  if (r.status !== 200) throw new Error(`gateway ${gateway}${path} answered ${r.status}`);
  console.log(`gateway ${path}: ${r.status}`);
}
const stages = process.env.STAGES.split(",").filter(Boolean);
const deadline = Date.now() + 120000;
for (;;) {
  const s = JSON.parse(execFileSync("tickflow", ["status", "--json"], { encoding: "utf8" }));
  const running = new Set(s.actors.filter((a) => a.state === "running").map((a) => a.stage));
  const missing = stages.filter((st) => !running.has(st));
  if (missing.length === 0) {
    console.log(`running actors in every stage: ${stages.join(", ")}`);
    break;
  }
  if (Date.now() > deadline) throw new Error(`no running actor in stage(s) ${missing.join(", ")} after 120 s`);
  await new Promise((r) => setTimeout(r, 3000));
}
