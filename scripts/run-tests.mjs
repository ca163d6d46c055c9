// `npm test`: every test file under test/unit and test/integration, with node's own runner and
// tsx for TypeScript. Files run two at a time: each integration file starts its own nats-server on
// a random port, so they do not interfere, and two fit the 2-core machines CI runs on.
// Usage: npm test [-- FILTER…] runs only the files whose path contains one of the filters.
import { spawn, spawnSync } from "node:child_process";
import { readdirSync } from "node:fs";
import { join } from "node:path";

const filters = process.argv.slice(2);
const files = ["test/unit", "test/integration"]
  .flatMap((d) => readdirSync(d).filter((f) => f.endsWith(".test.ts")).sort().map((f) => join(d, f)))
  .filter((f) => filters.length === 0 || filters.some((x) => f.includes(x)));
if (files.length === 0) {
  console.error(`no test files match ${filters.join(" ")}`);
  process.exit(1);
}
// The whole suite starts with the type check: a file that does not compile (a stray token, a
// renamed export) then fails here with its line, not as a test that times out where it runs.
if (filters.length === 0) {
  const tsc = spawnSync(process.execPath, ["node_modules/typescript/bin/tsc", "-p", "tsconfig.json", "--noEmit"], { stdio: "inherit" });
  if (tsc.status !== 0) {
    console.error("npm test: the type check failed (tsc -p tsconfig.json --noEmit); no tests run");
    process.exit(1);
  }
}
const child = spawn(process.execPath, [
  "--import", "tsx", "--test", "--test-concurrency=2", "--test-timeout=900000", "--test-reporter=spec", ...files,
], { stdio: "inherit" });
child.on("exit", (code, signal) => process.exit(code ?? (signal ? 1 : 0)));
