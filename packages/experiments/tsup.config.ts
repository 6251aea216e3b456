import { defineConfig } from "tsup";

export default defineConfig([
  {
    entry: ["src/index.ts", "src/node.ts"],
    format: ["esm", "cjs"],
    dts: true,
    clean: false,
    sourcemap: true,
    target: "es2022",
  },
  {
    // The CLI and its worker processes: ESM only, executable.
    entry: ["src/cli.ts", "src/worker.ts"],
    format: ["esm"],
    sourcemap: true,
    target: "es2022",
  },
]);
