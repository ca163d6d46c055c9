// Coin extraction: which coins a headline talks about. Aliases come from a configurable map
// (coin → aliases). An alias written in upper case ("SOL", "LINK") is a ticker and matches only in
// upper case or as a cashtag ($SOL, $sol), because as a plain word it is often English ("link",
// "dot", "one"); any other alias ("bitcoin", "ether", "binance coin") matches case-insensitively as
// whole words. Multi-word aliases match as word sequences.

import { DEFAULT_COINS, type CoinMap } from "../../protocol/coins.js";

export type { CoinMap };

export { DEFAULT_COINS };

type Alias = { coin: string; words: string[]; ticker: boolean };
export type CoinMatcher = { aliases: Map<string, Alias[]>; coins: CoinMap };

const WORD_RE = /\$?[\p{L}\p{N}]+/gu;

/** Builds a matcher once; `extractCoins` is then a single pass over the words. */
export function coinMatcher(map: CoinMap = DEFAULT_COINS): CoinMatcher {
  const aliases = new Map<string, Alias[]>();
  for (const [coin, list] of Object.entries(map)) {
    if (!/^[A-Z0-9]{1,16}$/.test(coin)) throw new Error(`coin map: "${coin}" must be upper-case letters and digits`);
    for (const a of list) {
      const words = a.match(WORD_RE)?.map((w) => w.replace(/^\$/, "")) ?? [];
      if (words.length === 0) throw new Error(`coin map: alias "${a}" of ${coin} has no word`);
      const ticker = words.length === 1 && words[0] === words[0].toUpperCase() && /[A-Z]/.test(words[0]);
      const key = words[0].toLowerCase();
      const entry: Alias = { coin, words: ticker ? [words[0]] : words.map((w) => w.toLowerCase()), ticker };
      const l = aliases.get(key) ?? [];
      l.push(entry);
      aliases.set(key, l);
    }
  }
  return { aliases, coins: map };
}

/** The coins `text` mentions, in order of first mention, without repeats. */
export function extractCoins(text: string, m: CoinMatcher): string[] {
  const raw = text.match(WORD_RE) ?? [];
  const out: string[] = [];
  for (let i = 0; i < raw.length; i++) {
    const tok = raw[i];
    const cashtag = tok.startsWith("$");
    const word = cashtag ? tok.slice(1) : tok;
    const cands = m.aliases.get(word.toLowerCase());
    if (!cands) continue;
    for (const a of cands) {
      let hit: boolean;
      if (a.ticker) hit = cashtag || word === a.words[0];
      else {
        hit = true;
        for (let k = 0; k < a.words.length; k++) {
          const w = raw[i + k];
          if (w === undefined || w.replace(/^\$/, "").toLowerCase() !== a.words[k]) { hit = false; break; }
        }
      }
      if (hit && !out.includes(a.coin)) out.push(a.coin);
    }
  }
  return out;
}

/** The canonical coin of a pair's base (`XBT/USD` → BTC when the map lists XBT as a BTC alias). */
export function baseCoin(pair: string, m: CoinMatcher): string {
  const base = pair.split("/")[0];
  if (m.coins[base]) return base;
  for (const [coin, list] of Object.entries(m.coins)) if (list.includes(base)) return coin;
  return base;
}
