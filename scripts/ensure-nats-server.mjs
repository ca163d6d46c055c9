// Runs before `npm start` and `npm test`: Tickflow needs a nats-server binary (the embedded server
// and the test servers are real nats-server processes). Installs Debian's package when we are root
// with apt-get; otherwise says exactly what to run.
import { execFileSync, spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { delimiter, join } from "node:path";

const dirs = [...(process.env.PATH ?? "").split(delimiter), "/usr/sbin", "/usr/local/sbin", "/usr/local/bin"];
const found = dirs.find((d) => d && existsSync(join(d, "nats-server")));
if (found) process.exit(0);
if (process.env.NATS_URL && process.argv.includes("--start")) process.exit(0);

const cmd = "sudo apt-get install -y nats-server";
const isRoot = typeof process.getuid === "function" && process.getuid() === 0;
const hasApt = spawnSync("sh", ["-c", "command -v apt-get"]).status === 0;
if (isRoot && hasApt) {
  console.error("nats-server not found; installing Debian's package (apt-get install -y nats-server) ...");
  try {
    execFileSync("apt-get", ["update", "-qq"], { stdio: "inherit" });
    execFileSync("apt-get", ["install", "-y", "-qq", "nats-server"], { stdio: "inherit", env: { ...process.env, DEBIAN_FRONTEND: "noninteractive" } });
    process.exit(0);
  } catch {
    console.error(`installing nats-server failed; install it yourself with:\n  ${cmd}`);
    process.exit(1);
  }
}
console.error(`nats-server is not installed (Tickflow runs a real nats-server with JetStream). Install it with:\n  ${cmd}\nor download it from https://github.com/nats-io/nats-server/releases and put it on PATH.`);
process.exit(1);
