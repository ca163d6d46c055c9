// What a stage (or the gateway) contributes to a Tickflow process, as plain data the CLI reads.
// The runtime knows no stage: the composition root (`bin/stages.ts`) lists the plugins, one line
// each, and `supervisor/cli.ts` builds the commands, `tickflow run --stages …` and `tickflow up`
// from that list.
import type { NatsConnection } from "@nats-io/transport-node";
import type { JetStreamClient } from "@nats-io/jetstream";
import type { Logger } from "pino";
import type { ActorDef } from "./actor.js";
import type { Config } from "./config.js";
import type { Supervisor } from "./runtime.js";

/** Parsed command-line flags (node:util parseArgs values). */
export type Flags = Record<string, string | boolean | string[] | undefined>;

/** One extra option a plugin's commands or `up` accept, as node:util parseArgs describes it. */
export type OptionSpec = { type: "string" | "boolean"; multiple?: boolean; short?: string };

/** Facts about the process that a stage may need when it builds its actor definition. */
export type StageContext = {
  config: Config;
  log: Logger;
  /** Set by `tickflow up` when the input is bounded (`--once`): sources end after it. */
  bounded: boolean;
  /** Values other plugins' `up` hooks handed over (e.g. the replay's last trade id per pair). */
  shared: Map<string, unknown>;
};

export type StageDef = {
  /** The stage name used in `--stages`, leases and status. */
  stage: string;
  create(ctx: StageContext): ActorDef;
  /** What the stage's actors are keyed by (default "pair"); `tickflow status` lists per-pair rows only for "pair". */
  keyedBy?: "pair" | "own" | "pool";
  /** Sources: the subject their output ends on, for `tickflow status` of a stopped actor. */
  output?(key: string): { stream: string; subject: string };
};

/** What a command gets: its positional arguments, every flag, and helpers that every command shares. */
export type CommandContext = {
  args: string[];
  flags: Flags;
  config: Config;
  log: Logger;
  /** Connects with the deadline and error message every command uses; closes after `fn`. */
  withNats<T>(name: string, fn: (nc: NatsConnection, js: JetStreamClient) => Promise<T>): Promise<T>;
  /** Throws the usage error (exit code 2) with `msg`. */
  usage(msg: string): never;
  /** Resolves when SIGINT/SIGTERM arrives (a long-running command then shuts down and returns). */
  stopSignal: Promise<void>;
};

export type CommandDef = {
  /** `tickflow <name> …`; one word. */
  name: string;
  /** How many positional arguments it takes at most (default: any); more is a usage error. */
  maxArgs?: number;
  /** Lines for `tickflow --help`: a usage line, then indented explanation. */
  help: string;
  run(ctx: CommandContext): Promise<void>;
};

/** What `tickflow up` hands to each plugin's hook, after NATS is up and before the worker starts. */
export type UpContext = {
  flags: Flags;
  config: Config;
  log: Logger;
  nc: NatsConnection;
  js: JetStreamClient;
  /** Shared values between hooks and stage factories (see StageContext.shared). */
  shared: Map<string, unknown>;
  /** The pairs given with --pairs, checked and normalized; undefined without the flag. */
  pairs?: string[];
  usage(msg: string): never;
};

/** What a plugin's `up` hook returns: pairs it knows of, a line for the banner, and how to stop. */
export type UpContribution = {
  /** Pairs this input covers (e.g. the pairs of the replay files). */
  pairs?: string[];
  /** One line printed at start ("source: replay of 2 files at speed max"). */
  note?: string;
  /** Called after the worker started (e.g. a gateway listens now). */
  started?(sup: Supervisor): Promise<void>;
  /** `up --once`: resolves when this plugin's bounded input has been fully processed. */
  drained?(sup: Supervisor): Promise<void>;
  /** `up --once` on a terminal: how far the bounded input is (shown as a progress line). */
  progress?(sup: Supervisor): { done: number; total: number; unit: string } | null;
  close?(): Promise<void>;
};

export type Plugin = {
  name: string;
  stages?: StageDef[];
  commands?: CommandDef[];
  /** Options added to the CLI (names must not clash with another plugin's). */
  options?: Record<string, OptionSpec>;
  /** Lines for the `up` section of --help (the options this plugin adds to `up`). */
  upHelp?: string;
  /** Applies this plugin's flags to the config of any process that runs its stages (`up`, `run`). */
  configure?(flags: Flags, config: Config): void;
  up?(ctx: UpContext): Promise<UpContribution | void>;
};
