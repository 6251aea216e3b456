import { defineConfig } from "tsup";
import { packageBuild } from "../../tsup.base";

export default [
  // The library entries; `clean: false` because the CLI build below writes into the same dist/.
  packageBuild({ entry: ["src/index.ts", "src/node.ts"], clean: false }),
  defineConfig({
    // The CLI and its worker processes: ESM only, executable.
    entry: ["src/cli.ts", "src/worker.ts"],
    format: ["esm"],
    sourcemap: true,
    target: "es2022",
  }),
];
