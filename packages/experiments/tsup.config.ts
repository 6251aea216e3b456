import { defineConfig } from "tsup";
import { packageBuild } from "../../tsup.base";

export default [
  // The library entries; `clean: false` because the CLI build below writes into the same dist/.
  packageBuild({ entry: { index: "src/index.ts", node: "src/node.ts", queue: "src/queue.ts" }, clean: false }),
  defineConfig({
    // The CLI and its worker processes: ESM only, executable.
    // queue-child: the training process of `midtrain worker` (distributed sweeps).
    entry: { cli: "src/cli.ts", worker: "src/worker.ts", "queue-child": "src/queue/child.ts" },
    format: ["esm"],
    sourcemap: true,
    target: "es2022",
  }),
];
