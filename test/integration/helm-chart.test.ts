// The Helm chart, checked offline with the real helm binary: `helm lint --strict` and
// `helm template` for the default values and for non-default ones; every rendered manifest
// validated against the Kubernetes schemas (kubernetes-models); assertions on what renders.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseAllDocuments, stringify } from "yaml";
import { plugins } from "../../bin/stages.js";
import { TABLES } from "../../actors/sink/mod.js";
import { HEALTH_PATHS } from "../../supervisor/health.js";
import { ROOT } from "../harness/data.js";
import { extractHelm, type Helm } from "../harness/helm.js";

const CHART = join(ROOT, "charts", "tickflow");
const STAGES = ["trades", "candles", "indicators", "news", "scorer", "sentiment", "predictor", "trainer", "sink"];
/** What this build's `tickflow` runs: stage names for `run --stages`, and commands (the sink is `sink run`). */
const CLI_STAGES = new Set(plugins.flatMap((p) => (p.stages ?? []).map((s) => s.stage)));
const CLI_COMMANDS = new Set(plugins.flatMap((p) => (p.commands ?? []).map((c) => c.name)));
const commandOf = (stage: string) => (stage === "sink" ? ["tickflow", "sink", "run"] : ["tickflow", "run", "--stages", stage]);
const ALL_ON = Object.fromEntries(STAGES.map((s) => [s, { enabled: true }]));
/** The gateway's probe routes (gateway/: GET /health and /ready). */
const GATEWAY_PROBES = { live: "/health", ready: "/ready" };

type K8s = { apiVersion: string; kind: string; metadata: { name: string; labels?: Record<string, string>; annotations?: Record<string, string> }; [k: string]: any };

let helm: Helm;
let dir: string;
before(() => {
  helm = extractHelm();
  dir = mkdtempSync(join(tmpdir(), "tickflow-chart-"));
});
after(() => {
  helm?.cleanup();
  rmSync(dir, { recursive: true, force: true });
});

let valuesFiles = 0;
function valuesFile(v: unknown): string {
  const f = join(dir, `values-${valuesFiles++}.yaml`);
  writeFileSync(f, stringify(v));
  return f;
}

async function render(values?: unknown, extra: string[] = []): Promise<K8s[]> {
  const args = ["template", "tf", CHART, "--namespace", "markets", ...(values ? ["-f", valuesFile(values)] : []), ...extra];
  const r = await helm.run(args);
  assert.equal(r.code, 0, `helm ${args.join(" ")}:\n${r.stderr}`);
  return parseAllDocuments(r.stdout).map((d) => d.toJS()).filter(Boolean) as K8s[];
}

/** Validates one manifest with the kubernetes-models class for its apiVersion and kind. */
async function validate(m: K8s): Promise<void> {
  const [group, version] = m.apiVersion.includes("/") ? m.apiVersion.split("/") : ["", m.apiVersion];
  const path = group ? `kubernetes-models/${group}/${version}/${m.kind}` : `kubernetes-models/v1/${m.kind}`;
  const mod = await import(path).catch((err) => assert.fail(`no schema for ${m.apiVersion} ${m.kind}: ${(err as Error).message}`));
  const Model = mod[m.kind];
  assert.ok(Model, `kubernetes-models has no ${m.kind} in ${path}`);
  try {
    new Model(m).validate();
  } catch (err) {
    assert.fail(`${m.kind}/${m.metadata.name} is not a valid ${m.apiVersion} ${m.kind}: ${(err as Error).message}`);
  }
}

const all = (ms: K8s[], kind: string) => ms.filter((m) => m.kind === kind);
const one = (ms: K8s[], kind: string, name: string) => {
  const m = ms.find((x) => x.kind === kind && x.metadata.name === name);
  assert.ok(m, `${kind} ${name} rendered (have: ${ms.map((x) => `${x.kind}/${x.metadata.name}`).join(", ")})`);
  return m;
};
const deployment = (ms: K8s[], component: string) => one(ms, "Deployment", `tf-tickflow-${component}`);
const container = (d: K8s) => d.spec.template.spec.containers[0];
const settings = (ms: K8s[]) => one(ms, "ConfigMap", "tf-tickflow-settings").data as Record<string, string>;

const NON_DEFAULT = {
  nats: { enabled: false, url: "nats://nats.infra.svc:4222" },
  stages: { candles: { replicas: 3 } },
  gateway: { ingress: { enabled: true, className: "nginx", host: "tickflow.test", tlsSecretName: "tickflow-tls" }, autoscaling: { enabled: true, minReplicas: 2, maxReplicas: 5 } },
};

