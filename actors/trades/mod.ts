// Public entry of the trades stage's Kraken plumbing: the shared WebSocket feed, the REST backfill,
// the wire parsers and the local replay server. Everything else in this folder is internal.
export {
  BadFrameError,
  isTransientKrakenError,
  KrakenApiError,
  parseRestTradeRow,
  parseRestTrades,
  parseTradeRecord,
  parseWsFrame,
  restPairName,
  restTimeToMs,
  rfc3339ToMs,
  rfc3339ToNs,
} from "./kraken-messages.js";
export {
  backfillTrades,
  BackfillError,
  backoffDelay,
  DEFAULT_REST_URL,
  MAX_PAGE,
  RateLimiter,
  realSleep,
  sinceFromCursor,
} from "./kraken-rest-backfill.js";
export { DEFAULT_WS_URL, KrakenTradeFeed } from "./kraken-ws-client.js";
export { loadTradeFiles, startKrakenReplayServer } from "./kraken-replay-server.js";

export type { BadRecord, RestTradesPage, WsFrame, WsTradeFrame } from "./kraken-messages.js";
export type { BackfillOptions, BackfillResult, BackoffPolicy, Sleep, TradeCursor } from "./kraken-rest-backfill.js";
export type {
  FeedEvent,
  FeedState,
  FeedStats,
  KrakenTradeFeedOptions,
  TradeOrigin,
  TradeSubscriber,
  TradeSubscription,
} from "./kraken-ws-client.js";
export type { KrakenReplayOptions, KrakenReplayServer, KrakenTradeRecord, ReplayStats } from "./kraken-replay-server.js";
