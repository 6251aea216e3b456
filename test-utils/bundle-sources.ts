/**
 * Bundles workspace entry files from their TypeScript sources (never a possibly stale dist/)
 * into one ESM file each, for tests that must run the current code in a real child process: a
 * training process killed with SIGKILL, a mixer restored in a fresh process. `@midtrain/*`
 * imports resolve to `packages/<name>/src/<sub or index>.ts`; every other dependency is inlined
 * except the optional GPU packages.
 */
import { join, resolve } from "node:path";
import { build } from "tsup";

const packages = resolve(import.meta.dirname, "../packages");

/** Writes `<outDir>/<name>.js` for each `name: entry file`; resolves when done. */
export async function bundleSources(entries: Record<string, string>, outDir: string): Promise<void> {
  await build({
    entry: entries,
    outDir,
    format: ["esm"],
    dts: false,
    sourcemap: false,
    silent: true,
    config: false,
    splitting: false,
    noExternal: [/.*/],
    external: ["webgpu", "@tensorflow/tfjs-node-gpu"],
    platform: "node",
    target: "node20",
    // CommonJS dependencies inside an ESM bundle need a require.
    banner: { js: "import { createRequire as __cr } from 'node:module'; const require = __cr(import.meta.url);" },
    esbuildPlugins: [
      {
        name: "midtrain-sources",
        setup(b) {
          b.onResolve({ filter: /^@midtrain\// }, (args) => {
            const [, name, sub] = /^@midtrain\/([a-z0-9-]+)(?:\/([a-z0-9-]+))?$/.exec(args.path) ?? [];
            return name ? { path: join(packages, name, "src", `${sub ?? "index"}.ts`) } : undefined;
          });
        },
      },
    ],
  });
}
