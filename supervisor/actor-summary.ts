// Actors counted per stage, and which need a look: what `tickflow status` prints under its table,
// the worker's micro-service stats carry, and the gateway's /v1/actors summarizes. At a thousand
// pairs a cluster is six thousand actors, and these are how a person reads them.

export type StageCounts = { actors: number; states: Record<string, number>; restarts: number; deadLetters: number };

type Counted = { stage: string; state: string; restarts: number; deadLetters: number };

export function stageCounts(actors: Counted[]): Record<string, StageCounts> {
  const out: Record<string, StageCounts> = {};
  for (const a of actors) {
    const s = (out[a.stage] ??= { actors: 0, states: {}, restarts: 0, deadLetters: 0 });
    s.actors++;
    s.states[a.state] = (s.states[a.state] ?? 0) + 1;
    s.restarts += a.restarts;
    s.deadLetters += a.deadLetters;
  }
  return out;
}

/** Not running, or restarted, or dead-lettered something. */
export function needsAttention(a: Counted): boolean {
  return a.state !== "running" || a.restarts > 0 || a.deadLetters > 0;
}
