// What code trained a model: the git commit when running from a checkout, else the package version.
import { execFileSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";

const ROOT = fileURLToPath(new URL("../..", import.meta.url));
let cached: string | null = null;

export function codeVersion(): string {
  if (cached) return cached;
  try {
    const sha = execFileSync("git", ["rev-parse", "--short=12", "HEAD"], { cwd: ROOT, stdio: ["ignore", "pipe", "ignore"], timeout: 5000 }).toString().trim();
    const dirty = execFileSync("git", ["status", "--porcelain", "--untracked-files=no"], { cwd: ROOT, stdio: ["ignore", "pipe", "ignore"], timeout: 5000 }).toString().trim();
    cached = `git:${sha}${dirty ? "+dirty" : ""}`;
  } catch {
    const pkg = JSON.parse(readFileSync(`${ROOT}/package.json`, "utf8")) as { name: string; version: string };
    cached = `${pkg.name}@${pkg.version}`;
  }
  return cached;
}
