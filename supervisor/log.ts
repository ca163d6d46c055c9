// Logs for people and for machines: readable lines (pino-pretty) when stderr is a terminal, JSON
// lines when it is piped or in a container (where a log collector parses them). LOG_FORMAT=json or
// pretty overrides the guess.
import pino, { type Logger } from "pino";
import pretty from "pino-pretty";
import type { Config } from "./config.js";

export type LogFormat = "auto" | "json" | "pretty";

export function logFormat(format: LogFormat, isTty: boolean): "json" | "pretty" {
  if (format === "json" || format === "pretty") return format;
  return isTty ? "pretty" : "json";
}

export function makeLogger(config: Config, stream: NodeJS.WriteStream = process.stderr): Logger {
  const opts = { level: config.log.level, base: { pid: process.pid } };
  const fd = (stream as { fd?: number }).fd ?? 2;
  if (logFormat(config.logFormat, !!stream.isTTY) === "json") return pino(opts, pino.destination(fd));
  // In-process and synchronous: no worker thread, and nothing lost when the process exits right after.
  return pino(opts, pretty({
    destination: fd, sync: true, colorize: !!stream.isTTY,
    translateTime: "HH:MM:ss.l", ignore: "pid,hostname",
  }));
}
