import { defineConfig } from "tsup";

export default defineConfig({
  entry: ["src/index.ts"],
  format: ["esm", "cjs"],
  // MIDTRAIN_SKIP_DTS=1 (the main job) builds JavaScript only; declarations take most of the build time.
  dts: !process.env.MIDTRAIN_SKIP_DTS,
  clean: true,
  sourcemap: true,
  target: "es2022",
});
