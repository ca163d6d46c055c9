// CPU time of this process and of the nats-server child over a measured interval. On a 2-core box
// this says who the bottleneck is: a side whose CPU seconds ≈ wall seconds is saturated (Node runs
// JavaScript on one core), one well below it is waiting on the other.
import { readFileSync } from "node:fs";

/** utime + stime of a process from /proc, in seconds; NaN where /proc is not available. */
export function procCpuSeconds(pid: number | undefined): number {
  if (!pid) return NaN;
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    // Fields after the command name, which is in parentheses and may contain spaces.
    const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    // utime and stime are fields 14 and 15 (1-based) of the whole line, i.e. 11 and 12 here; USER_HZ is 100 on Linux.
    return (Number(f[11]) + Number(f[12])) / 100;
  } catch {
    return NaN;
  }
}

export type CpuSplit = { wallSeconds: number; nodeCpuSeconds: number; serverCpuSeconds: number };

/** Starts a measurement; the returned function ends it. */
export function cpuMeter(serverPid: number | undefined): () => CpuSplit {
  const t0 = performance.now();
  const c0 = process.cpuUsage();
  const s0 = procCpuSeconds(serverPid);
  return () => {
    const c = process.cpuUsage(c0);
    return {
      wallSeconds: (performance.now() - t0) / 1000,
      nodeCpuSeconds: (c.user + c.system) / 1e6,
      serverCpuSeconds: procCpuSeconds(serverPid) - s0,
    };
  };
}
