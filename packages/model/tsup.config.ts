import { defineConfig } from "tsup";

export default defineConfig({
  // index: browser-safe core; node: file I/O (`@midtrain/model/node`)
  entry: ["src/index.ts", "src/node.ts"],
  format: ["esm", "cjs"],
  dts: true,
  clean: true,
  sourcemap: true,
  target: "es2022",
});