describe("lint", () => {
  test("helm chart - lint --strict passes for the default values and for external NATS, 3 candles, ingress and HPA", async () => {
    for (const extra of [[], ["-f", valuesFile(NON_DEFAULT)]]) {
      const r = await helm.run(["lint", "--strict", CHART, ...extra]);
      assert.equal(r.code, 0, `helm lint --strict ${extra.join(" ")}:\n${r.stdout}\n${r.stderr}`);
      assert.match(r.stdout, /1 chart\(s\) linted, 0 chart\(s\) failed/);
    }
  });
});

describe("default values", () => {
  let ms: K8s[];
  before(async () => {
    ms = await render();
  });

  test("helm chart - every rendered manifest (ours and the NATS subchart's) validates against the Kubernetes schemas", async () => {
    assert.ok(ms.length > 15, `${ms.length} manifests`);
    for (const m of ms) await validate(m);
  });

  test("helm chart - a Deployment for every stage this build of tickflow runs, and none for stages it does not have yet", async () => {
    const values = (await import("yaml")).parse(readFileSync(join(CHART, "values.yaml"), "utf8"));
    for (const stage of STAGES) {
      const known = stage === "sink" ? CLI_COMMANDS.has("sink") : CLI_STAGES.has(stage);
      assert.equal(values.stages[stage].enabled, known, `stages.${stage}.enabled should be ${known}: the CLI ${known ? "runs" : "does not know"} it`);
      const d = ms.find((m) => m.kind === "Deployment" && m.metadata.name === `tf-tickflow-${stage}`);
      assert.equal(Boolean(d), known, `Deployment for ${stage}`);
      if (!d) continue;
      assert.deepEqual(container(d).command, commandOf(stage));
      assert.equal(d.spec.replicas, values.stages[stage].replicas, `${stage} replicas`);
      assert.equal(d.spec.template.metadata.labels["app.kubernetes.io/component"], stage);
    }
    assert.ok(CLI_COMMANDS.has("gateway"));
    assert.deepEqual(container(deployment(ms, "gateway")).command, ["tickflow", "gateway"]);
    assert.equal(deployment(ms, "gateway").spec.replicas, values.gateway.replicas);
  });

  test("helm chart - with every stage enabled, each Deployment's command names its stage", async () => {
    const on = await render({ stages: ALL_ON });
    for (const stage of STAGES) assert.deepEqual(container(deployment(on, stage)).command, commandOf(stage));
    assert.equal(all(on, "Deployment").length, STAGES.length + 1);
  });

  test("helm chart - probes point at the endpoints the processes serve", async () => {
    const on = await render({ stages: ALL_ON });
    const port = Number(settings(on).TICKFLOW_HEALTH_PORT);
    assert.ok(port > 0);
    for (const stage of STAGES) {
      const c = container(deployment(on, stage));
      const named = Object.fromEntries(c.ports.map((p: any) => [p.name, p.containerPort]));
      assert.equal(named.health, port, `${stage}: the health port is the one TICKFLOW_HEALTH_PORT opens`);
      for (const [probe, path] of [["livenessProbe", HEALTH_PATHS.live], ["readinessProbe", HEALTH_PATHS.ready], ["startupProbe", HEALTH_PATHS.live]]) {
        assert.equal(c[probe].httpGet.path, path, `${stage} ${probe}`);
        assert.equal(c[probe].httpGet.port, "health", `${stage} ${probe} port`);
      }
    }
    const g = container(deployment(ms, "gateway"));
    assert.equal(g.ports[0].containerPort, Number(settings(ms).PORT), "tickflow gateway listens on PORT");
    assert.equal(g.livenessProbe.httpGet.path, GATEWAY_PROBES.live);
    assert.equal(g.readinessProbe.httpGet.path, GATEWAY_PROBES.ready);
    // Once the gateway is in this checkout, its routes must include the probed paths.
    const gw = join(ROOT, "gateway");
    if (existsSync(gw)) {
      const src = readdirSync(gw, { recursive: true }).filter((f) => String(f).endsWith(".ts")).map((f) => readFileSync(join(gw, String(f)), "utf8")).join("\n");
      for (const p of Object.values(GATEWAY_PROBES)) assert.ok(src.includes(`"${p}"`), `gateway/ serves ${p}`);
    }
  });

  test("helm chart - pods run non-root with a read-only root filesystem, a writable /tmp and resources", () => {
    for (const d of all(ms, "Deployment").filter((x) => x.metadata.name.startsWith("tf-tickflow-"))) {
      const pod = d.spec.template.spec;
      assert.equal(pod.securityContext.runAsNonRoot, true);
      assert.ok(pod.securityContext.runAsUser > 0);
      const c = pod.containers[0];
      assert.equal(c.securityContext.readOnlyRootFilesystem, true, d.metadata.name);
      assert.equal(c.securityContext.allowPrivilegeEscalation, false);
      assert.ok(c.volumeMounts.some((v: any) => v.mountPath === "/tmp"), "/tmp is writable (tsx cache, data dir)");
      assert.ok(c.resources.requests.cpu && c.resources.limits.memory, `${d.metadata.name} resources`);
    }
  });

  test("helm chart - NATS from the subchart with JetStream on file storage; the processes' NATS_URL is its service", () => {
    const sts = one(ms, "StatefulSet", "tf-nats");
    const pvc = sts.spec.volumeClaimTemplates.find((v: any) => v.metadata.name === "tf-nats-js");
    assert.ok(pvc, "a JetStream PVC");
    assert.ok(sts.spec.template.spec.containers[0].volumeMounts.some((v: any) => v.name === "tf-nats-js" && v.mountPath === "/data"), "mounted at the store dir");
    const conf = one(ms, "ConfigMap", "tf-nats-config").data["nats.conf"];
    assert.match(conf, /jetstream/);
    assert.match(conf, /"store_dir": "\/data"/);
    const url = new URL(settings(ms).NATS_URL);
    const svc = one(ms, "Service", url.hostname);
    assert.ok(svc.spec.ports.some((p: any) => p.port === Number(url.port)), `service ${url.hostname} exposes ${url.port}`);
  });

  test("helm chart - the bootstrap hook Job seeds the pairs; the helm test pod checks the gateway and the actors", () => {
    const job = one(ms, "Job", "tf-tickflow-bootstrap");
    assert.match(job.metadata.annotations!["helm.sh/hook"], /post-install/);
    assert.match(job.metadata.annotations!["helm.sh/hook"], /post-upgrade/);
    assert.deepEqual(container(job).command, ["tickflow", "pairs", "add", "BTC/USD", "ETH/USD"]);
    assert.deepEqual(job.spec.template.spec.initContainers[0].command, ["tickflow", "sink", "migrate"], "the sink's tables before the sink writes");
    const pod = one(ms, "Pod", "tf-tickflow-test");
    assert.equal(pod.metadata.annotations!["helm.sh/hook"], "test");
    const env = Object.fromEntries(pod.spec.containers[0].env.filter((e: any) => "value" in e).map((e: any) => [e.name, e.value]));
    assert.equal(env.GATEWAY_URL, "http://tf-tickflow-gateway:80");
    assert.equal(env.STAGES, "trades,candles,indicators,predictor");
    assert.match(pod.spec.containers[0].args[0], /tickflow", \["status", "--json"\]/);
    assert.ok(one(ms, "Service", "tf-tickflow-gateway"));
  });

  test("helm chart - the Grafana dashboard ConfigMap carries the sidecar label and queries the sink's tables", async () => {
    const cm = one(ms, "ConfigMap", "tf-tickflow-grafana-dashboard");
    assert.equal(cm.metadata.labels!.grafana_dashboard, "1");
    const dash = JSON.parse(cm.data["tickflow.json"]);
    const sql = dash.panels.map((p: any) => `${p.title}: ${p.targets[0].rawSql}`).join("\n");
    assert.match(sql, /Candles[^]*?FROM tickflow\.candles\n/);
    assert.match(sql, /Predicted vs actual[^]*predicted_price[^]*actual_price[^]*FROM tickflow\.outcomes/);
    assert.match(sql, /avg\(abs_error\)[^]*avg\(baseline_abs_error\)/);
    // The tables and columns are the sink's (actors/sink/tables.ts): a rename there fails here.
    const values = (await import("yaml")).parse(readFileSync(join(CHART, "values.yaml"), "utf8"));
    assert.deepEqual(Object.values(values.database.tables).sort(), TABLES.map((t) => t.name).sort());
    const cols = (table: string) => new Set(TABLES.find((t) => t.name === table)!.cols.map((c) => c.name));
    for (const c of ["pair", "tf", "window_start_ms", "open", "high", "low", "close", "volume"]) assert.ok(cols("candles").has(c), `candles.${c}`);
    for (const c of ["pair", "horizon_s", "target_ts_ms", "predicted_price", "actual_price", "abs_error", "baseline_abs_error"]) assert.ok(cols("outcomes").has(c), `outcomes.${c}`);
  });
});

describe("non-default values", () => {
  test("helm chart - external NATS, 3 candles replicas, ingress and HPA on: rendered and valid", async () => {
    const ms = await render(NON_DEFAULT);
    for (const m of ms) await validate(m);
    assert.equal(all(ms, "StatefulSet").length, 0, "no NATS deployed");
    assert.equal(settings(ms).NATS_URL, "nats://nats.infra.svc:4222");
    assert.equal(deployment(ms, "candles").spec.replicas, 3);
    assert.equal(deployment(ms, "trades").spec.replicas, 1);
    const pdb = one(ms, "PodDisruptionBudget", "tf-tickflow-candles");
    assert.deepEqual(pdb.spec.selector.matchLabels, deployment(ms, "candles").spec.selector.matchLabels);
    assert.ok(!ms.some((m) => m.kind === "PodDisruptionBudget" && m.metadata.name === "tf-tickflow-trades"), "no PDB for a single replica (it would block drains)");
    const ing = one(ms, "Ingress", "tf-tickflow-gateway");
    assert.equal(ing.spec.rules[0].host, "tickflow.test");
    assert.equal(ing.spec.rules[0].http.paths[0].backend.service.name, "tf-tickflow-gateway");
    assert.equal(ing.spec.tls[0].secretName, "tickflow-tls");
    const hpa = one(ms, "HorizontalPodAutoscaler", "tf-tickflow-gateway");
    assert.deepEqual([hpa.spec.scaleTargetRef.kind, hpa.spec.scaleTargetRef.name, hpa.spec.minReplicas, hpa.spec.maxReplicas], ["Deployment", "tf-tickflow-gateway", 2, 5]);
    assert.equal(deployment(ms, "gateway").spec.replicas, undefined, "the HPA owns the gateway's replicas");
  });

  test("helm chart - secrets: every Secret value is absent from every ConfigMap; processes get them by secretKeyRef", async () => {
    const secret = {
      user: "svc-user-7f3a", password: "pw-9d1c2e", token: "tok-4b7e0a",
      creds: "-----BEGIN NATS USER JWT-----\nJWT-c0ffee\n------END NATS USER JWT------\n",
      admin: "admin-5e6f7a", db: "postgres://tf:dbpw-8a9b@rw:4566/dev", cp: "cp-1a2b3c", cc: "cc-4d5e6f",
    };
    // One mode per render is what a user sets; the Secret holds whatever is given, so give all.
    const ms = await render({
      nats: { auth: { user: secret.user, password: secret.password, token: secret.token, creds: secret.creds }, tls: { enabled: true, secretName: "nats-client-tls", clientCert: true } },
      secrets: { adminToken: secret.admin, databaseUrl: secret.db, newsTokens: { cryptopanic: secret.cp, cryptocompare: secret.cc } },
    });
    for (const m of ms) await validate(m);
    const s = one(ms, "Secret", "tf-tickflow-secrets");
    const values = Object.values(s.data as Record<string, string>).map((b) => Buffer.from(b, "base64").toString("utf8"));
    assert.equal(values.length, 8, "every secret given is in the Secret");
    for (const v of Object.values(secret)) assert.ok(values.includes(v), `the Secret holds ${v.slice(0, 8)}…`);
    const cms = all(ms, "ConfigMap").map((c) => JSON.stringify(c));
    const plainEnv = all(ms, "Deployment").map((d) => JSON.stringify(d.spec.template.spec.containers.map((c: any) => c.env?.filter((e: any) => "value" in e))));
    for (const v of values) {
      for (const line of v.split("\n").filter((l) => l.length > 6)) {
        for (const c of cms) assert.ok(!c.includes(line), `secret text "${line.slice(0, 10)}…" found in a ConfigMap`);
        for (const e of plainEnv) assert.ok(!e.includes(line), `secret text "${line.slice(0, 10)}…" in a plain env value`);
      }
    }
    const cfg = settings(ms);
    assert.deepEqual([cfg.NATS_CREDS, cfg.NATS_CA, cfg.NATS_CERT, cfg.NATS_KEY], ["/etc/tickflow/nats-creds/nats.creds", "/etc/tickflow/nats-tls/ca.crt", "/etc/tickflow/nats-tls/tls.crt", "/etc/tickflow/nats-tls/tls.key"]);
    const candles = deployment(ms, "candles");
    const env = container(candles).env as any[];
    for (const key of ["NATS_USER", "NATS_PASSWORD", "NATS_TOKEN", "TICKFLOW_ADMIN_TOKEN", "DATABASE_URL"]) {
      const e = env.find((x) => x.name === key);
      assert.deepEqual(e?.valueFrom?.secretKeyRef, { name: "tf-tickflow-secrets", key, optional: true }, key);
    }
    const vols = Object.fromEntries(candles.spec.template.spec.volumes.map((v: any) => [v.name, v]));
    assert.equal(vols["nats-creds"].secret.secretName, "tf-tickflow-secrets");
    assert.equal(vols["nats-tls"].secret.secretName, "nats-client-tls");
  });

  test("helm chart - the bundled NATS can require the same token, read from the chart's Secret, never written in its config", async () => {
    const token = "tok-bundled-31x9";
    const ms = await render({
      nats: {
        auth: { token },
        config: { merge: { authorization: { token: "<< $NATS_TOKEN >>" } } },
        container: { env: { NATS_TOKEN: { valueFrom: { secretKeyRef: { name: "tf-tickflow-secrets", key: "NATS_TOKEN" } } } } },
      },
    });
    for (const m of ms) await validate(m);
    assert.match(one(ms, "ConfigMap", "tf-nats-config").data["nats.conf"], /"token": \$NATS_TOKEN/);
    for (const c of all(ms, "ConfigMap")) assert.ok(!JSON.stringify(c).includes(token), `${c.metadata.name} holds the token`);
    const natsEnv = one(ms, "StatefulSet", "tf-nats").spec.template.spec.containers[0].env;
    assert.deepEqual(natsEnv.find((e: any) => e.name === "NATS_TOKEN").valueFrom.secretKeyRef, { name: "tf-tickflow-secrets", key: "NATS_TOKEN" });
    assert.equal(Buffer.from(one(ms, "Secret", "tf-tickflow-secrets").data.NATS_TOKEN, "base64").toString(), token);
  });

  test("helm chart - an existing Secret replaces the chart's; table names come from one place", async () => {
    const ms = await render({ secrets: { existingSecret: "prod-tickflow" }, nats: { auth: { useCreds: true } }, database: { tables: { outcomes: "tf_outcomes", candles: "tf_candles" } } });
    assert.equal(all(ms, "Secret").length, 0);
    const env = container(deployment(ms, "sink")).env as any[];
    assert.equal(env.find((e) => e.name === "DATABASE_URL").valueFrom.secretKeyRef.name, "prod-tickflow");
    assert.equal(deployment(ms, "sink").spec.template.spec.volumes.find((v: any) => v.name === "nats-creds").secret.secretName, "prod-tickflow");
    const dash = one(ms, "ConfigMap", "tf-tickflow-grafana-dashboard").data["tickflow.json"];
    assert.match(dash, /FROM tickflow\.tf_outcomes/);
    assert.match(dash, /FROM tickflow\.tf_candles/);
    assert.doesNotMatch(dash, /FROM tickflow\.(outcomes|candles)\b/);
    assert.equal(settings(ms).SINK_SCHEMA, "tickflow");
  });

  test("helm chart - the values schema rejects what cannot work, with the setting named", async () => {
    const bad: [unknown, RegExp][] = [
      [{ stages: { candles: { replicas: -1 } } }, /stages\.candles\.replicas|replicas/],
      [{ database: { dialect: "mysql" } }, /dialect/],
      [{ stages: { candel: { replicas: 1 } } }, /candel/],
      [{ pairs: ["btc-usd"] }, /pairs/],
      [{ nats: { enabled: false } }, /nats\.url is required when nats\.enabled is false/],
      [{ nats: { tls: { enabled: true } } }, /nats\.tls\.secretName is required/],
    ];
    for (const [v, re] of bad) {
      const r = await helm.run(["template", "tf", CHART, "-f", valuesFile(v)]);
      assert.notEqual(r.code, 0, `should fail: ${JSON.stringify(v)}`);
      assert.match(r.stderr, re, JSON.stringify(v));
    }
  });
});
