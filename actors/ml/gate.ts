// The promotion gate: a challenger replaces the champion only if, on the same walk-forward folds,
// it is more accurate than persistence AND than the champion's recipe, each with a one-sided
// Diebold–Mariano p-value below `alpha`. A challenger with the champion's own recipe (same model
// and settings, newer data) is a refresh: it only has to pass the persistence test.

export type GateInput = {
  alpha: number;
  challenger: { kind: string; params: unknown; mae: number; mae_persistence: number; dm_pvalue: number | null };
  /** The champion's recipe evaluated on the same folds, with DM p of "challenger better than it". Null: persistence serves. */
  champion: { kind: string; params: unknown; mae: number; dm_pvalue_vs: number | null } | null;
};

export type GateVerdict = { promote: boolean; reasons: string[] };

export function gate(g: GateInput): GateVerdict {
  const reasons: string[] = [];
  const c = g.challenger;
  if (c.kind === "persistence") return { promote: false, reasons: ["the best candidate is persistence itself"] };
  if (!(c.mae < c.mae_persistence)) reasons.push(`MAE ${fmt(c.mae)} is not below persistence's ${fmt(c.mae_persistence)}`);
  if (c.dm_pvalue === null || !(c.dm_pvalue < g.alpha)) reasons.push(`DM p-value vs persistence ${c.dm_pvalue === null ? "undefined" : fmt(c.dm_pvalue)} is not below ${g.alpha}`);
  const ch = g.champion;
  if (ch && !(ch.kind === c.kind && sameParams(ch.params, c.params))) {
    if (!(c.mae < ch.mae)) reasons.push(`MAE ${fmt(c.mae)} is not below the champion recipe's ${fmt(ch.mae)} (${ch.kind})`);
    if (ch.dm_pvalue_vs === null || !(ch.dm_pvalue_vs < g.alpha)) reasons.push(`DM p-value vs the champion recipe ${ch.dm_pvalue_vs === null ? "undefined" : fmt(ch.dm_pvalue_vs)} is not below ${g.alpha}`);
  }
  return { promote: reasons.length === 0, reasons };
}

export function sameParams(a: unknown, b: unknown): boolean {
  return JSON.stringify(a) === JSON.stringify(b);
}

function fmt(x: number): string {
  return Number.isFinite(x) ? x.toPrecision(4) : String(x);
}
