// Errors of the news sources, with the stable codes of protocol/errors.ts.
import { ErrorCode, TickflowError } from "../../protocol/errors.js";

/** A news API or feed answered something unusable as a whole (not JSON/XML, an error object, truncated). */
export class NewsApiError extends TickflowError {
  readonly source: string;
  /** HTTP status when the answer had one that was not 2xx. */
  readonly status?: number;
  /** The answer (possibly shortened), for the dead letter. */
  raw?: string;
  constructor(source: string, message: string, options?: { status?: number; cause?: unknown; raw?: string }) {
    super(ErrorCode.NewsApi, `${source}: ${message}`, options);
    this.name = "NewsApiError";
    this.source = source;
    this.status = options?.status;
    this.raw = options?.raw;
  }
}
