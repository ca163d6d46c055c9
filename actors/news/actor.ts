// News stage shell: one source actor per news source across the cluster (keyed by source name, not
// by pair). Each wires its source (an API poller or the recorded-headline replay) to the runtime:
// items → news.raw.<source> with msg id `<source>:<id>`, its cursor → the actor's checkpoint after
// every stored item, bad answers and entries → dlq.news.<source>.
import { ConfigError } from "../../protocol/errors.js";
import type { NewsItem } from "../../protocol/news.js";
import { subjects } from "../../protocol/subjects.js";
import type { SourceActorDef, SourceContext } from "../../supervisor/actor.js";
import type { Config } from "../../supervisor/config.js";
import { EMPTY_CURSOR, isCursor, type Cursor } from "./cursor.js";
import { abortableSleep, rateLimitedGet } from "./http.js";
import { runPollLoop, type PollOptions } from "./poll-loop.js";
import { REPLAY_SOURCE, runReplay } from "./replay.js";
import type { RecordedHeadline } from "./recorded.js";
import { cryptoCompareSource, cryptoPanicSource, parseFeedList, rssSource, type PolledSource } from "./sources.js";

export const NEWS_STAGE = "news";

/** A bounded replay handed over by `tickflow up --news` (StageContext.shared key). */
export const NEWS_REPLAY_KEY = "news.replay";
export type NewsReplaySetup = { items: RecordedHeadline[]; speed: number | "max" };

/** The polled sources that run: news.sources, or every configured RSS feed when that list is empty. */
export function configuredSources(config: Config): string[] {
  if (config.news.sources.length) return [...config.news.sources];
  return parseFeedList(config.news.rss).map((f) => `rss-${f.name}`);
}

/** Checked when a process starts the news stage: a source that cannot run is a config error, not a crash loop. */
export function checkNewsConfig(config: Config): void {
  const feeds = new Set(parseFeedList(config.news.rss).map((f) => `rss-${f.name}`));
  for (const s of configuredSources(config)) {
    if (s === "cryptopanic" && !config.news.cryptopanic.token) throw new ConfigError("config news.sources lists cryptopanic but news.cryptopanic.token (CRYPTOPANIC_TOKEN) is empty");
    if (s.startsWith("rss-") && !feeds.has(s)) throw new ConfigError(`config news.sources lists ${s} but news.rss (TICKFLOW_RSS_FEEDS) has no feed "${s.slice(4)}=<url>"`);
  }
}

export function polledSource(key: string, config: Config): PolledSource {
  const n = config.news;
  if (key === "cryptopanic") return cryptoPanicSource(n.cryptopanic.url, n.cryptopanic.token);
  if (key === "cryptocompare") return cryptoCompareSource(n.cryptocompare.url, n.cryptocompare.apiKey);
  const feed = parseFeedList(n.rss).find((f) => `rss-${f.name}` === key);
  if (feed) return rssSource(feed.name, feed.url);
  throw new Error(`news source "${key}": not configured (news.rss has no feed "${key.replace(/^rss-/, "")}")`);
}

function pollOptions(config: Config): PollOptions {
  const n = config.news;
  return { intervalMs: n.pollIntervalMs, maxBackoffMs: n.maxBackoffMs, firstPollPages: n.firstPollPages, maxPages: 20, toleranceMs: 24 * 3_600_000 };
}

const output = (item: NewsItem) => ({ subject: subjects.newsRaw(item.source), msgId: item.id, data: item });

/** The loops report items one at a time; the runtime's status wants the running total. */
function progressTotal(ctx: SourceContext): SourceContext["progress"] {
  let total = 0;
  return (p) => ctx.progress({ ...p, processed: p.processed ? (total += p.processed) : undefined });
}

async function runPolled(ctx: SourceContext): Promise<void> {
  const src = polledSource(ctx.key, ctx.config);
  const saved = await ctx.loadCheckpoint<Cursor>();
  const start = isCursor(saved) ? saved : EMPTY_CURSOR;
  const get = rateLimitedGet({
    source: src.name, timeoutMs: 15_000, minSpacingMs: 1000 / ctx.config.news.maxRequestsPerSecond, signal: ctx.signal, sleep: abortableSleep,
  });
  await runPollLoop(src, start, {
    get,
    publish: (item) => ctx.publish(output(item)),
    deadLetter: (reason, raw) => ctx.deadLetter(reason, raw, `api.${src.name}`),
    saveCursor: (c) => ctx.saveCheckpoint(c),
    progress: progressTotal(ctx),
    warn: (m) => ctx.log.warn({ source: src.name }, m),
    sleep: abortableSleep,
    signal: ctx.signal,
  }, pollOptions(ctx.config));
}

async function runReplaySource(ctx: SourceContext, setup: NewsReplaySetup): Promise<void> {
  const saved = await ctx.loadCheckpoint<Cursor>();
  await runReplay(setup.items, isCursor(saved) ? saved : null, {
    publishAsync: (item) => ctx.publishAsync(output(item)),
    flush: () => ctx.flush(),
    saveCursor: (c) => ctx.saveCheckpoint(c),
    progress: progressTotal(ctx),
    sleep: abortableSleep,
    signal: ctx.signal,
  }, setup.speed);
  // A finished replay stays up (idle) so its lease and status remain until the process stops.
  await new Promise<void>((r) => (ctx.signal.aborted ? r() : ctx.signal.addEventListener("abort", () => r(), { once: true })));
}

export function newsActor(replay: NewsReplaySetup | null): SourceActorDef {
  return {
    kind: "source",
    stage: NEWS_STAGE,
    keys: (config) => [...configuredSources(config), ...(replay ? [REPLAY_SOURCE] : [])],
    async run(ctx) {
      if (ctx.key === REPLAY_SOURCE && replay) return runReplaySource(ctx, replay);
      return runPolled(ctx);
    },
  };
}
