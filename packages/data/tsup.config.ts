import { defineConfig } from "tsup";

export default defineConfig({
  // index: browser-safe core; node: file readers and the shipped corpora.
  entry: ["src/index.ts", "src/node.ts"],
  format: ["esm", "cjs"],
  dts: true,
  clean: true,
  sourcemap: true,
  target: "es2022",
  // import.meta.url in the CJS build (node.ts locates corpora/ with it).
  shims: true,
});
