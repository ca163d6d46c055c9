// The plain lexicon baseline, VADER-style (Hutto & Gilbert 2014): words carry a valence in −4 … 4;
// a negation within the three words before flips and damps it (×−0.74), boosters ("sharply")
// strengthen it, a "but" makes the clause after it count more (×1.5, before it ×0.5), and the sum is
// normalised to −1 … 1 by x/√(x²+15). The word list is a finance/crypto one: VADER's own
// general-purpose list misreads headlines ("crash" of a rally, "bear" market) and is not bundled.
// This is the baseline the bundled classifier is measured against, not a production scorer.
import type { SignalLabel } from "../../protocol/news.js";

const V: Record<string, number> = {};
const add = (v: number, words: string) => { for (const w of words.split(/\s+/).filter(Boolean)) V[w] = v; };
add(3, "soar soars soaring soared skyrocket skyrockets skyrocketed boom booming surge surges surging surged record-high all-time-high breakout");
add(2.5, "rally rallies rallying rallied jump jumps jumped jumping spike spikes spiked beat beats upgrade upgrades upgraded outperform outperforms bullish bull");
add(2, "gain gains gained rise rises rising rose climb climbs climbed rebound rebounds rebounded recover recovers recovered recovery advance advances advanced higher strong stronger strength profit profits profitable growth grow grows grew buy buys adoption approve approves approved approval partnership win wins won boost boosts boosted optimistic upbeat positive raises raised raise tops topped");
add(1.5, "up high highs expand expands expanded expansion launch launches launched support supports upside accumulate accumulating inflows inflow green record dividend");
add(-1.5, "down low lows lower weak weaker weakness concern concerns risk risks pressure outflows outflow red halt halts halted delay delays delayed downside");
add(-2, "fall falls fell falling drop drops dropped dropping decline declines declined slip slips slipped slide slides slid loss losses lose loses lost miss misses missed cut cuts sell sells selloff sell-off negative warn warns warning fear fears probe probes investigation lawsuit lawsuits sue sues sued fine fined ban bans banned reject rejects rejected rejection downgrade downgrades downgraded pessimistic bearish bear layoffs");
add(-2.5, "plunge plunges plunged plunging tumble tumbles tumbled sink sinks sank slump slumps slumped dump dumps dumped liquidation liquidations liquidated hack hacked hacks exploit exploited scam fraud crackdown");
add(-3, "crash crashes crashed collapse collapses collapsed bankrupt bankruptcy insolvent insolvency default defaults wipeout capitulation");

const NEGATIONS = new Set(["not", "no", "never", "none", "nobody", "nothing", "neither", "nor", "without", "cannot", "isn't", "aren't", "wasn't", "weren't", "don't", "doesn't", "didn't", "won't", "can't", "couldn't", "shouldn't", "hasn't", "haven't", "fails", "failed"]);
const BOOSTERS: Record<string, number> = {
  very: 0.293, extremely: 0.293, sharply: 0.293, massive: 0.293, massively: 0.293, huge: 0.293, hugely: 0.293,
  significantly: 0.293, strongly: 0.293, big: 0.293, biggest: 0.293, steep: 0.293, steeply: 0.293,
  slightly: -0.293, modestly: -0.293, somewhat: -0.293, marginally: -0.293, little: -0.293,
};

export type LexiconScore = { compound: number; signal: SignalLabel; confidence: number };

const TOKEN_RE = /[a-z][a-z'-]*/g;

/** VADER's compound score of `text` (−1 … 1) and the label at VADER's usual ±0.05 threshold. */
export function lexiconScore(text: string): LexiconScore {
  const toks: string[] = text.toLowerCase().replace(/https?:\/\/\S+/g, " ").match(TOKEN_RE) ?? [];
  const butAt = toks.indexOf("but");
  let sum = 0;
  for (let i = 0; i < toks.length; i++) {
    let v = V[toks[i]];
    if (v === undefined) continue;
    for (let k = 1; k <= 3 && i - k >= 0; k++) {
      const b = BOOSTERS[toks[i - k]];
      if (b !== undefined) v += Math.sign(v) * b * (k === 1 ? 1 : k === 2 ? 0.95 : 0.9);
      if (NEGATIONS.has(toks[i - k])) v *= -0.74;
    }
    if (butAt >= 0) v *= i < butAt ? 0.5 : i > butAt ? 1.5 : 1;
    sum += v;
  }
  const compound = sum === 0 ? 0 : sum / Math.sqrt(sum * sum + 15);
  const signal: SignalLabel = compound >= 0.05 ? "bullish" : compound <= -0.05 ? "bearish" : "neutral";
  return { compound, signal, confidence: signal === "neutral" ? 1 - Math.abs(compound) / 0.05 * 0.5 : Math.abs(compound) };
}
