// The machine the figures were measured on: ratios travel between machines, absolute rates do not,
// so the report always says where they came from.
import { execFileSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { cpus, loadavg, totalmem } from "node:os";
import { findNatsServer } from "../supervisor/nats-server.js";

export type MachineInfo = {
  cpuModel: string;
  cores: number;
  ramGiB: number;
  node: string;
  natsServer: string;
  platform: string;
  /** 1-minute load average at the start: a busy shared box explains noisy figures. */
  loadAvg1m: number;
};

function cpuModel(): string {
  try {
    const m = /^model name\s*:\s*(.+)$/m.exec(readFileSync("/proc/cpuinfo", "utf8"));
    if (m) return m[1].trim();
  } catch {
    // not Linux: fall through to what node knows
  }
  return cpus()[0]?.model ?? "unknown";
}

function natsServerVersion(): string {
  const bin = findNatsServer();
  if (!bin) return "not found";
  try {
    return execFileSync(bin, ["--version"], { encoding: "utf8", timeout: 5000 }).trim().replace(/^nats-server:\s*/, "");
  } catch (err) {
    return `unknown (${(err as Error).message})`;
  }
}

export function machineInfo(): MachineInfo {
  return {
    cpuModel: cpuModel(),
    cores: cpus().length,
    ramGiB: Math.round((totalmem() / 2 ** 30) * 10) / 10,
    node: process.version,
    natsServer: natsServerVersion(),
    platform: `${process.platform} ${process.arch}`,
    loadAvg1m: Math.round(loadavg()[0] * 100) / 100,
  };
}
