// HTTP for the pollers: one request at a time per source with a deadline, a minimum spacing between
// requests (rate limit), and errors sorted into "retry later" (with the server's Retry-After when
// it gives one) and "the answer is wrong" (the caller dead-letters it).
import { NewsApiError } from "./errors.js";

export type HttpGet = (url: string, headers?: Record<string, string>) => Promise<string>;

export type HttpOptions = {
  source: string;
  timeoutMs: number;
  /** Minimum ms between two requests. */
  minSpacingMs: number;
  signal: AbortSignal;
  sleep(ms: number, signal: AbortSignal): Promise<void>;
};

/** A retryable failure: network, timeout, 429, 5xx. `retryAfterMs` when the server said. */
export class TransientHttpError extends NewsApiError {
  readonly retryAfterMs?: number;
  constructor(source: string, message: string, o: { status?: number; retryAfterMs?: number; cause?: unknown } = {}) {
    super(source, message, o);
    this.name = "TransientHttpError";
    this.retryAfterMs = o.retryAfterMs;
  }
}

export function abortableSleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve();
    const t = setTimeout(done, ms);
    function done() {
      clearTimeout(t);
      signal.removeEventListener("abort", done);
      resolve();
    }
    signal.addEventListener("abort", done, { once: true });
  });
}

export function rateLimitedGet(o: HttpOptions): HttpGet {
  let last = -Infinity;
  return async (url, headers = {}) => {
    const wait = last + o.minSpacingMs - performance.now();
    if (wait > 0) await o.sleep(wait, o.signal);
    last = performance.now();
    const shown = url.replace(/(auth_token|api_key)=[^&]+/g, "$1=…");
    let res: Response;
    try {
      res = await fetch(url, { headers: { Accept: "application/json, application/xml, text/xml, */*", ...headers }, signal: AbortSignal.any([o.signal, AbortSignal.timeout(o.timeoutMs)]) });
    } catch (err) {
      const e = err as Error & { cause?: { code?: string } };
      const why = e.name === "TimeoutError" ? `no answer within ${o.timeoutMs} ms` : `${e.message}${e.cause?.code ? ` (${e.cause.code})` : ""}`;
      throw new TransientHttpError(o.source, `GET ${shown}: ${why}`, { cause: err });
    }
    let body: string;
    try {
      body = await res.text();
    } catch (err) {
      throw new TransientHttpError(o.source, `GET ${shown}: answer cut off (${(err as Error).message})`, { status: res.status, cause: err });
    }
    if (res.status === 429 || res.status >= 500) {
      const ra = Number(res.headers.get("retry-after"));
      throw new TransientHttpError(o.source, `GET ${shown}: HTTP ${res.status}`, { status: res.status, retryAfterMs: Number.isFinite(ra) && ra > 0 ? ra * 1000 : undefined });
    }
    if (res.status < 200 || res.status >= 300) throw new NewsApiError(o.source, `GET ${shown}: HTTP ${res.status}: ${body.slice(0, 200)}`, { status: res.status });
    return body;
  };
}
