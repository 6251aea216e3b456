import { createReadStream, readFileSync, readdirSync, statSync } from "node:fs";
import { resolve } from "node:path";
import { type Plugin, defineConfig } from "vite";

const root = resolve(import.meta.dirname, "../..");
const corpora = resolve(root, "packages/data/corpora");

/**
 * Serves the corpora shipped with @midtrain/data at `<base>corpora/` (dev server) and copies
 * them into the build, so the page fetches the same files the Node loader reads.
 */
function corporaPlugin(): Plugin {
  return {
    name: "midtrain-corpora",
    configureServer(server) {
      server.middlewares.use("/corpora", (req, res, next) => {
        const name = decodeURIComponent((req.url ?? "/").split("?")[0].slice(1));
        if (!/^[A-Za-z0-9._-]+$/.test(name)) return next();
        const file = resolve(corpora, name);
        try {
          statSync(file);
        } catch {
          return next();
        }
        res.setHeader("Content-Type", name.endsWith(".json") ? "application/json" : "application/octet-stream");
        createReadStream(file).pipe(res);
      });
    },
    generateBundle() {
      for (const name of readdirSync(corpora)) {
        if (name === "MANIFEST.json" || name.endsWith(".jsonl.gz")) {
          this.emitFile({ type: "asset", fileName: `corpora/${name}`, source: readFileSync(resolve(corpora, name)) });
        }
      }
    },
  };
}

export default defineConfig({
  // Workspace packages resolve to their TypeScript sources (as in the root vitest config), so the
  // page and the Node side of the test run the same code without a stale build in between.
  resolve: {
    alias: [
      { find: /^@midtrain\/([a-z0-9-]+)$/, replacement: `${root}/packages/$1/src/index.ts` },
    ],
    dedupe: ["@tensorflow/tfjs-core"],
  },
  plugins: [corporaPlugin()],
  build: { target: "es2022", chunkSizeWarningLimit: 8000 },
  server: { host: "127.0.0.1" },
  preview: { host: "127.0.0.1" },
});
