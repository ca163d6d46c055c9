#!/usr/bin/env node
// The `tickflow` command. Sources are TypeScript, loaded through tsx's ESM hooks, so the checkout
// runs as is after `npm install` (no build step to forget).
import { register } from "tsx/esm/api";

register();
const { run } = await import("../supervisor/cli.ts");
const { plugins } = await import("./stages.ts");
run(process.argv.slice(2), plugins);
