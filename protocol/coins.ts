// The default coin map (coin → aliases) for coin extraction in news; configurable (config news.coins).
// An upper-case alias is a ticker, matched only in upper case or as a cashtag (actors/scorer/coins.ts).

export type CoinMap = Record<string, string[]>;

/** The default map: the coins of the recorded data and Kraken's most traded bases. */
export const DEFAULT_COINS: CoinMap = {
  BTC: ["BTC", "XBT", "bitcoin", "bitcoins", "btc", "xbt"],
  ETH: ["ETH", "ether", "ethereum", "eth"],
  SOL: ["SOL", "solana"],
  XRP: ["XRP", "ripple", "xrp"],
  ADA: ["ADA", "cardano"],
  DOGE: ["DOGE", "dogecoin", "doge"],
  DOT: ["DOT", "polkadot"],
  LINK: ["LINK", "chainlink"],
  LTC: ["LTC", "litecoin", "ltc"],
  AVAX: ["AVAX", "avalanche", "avax"],
  MATIC: ["MATIC", "polygon", "matic"],
  TRX: ["TRX", "tron", "trx"],
  ATOM: ["ATOM", "cosmos"],
  BNB: ["BNB", "binance coin", "bnb"],
  SHIB: ["SHIB", "shiba inu", "shib"],
  XMR: ["XMR", "monero", "xmr"],
  USDT: ["USDT", "tether", "usdt"],
  USDC: ["USDC", "usd coin", "usdc"],
};

