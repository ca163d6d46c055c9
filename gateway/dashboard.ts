// The dashboard at `/`: a static page, its script and the charting library straight from
// node_modules. Files are read once at start and served from memory: no build step, no disk I/O
// per request.
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import type { FastifyInstance } from "fastify";

const HERE = dirname(fileURLToPath(import.meta.url));
const require = createRequire(import.meta.url);

function asset(path: string, type: string) {
  return { body: readFileSync(path), type };
}

export function dashboardRoutes(app: FastifyInstance): void {
  const lib = join(dirname(require.resolve("lightweight-charts/package.json")), "dist", "lightweight-charts.standalone.production.mjs");
  const files: Record<string, { body: Buffer; type: string }> = {
    "/": asset(join(HERE, "public", "index.html"), "text/html; charset=utf-8"),
    "/dashboard/app.js": asset(join(HERE, "public", "app.js"), "text/javascript; charset=utf-8"),
    "/dashboard/style.css": asset(join(HERE, "public", "style.css"), "text/css; charset=utf-8"),
    "/vendor/lightweight-charts.mjs": asset(lib, "text/javascript; charset=utf-8"),
  };
  for (const [url, f] of Object.entries(files)) {
    app.get(url, { schema: { hide: true } }, async (_req, reply) => {
      reply.header("content-type", f.type).header("cache-control", "no-cache");
      return f.body;
    });
  }
}
