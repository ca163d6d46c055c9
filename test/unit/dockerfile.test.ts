// No Docker engine runs in CI, so the image is checked by reading its recipe: the essentials the
// chart relies on (non-root numeric user, production-only install without onnxruntime's download,
// `tickflow` as the entry point) and a .dockerignore that keeps out what must not ship but lets
// through every file the entry point imports.
import { test } from "node:test";
import assert from "node:assert/strict";
import { existsSync, readFileSync } from "node:fs";
import { dirname, join, relative, resolve } from "node:path";
import { ROOT } from "../harness/data.js";

type Instr = { op: string; args: string };

/** Dockerfile instructions: comments dropped, backslash continuations joined, split per FROM. */
function parseDockerfile(text: string): Instr[][] {
  const lines = text.split("\n").filter((l) => !/^\s*#/.test(l));
  const joined = lines.join("\n").replace(/\\\n/g, " ");
  const stages: Instr[][] = [];
  for (const line of joined.split("\n")) {
    const m = /^\s*([A-Za-z]+)\s+(.*)$/.exec(line);
    if (!m) continue;
    const ins = { op: m[1].toUpperCase(), args: m[2].trim() };
    if (ins.op === "FROM") stages.push([]);
    assert.ok(stages.length > 0, `instruction before FROM: ${line}`);
    stages[stages.length - 1].push(ins);
  }
  return stages;
}

const stages = parseDockerfile(readFileSync(join(ROOT, "Dockerfile"), "utf8"));
const final = stages[stages.length - 1];
const all = stages.flat();
const envOf = (st: Instr[]) => st.filter((i) => i.op === "ENV").map((i) => i.args).join(" ");

test("dockerfile - multi-stage on a slim Node 20 base; the final stage copies production node_modules from the build stage", () => {
  assert.ok(stages.length >= 2, "multi-stage");
  for (const st of stages) assert.match(st[0].args, /^node:20[-.\w]*slim/, `base ${st[0].args}`);
  assert.ok(final.some((i) => i.op === "COPY" && /--from=\w+/.test(i.args) && /node_modules/.test(i.args)), "node_modules from the deps stage");
  assert.ok(!final.some((i) => i.op === "RUN" && /npm (ci|install)/.test(i.args)), "no install in the runtime stage");
});

test("dockerfile - npm ci omits dev dependencies and skips onnxruntime's download", () => {
  const install = stages.find((st) => st.some((i) => i.op === "RUN" && /\bnpm ci\b/.test(i.args)));
  assert.ok(install, "an npm ci step");
  const run = install.find((i) => i.op === "RUN" && /\bnpm ci\b/.test(i.args))!;
  assert.match(run.args, /--omit=dev/);
  assert.match(`${envOf(install)} ${run.args}`, /ONNXRUNTIME_NODE_INSTALL=skip/);
  assert.ok(!all.some((i) => /nats-server/.test(i.args) && i.op === "RUN"), "NATS comes from the chart, not the image");
});

test("dockerfile - runs as a non-root numeric user with `tickflow` as entry point", () => {
  const users = final.filter((i) => i.op === "USER");
  assert.ok(users.length > 0, "a USER in the final stage");
  const user = users[users.length - 1].args.split(":")[0];
  assert.match(user, /^[1-9][0-9]*$/, `numeric non-root uid (runAsNonRoot needs a number), got ${user}`);
  const entry = final.filter((i) => i.op === "ENTRYPOINT").pop();
  assert.ok(entry, "an ENTRYPOINT");
  const argv = JSON.parse(entry.args) as string[];
  assert.equal(argv[0], "tickflow");
  const link = final.find((i) => i.op === "RUN" && /ln -s \/app\/bin\/tickflow\.js \/usr\/local\/bin\/tickflow/.test(i.args));
  assert.ok(link, "tickflow on PATH, pointing at bin/tickflow.js");
  assert.match(readFileSync(join(ROOT, "bin/tickflow.js"), "utf8"), /^#!\/usr\/bin\/env node/);
});

/** Relative imports reachable from `entry` (TypeScript sources are imported with .js names). */
function importClosure(entry: string): Set<string> {
  const seen = new Set<string>();
  const todo = [entry];
  while (todo.length) {
    const f = todo.pop()!;
    if (seen.has(f)) continue;
    seen.add(f);
    const src = readFileSync(f, "utf8");
    for (const m of src.matchAll(/(?:from|import)\s*\(?\s*["'](\.{1,2}\/[^"']+)["']/g)) {
      let target = resolve(dirname(f), m[1]);
      if (!existsSync(target) && target.endsWith(".js")) target = target.slice(0, -3) + ".ts";
      if (existsSync(target)) todo.push(target);
    }
  }
  return seen;
}

test("dockerfile - .dockerignore keeps out git, node_modules, tests and charts but nothing the entry point imports", () => {
  const patterns = readFileSync(join(ROOT, ".dockerignore"), "utf8").split("\n").map((l) => l.trim()).filter((l) => l && !l.startsWith("#"));
  for (const p of [".git", "node_modules", "test", "charts"]) assert.ok(patterns.includes(p), `.dockerignore excludes ${p}`);
  const ignored = (rel: string) => patterns.some((p) => {
    if (p.startsWith("**/")) return new RegExp(`${p.slice(3).replace(/\./g, "\\.").replace(/\*/g, "[^/]*")}$`).test(rel);
    const re = new RegExp(`^${p.replace(/\./g, "\\.").replace(/\*/g, "[^/]*")}(/|$)`);
    return re.test(rel);
  });
  const files = importClosure(join(ROOT, "bin/tickflow.js"));
  assert.ok(files.size > 10, `the closure reaches the stages (${files.size} files)`);
  for (const f of files) assert.ok(!ignored(relative(ROOT, f)), `${relative(ROOT, f)} is imported at run time but .dockerignore drops it`);
  assert.ok(!ignored("package.json") && !ignored("data/trades/x.jsonl.gz"));
});
