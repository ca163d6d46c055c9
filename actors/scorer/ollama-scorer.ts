// Per-coin scoring by a local LLM through Ollama (the `ollama` package), with structured outputs:
// `format` is a JSON schema, so the model is constrained to {coins: [{coin, signal, confidence,
// reason}]}. The answer is still validated (a model may ignore the constraint, an older Ollama
// ignores `format`), each request has a deadline, and failures are retried with backoff. What is
// left after the retries is a typed error: LlmUnavailableError (no answer in time, refused, HTTP
// error) or LlmInvalidAnswerError (answers came, none valid; it carries the last one).
import { Ollama } from "ollama";
import { Type, type Static } from "@sinclair/typebox";
import { ErrorCode, TickflowError } from "../../protocol/errors.js";
import { validator } from "../../protocol/messages.js";
import { SignalLabel } from "../../protocol/news.js";

export type OllamaScorerOptions = {
  /** Ollama's base URL (OLLAMA_HOST), e.g. http://127.0.0.1:11434. */
  host: string;
  model: string;
  /** Deadline per request. */
  timeoutMs: number;
  /** Further attempts after the first. */
  retries: number;
  /** Backoff before retry k: backoffMs · 2^(k−1). */
  backoffMs: number;
};

export const DEFAULT_OLLAMA_OPTIONS: Omit<OllamaScorerOptions, "host" | "model"> = { timeoutMs: 20_000, retries: 2, backoffMs: 500 };

const CoinScoreSchema = Type.Object({
  coin: Type.String({ pattern: "^[A-Z0-9]{1,16}$" }),
  signal: SignalLabel,
  confidence: Type.Number({ minimum: 0, maximum: 1 }),
  reason: Type.String({ maxLength: 500 }),
}, { additionalProperties: false });
export type CoinScore = Static<typeof CoinScoreSchema>;
const AnswerSchema = Type.Object({ coins: Type.Array(CoinScoreSchema, { minItems: 1, maxItems: 32 }) }, { additionalProperties: false });
const AnswerCheck = validator(AnswerSchema);

/** The JSON schema sent as `format`: the answer's shape, with the coin symbols limited to those asked. */
export function answerJsonSchema(coins: string[]): object {
  return {
    type: "object",
    properties: {
      coins: {
        type: "array", minItems: coins.length, maxItems: coins.length,
        items: {
          type: "object",
          properties: {
            coin: { type: "string", enum: coins },
            signal: { type: "string", enum: ["bullish", "bearish", "neutral"] },
            confidence: { type: "number", minimum: 0, maximum: 1 },
            reason: { type: "string" },
          },
          required: ["coin", "signal", "confidence", "reason"],
        },
      },
    },
    required: ["coins"],
  };
}

export class LlmUnavailableError extends TickflowError {
  constructor(message: string, options?: { cause?: unknown }) {
    super(ErrorCode.LlmUnavailable, message, options);
    this.name = "LlmUnavailableError";
  }
}

export class LlmInvalidAnswerError extends TickflowError {
  /** The last answer's text, for the dead letter. */
  readonly answer: string;
  constructor(message: string, answer: string) {
    super(ErrorCode.LlmInvalidAnswer, message);
    this.name = "LlmInvalidAnswerError";
    this.answer = answer;
  }
}

const SYSTEM = [
  "You rate crypto news for traders. For each coin you are given, say whether the news is bullish,",
  "bearish or neutral for that coin's price in the next hours, how confident you are (0 to 1), and",
  "the reason in one short sentence. Answer for exactly the coins listed, each once, using their",
  "symbols as given. Use MARKET for news about the crypto market as a whole.",
].join(" ");

export type ScoreRequest = { title: string; body: string; coins: string[] };

export class OllamaScorer {
  readonly model: string;
  private readonly client: Ollama;
  private readonly o: OllamaScorerOptions;
  private readonly sleep: (ms: number) => Promise<void>;

  constructor(o: OllamaScorerOptions, sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms))) {
    this.o = o;
    this.model = o.model;
    this.sleep = sleep;
    const timeoutMs = o.timeoutMs;
    // The package sends non-streaming requests without a signal: the deadline is added here.
    const timedFetch: typeof fetch = (input, init) => {
      const t = AbortSignal.timeout(timeoutMs);
      return fetch(input, { ...init, signal: init?.signal ? AbortSignal.any([init.signal, t]) : t });
    };
    this.client = new Ollama({ host: o.host, fetch: timedFetch });
  }

  /** One score per requested coin, in the order asked. */
  async score(req: ScoreRequest): Promise<CoinScore[]> {
    const want = [...new Set(req.coins)];
    if (want.length === 0) throw new Error("OllamaScorer.score: no coins to score");
    const schema = answerJsonSchema(want);
    const user = `Coins: ${want.join(", ")}\nHeadline: ${req.title}${req.body ? `\nSummary: ${req.body.slice(0, 1500)}` : ""}`;
    let lastInvalid: { why: string; answer: string } | null = null;
    let lastError: unknown = null;
    const attempts = this.o.retries + 1;
    for (let a = 1; a <= attempts; a++) {
      if (a > 1) await this.sleep(this.o.backoffMs * 2 ** (a - 2));
      let content: string;
      try {
        const res = await this.client.chat({
          model: this.o.model,
          messages: [{ role: "system", content: SYSTEM }, { role: "user", content: user }],
          format: schema,
          stream: false,
          options: { temperature: 0 },
        });
        content = String(res?.message?.content ?? "");
      } catch (err) {
        lastError = err;
        continue;
      }
      const checked = checkAnswer(content, want);
      if (typeof checked === "string") {
        lastInvalid = { why: checked, answer: content };
        continue;
      }
      return checked;
    }
    const where = `Ollama ${this.o.host} model ${this.o.model}`;
    if (lastInvalid) {
      throw new LlmInvalidAnswerError(`${where}: answer still invalid after ${attempts} attempt(s): ${lastInvalid.why}`, lastInvalid.answer);
    }
    const e = lastError as { name?: string; message?: string; cause?: { code?: string } };
    const why = e?.name === "TimeoutError" || e?.name === "AbortError" ? `no answer within ${this.o.timeoutMs} ms` : `${e?.message ?? e}${e?.cause?.code ? ` (${e.cause.code})` : ""}`;
    throw new LlmUnavailableError(`${where}: ${why}, after ${attempts} attempt(s)`, { cause: lastError });
  }
}

/** The validated scores in the order of `want`, or why the answer is unusable. */
export function checkAnswer(content: string, want: string[]): CoinScore[] | string {
  let doc: unknown;
  try {
    doc = JSON.parse(content);
  } catch (err) {
    return `not JSON (${(err as Error).message}): ${content.slice(0, 80)}`;
  }
  const why = AnswerCheck.explain(doc);
  if (why) return `does not match the schema: ${why}`;
  const got = new Map<string, CoinScore>();
  for (const c of (doc as Static<typeof AnswerSchema>).coins) {
    if (!want.includes(c.coin)) return `names coin ${c.coin}, which was not asked for (asked: ${want.join(", ")})`;
    if (got.has(c.coin)) return `scores ${c.coin} twice`;
    got.set(c.coin, c);
  }
  const missing = want.filter((c) => !got.has(c));
  if (missing.length) return `has no score for ${missing.join(", ")}`;
  return want.map((c) => got.get(c) as CoinScore);
}
