// The gateway's contribution to the `tickflow` CLI: the `gateway` command, and in `tickflow up` a
// gateway on --port / PORT (default 3000) whose dashboard URL the banner prints.
import type { CommandDef, Plugin } from "../supervisor/plugin.js";
import { connectNats, resolveNatsUrl } from "../supervisor/nats.js";
import { startGateway, type RunningGateway } from "./server.js";

function portFlag(v: unknown, usage: (m: string) => never): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0 || n > 65535) usage(`--port must be 0–65535 (got "${String(v)}")`);
  return n;
}

export const gatewayCommand: CommandDef = {
  name: "gateway",
  maxArgs: 0,
  help: `  gateway [--port N] [--host H] [--nats URL]
      The HTTP gateway: REST (/v1/…), live SSE (/v1/stream), /metrics, /docs and the dashboard
      at /. Port: --port, then PORT, then 3000. Run any number behind a load balancer.`,
  async run(ctx) {
    const port = portFlag(ctx.flags.port, ctx.usage);
    const url = resolveNatsUrl(ctx.flags.nats as string | undefined, ctx.config.natsUrl, ctx.config.dataDir);
    const nc = await connectNats(url, "tickflow-gateway", ctx.config.natsAuth);
    let gw: RunningGateway;
    try {
      gw = await startGateway({ nc, config: ctx.config, log: ctx.log, port, host: ctx.flags.host as string | undefined });
    } catch (err) {
      await nc.close().catch(() => {});
      throw err;
    }
    process.stderr.write(`tickflow gateway: ${gw.url} · dashboard ${gw.dashboardUrl} · API docs ${gw.url}/docs · NATS ${url}\n`);
    await ctx.stopSignal;
    await gw.close();
    await nc.drain().catch(() => {});
  },
};

export const gatewayPlugin: Plugin = {
  name: "gateway",
  commands: [gatewayCommand],
  options: { port: { type: "string" }, host: { type: "string" } },
  upHelp: "      --port N        the gateway and dashboard port (default: PORT, then 3000); with --once only if given",
  async up(ctx) {
    const port = portFlag(ctx.flags.port, ctx.usage);
    // A bounded run (--once) exits when done: no dashboard unless a port is asked for explicitly
    // (so parallel bounded runs do not fight over port 3000).
    if (ctx.flags.once && port === undefined && !process.env.PORT) return;
    let gw: RunningGateway | null = null;
    return {
      // Listen once the worker runs, so the first page already has actors to show.
      async started() {
        gw = await startGateway({ nc: ctx.nc, config: ctx.config, log: ctx.log, port });
        process.stderr.write(`tickflow up: dashboard ${gw.dashboardUrl} · API ${gw.url}/docs\n`);
      },
      async close() {
        await gw?.close();
      },
    };
  },
};
