// A one-line progress display for bounded runs (`up --once`) on a terminal: done of total, rate,
// time left. Redrawn in place a few times a second; nothing at all when output is not a terminal.

export type ProgressSample = { done: number; total: number; unit: string };

/** "12,345 / 40,419 trades (30.5 %) · 8,120 trades/s · 3 s left". Pure. */
export function formatProgress(s: ProgressSample, ratePerSec: number | null): string {
  const n = (x: number) => Math.round(x).toLocaleString("en-US");
  const pct = s.total > 0 ? Math.min(100, (100 * s.done) / s.total) : 0;
  let line = `${n(s.done)} / ${n(s.total)} ${s.unit} (${pct.toFixed(1)} %)`;
  if (ratePerSec !== null && ratePerSec > 0) {
    line += ` · ${n(ratePerSec)} ${s.unit}/s`;
    const left = Math.max(0, s.total - s.done) / ratePerSec;
    line += ` · ${formatDuration(left)} left`;
  }
  return line;
}

export function formatDuration(seconds: number): string {
  if (!Number.isFinite(seconds)) return "?";
  if (seconds < 60) return `${Math.ceil(seconds)} s`;
  const m = Math.floor(seconds / 60);
  if (m < 60) return `${m} min ${Math.round(seconds - m * 60)} s`;
  return `${Math.floor(m / 60)} h ${m % 60} min`;
}

/**
 * Samples `sample()` every `everyMs` and redraws the line. The rate is measured over the last
 * few seconds (a moving window), so a slow start does not skew the time left for the rest.
 */
export function startProgress(o: { sample: () => ProgressSample | null; stream?: NodeJS.WriteStream; everyMs?: number; label?: string }): { stop(): void } {
  const stream = o.stream ?? process.stderr;
  if (!stream.isTTY) return { stop() {} };
  const window: { t: number; done: number }[] = [];
  let last = "";
  const draw = (final = false) => {
    const s = o.sample();
    if (!s) return;
    const now = Date.now();
    window.push({ t: now, done: s.done });
    while (window.length > 2 && now - window[0].t > 5000) window.shift();
    const first = window[0];
    const rate = now > first.t ? ((s.done - first.done) * 1000) / (now - first.t) : null;
    const line = `${o.label ?? "progress"}: ${formatProgress(s, rate)}`;
    if (line !== last || final) stream.write(`\r\x1b[2K${line}${final ? "\n" : ""}`);
    last = line;
  };
  const timer = setInterval(draw, o.everyMs ?? 250);
  return {
    stop() {
      clearInterval(timer);
      draw(true);
    },
  };
}
