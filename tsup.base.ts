import { defineConfig, type Options } from "tsup";

/**
 * The build every package shares: ESM + CJS with source maps for ES2022, declarations unless
 * MIDTRAIN_SKIP_DTS=1 (the main job builds JavaScript only; declarations take most of the build
 * time). A package's tsup.config.ts passes its entries and anything it does differently.
 */
export function packageBuild(options: Options = {}) {
  return defineConfig({
    entry: ["src/index.ts"],
    format: ["esm", "cjs"],
    dts: !process.env.MIDTRAIN_SKIP_DTS,
    clean: true,
    sourcemap: true,
    target: "es2022",
    ...options,
  });
}
