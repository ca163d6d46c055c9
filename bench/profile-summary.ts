// Where the CPU time of a `node --cpu-prof` run goes, as plain text: self time by module (our
// files, each dependency, Node internals, GC), the hottest functions by self time, and selected
// functions by inclusive time (self + everything they call). Not part of `npm run bench`; a tool
// for reading the profile of one:
//   node --cpu-prof --cpu-prof-dir=/tmp/prof --import tsx bench/run.ts --only pipeline --runs 1
//   node --import tsx bench/profile-summary.ts /tmp/prof/FILE.cpuprofile [--window START-END] [--top 30] [--inclusive REGEX]
// --window keeps only the samples of the measured interval (the run prints it; monotonic µs, the
// profile's own clock), so loading data and starting servers do not count. --inclusive picks the
// functions listed by inclusive time (default: Tickflow's own code).
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";

type CallFrame = { functionName: string; url: string; lineNumber: number; columnNumber: number };
type Node = { id: number; callFrame: CallFrame; children?: number[] };
type Profile = { nodes: Node[]; startTime: number; endTime: number; samples: number[]; timeDeltas: number[] };

const ROOT = fileURLToPath(new URL("..", import.meta.url));

/** A readable module name: a repo path, a package name, a Node internal, or V8's pseudo-frames. */
export function moduleOf(url: string, fn: string): string {
  if (!url) return fn.startsWith("(") ? fn : "(native)";
  let u = url.replace(/^file:\/\//, "");
  const nm = u.lastIndexOf("/node_modules/");
  if (nm >= 0) {
    const rest = u.slice(nm + "/node_modules/".length).split("/");
    return `npm:${rest[0].startsWith("@") ? `${rest[0]}/${rest[1]}` : rest[0]}`;
  }
  if (u.startsWith("node:")) return "node:" + u.slice(5).split("/")[0];
  if (u.startsWith(ROOT)) u = u.slice(ROOT.length);
  return u;
}

export function summarise(p: Profile, top = 25, inclusiveFilter = / (protocol|supervisor|actors|bench)\//, window?: { start: number; end: number }): string {
  const byId = new Map(p.nodes.map((n) => [n.id, n]));
  const parent = new Map<number, number>();
  for (const n of p.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const selfUs = new Map<number, number>();
  let total = 0;
  let t = p.startTime;
  for (let i = 0; i < p.samples.length; i++) {
    t += p.timeDeltas[i];
    const dt = p.timeDeltas[i + 1] ?? 0; // a sample's time is the gap to the next one
    if (window && (t < window.start || t > window.end)) continue;
    selfUs.set(p.samples[i], (selfUs.get(p.samples[i]) ?? 0) + dt);
    total += dt;
  }
  const fnKey = (n: Node) => `${n.callFrame.functionName || "(anonymous)"} ${moduleOf(n.callFrame.url, n.callFrame.functionName)}:${n.callFrame.lineNumber + 1}`;
  const byModule = new Map<string, number>();
  const byFn = new Map<string, number>();
  const inclusive = new Map<string, number>();
  for (const [id, us] of selfUs) {
    const n = byId.get(id)!;
    const mod = moduleOf(n.callFrame.url, n.callFrame.functionName);
    byModule.set(mod, (byModule.get(mod) ?? 0) + us);
    byFn.set(fnKey(n), (byFn.get(fnKey(n)) ?? 0) + us);
    // Inclusive: every distinct function on the stack gets the sample once (recursion counted once).
    const seen = new Set<string>();
    for (let cur: number | undefined = id; cur !== undefined; cur = parent.get(cur)) {
      const k = fnKey(byId.get(cur)!);
      if (seen.has(k)) continue;
      seen.add(k);
      inclusive.set(k, (inclusive.get(k) ?? 0) + us);
    }
  }
  const busy = total - (byModule.get("(idle)") ?? 0);
  const row = (k: string, us: number) => `${(us / 1000).toFixed(0).padStart(8)} ms ${((us / busy) * 100).toFixed(1).padStart(5)}%  ${k}`;
  const out: string[] = [];
  out.push(`profile: ${(total / 1e6).toFixed(2)} s sampled, ${(busy / 1e6).toFixed(2)} s busy (percentages are of busy time)`);
  out.push("", "self time by module:");
  for (const [k, us] of [...byModule].sort((a, b) => b[1] - a[1]).slice(0, top)) out.push(row(k, us));
  out.push("", "self time by function:");
  for (const [k, us] of [...byFn].sort((a, b) => b[1] - a[1]).slice(0, top)) out.push(row(k, us));
  out.push("", `inclusive time by function matching ${inclusiveFilter}:`);
  const ours = [...inclusive].filter(([k]) => inclusiveFilter.test(k));
  for (const [k, us] of ours.sort((a, b) => b[1] - a[1]).slice(0, top)) out.push(row(k, us));
  return out.join("\n");
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const { values, positionals } = parseArgs({ options: { top: { type: "string" }, inclusive: { type: "string" }, window: { type: "string" } }, allowPositionals: true });
  if (positionals.length === 0) {
    process.stderr.write("usage: node --import tsx bench/profile-summary.ts FILE.cpuprofile… [--top N]\n");
    process.exit(2);
  }
  let window: { start: number; end: number } | undefined;
  if (values.window) {
    const [start, end] = values.window.split("-").map(Number);
    if (!(start < end)) throw new Error(`--window must be START-END in µs (got "${values.window}")`);
    window = { start, end };
  }
  for (const f of positionals) {
    process.stdout.write(`== ${f}\n${summarise(JSON.parse(readFileSync(f, "utf8")) as Profile, Number(values.top ?? 25), values.inclusive ? new RegExp(values.inclusive) : undefined, window)}\n\n`);
  }
}
