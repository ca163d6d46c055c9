// Worker-thread entry of a training run (compute-run.ts). Workers do not share the main thread's
// module loader hooks, so TypeScript is registered here before the module is imported.
import { register } from "tsx/esm/api";

register();
await import("./train-worker-main.ts");
