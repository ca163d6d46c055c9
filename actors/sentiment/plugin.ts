// The news-and-sentiment plugin: the `sentiment` command (scoring without NATS). The stages news
// (one poller per source), scorer (pool) and sentiment (per pair) join it with the runtime's keyed,
// pool and joined-input actors.
import type { Plugin } from "../../supervisor/plugin.js";
import { sentimentCommand } from "../scorer/cli.js";

export const sentimentPlugin: Plugin = {
  name: "sentiment",
  commands: [sentimentCommand],
  options: {
    stdin: { type: "boolean" },
    "ollama-host": { type: "string" },
    "ollama-model": { type: "string" },
  },
  configure(flags, config) {
    if (typeof flags["ollama-host"] === "string") config.news.ollama.host = flags["ollama-host"];
    if (typeof flags["ollama-model"] === "string") config.news.ollama.model = flags["ollama-model"];
  },
};
