// The gateway's one error handler: every failure becomes `{ error, message }` with a stable code
// from protocol/errors.ts and the HTTP status this table gives it.
import type { FastifyError, FastifyInstance } from "fastify";
import { ErrorCode, TickflowError } from "../protocol/errors.js";

/** HTTP status per error code; a code missing here is a 500. */
export const HTTP_STATUS: Partial<Record<ErrorCode, number>> = {
  [ErrorCode.BadArgs]: 400,
  [ErrorCode.BadPair]: 400,
  [ErrorCode.BadTimeframe]: 400,
  [ErrorCode.BadSubject]: 400,
  [ErrorCode.NotFound]: 404,
  [ErrorCode.NoData]: 404,
  [ErrorCode.Unauthorized]: 401,
  [ErrorCode.Forbidden]: 403,
  [ErrorCode.Unavailable]: 503,
  [ErrorCode.Internal]: 500,
};

export type ErrorBody = { error: string; message: string };

export function httpError(code: ErrorCode, message: string): TickflowError {
  return new TickflowError(code, message);
}

/** A bad request parameter: the message names it (`querystring.limit: …`). */
export function badParam(where: string, message: string): TickflowError {
  return new TickflowError(ErrorCode.BadArgs, `${where}: ${message}`);
}

export function installErrorHandler(app: FastifyInstance): void {
  app.setErrorHandler((err: FastifyError | TickflowError, req, reply) => {
    const fe = err as FastifyError;
    if (fe.validation) {
      // Ajv's first complaint, with the parameter named: "querystring.limit: must be <= 5000".
      const v = fe.validation[0];
      const field = (v?.instancePath || "").replace(/^\//, "").replace(/\//g, ".") ||
        String((v?.params as { missingProperty?: string } | undefined)?.missingProperty ?? "");
      const message = `${fe.validationContext ?? "request"}${field ? `.${field}` : ""}: ${v?.message ?? fe.message}`;
      return reply.status(400).send({ error: ErrorCode.BadArgs, message } satisfies ErrorBody);
    }
    if (err instanceof TickflowError) {
      const status = HTTP_STATUS[err.code] ?? (err.code.startsWith("TF_BAD_") ? 400 : 500);
      if (status >= 500) req.log.error({ err }, "request failed");
      return reply.status(status).send({ error: err.code, message: err.message } satisfies ErrorBody);
    }
    // Fastify's own client errors (bad JSON body, unsupported media type) keep their 4xx.
    const status = typeof fe.statusCode === "number" && fe.statusCode >= 400 && fe.statusCode < 500 ? fe.statusCode : 500;
    if (status === 500) req.log.error({ err }, "request failed");
    const code = status === 500 ? ErrorCode.Internal : ErrorCode.BadArgs;
    return reply.status(status).send({ error: code, message: status === 500 ? "internal error; see the gateway log" : fe.message } satisfies ErrorBody);
  });
  app.setNotFoundHandler((req, reply) => {
    reply.status(404).send({ error: ErrorCode.NotFound, message: `no route ${req.method} ${req.url.split("?")[0]}` } satisfies ErrorBody);
  });
}
