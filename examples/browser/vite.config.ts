import { existsSync, readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, resolve } from "node:path";
import { gunzipSync, gzipSync } from "node:zlib";
import { type Plugin, defineConfig } from "vite";
import { parse } from "yaml";
import { HEAD_DIR, HEAD_DOCUMENTS } from "./src/corpora.js";

const here = import.meta.dirname;
const workspace = resolve(here, "../..");

/**
 * The study config the page runs: `MIDTRAIN_STUDY` (a path, relative to the working directory),
 * else the micro study's own file next to this example in the midtrain repository.
 */
function studyPath(): string {
  const fromEnv = process.env.MIDTRAIN_STUDY;
  const file = fromEnv ? resolve(fromEnv) : resolve(here, "../micro-study/micro-study.yaml");
  if (!existsSync(file)) {
    throw new Error(
      fromEnv
        ? `MIDTRAIN_STUDY=${fromEnv}: no such file (${file})`
        : `the study config ${file} is missing: outside the midtrain repository, copy examples/micro-study/micro-study.yaml next to this example and build with MIDTRAIN_STUDY=micro-study.yaml`,
    );
  }
  return file;
}

/**
 * `virtual:midtrain-study`: the study config's YAML text (its default export) and its file name.
 * The page parses it with the same functions as the Node CLI.
 */
function studyPlugin(file: string): Plugin {
  const id = "virtual:midtrain-study";
  return {
    name: "midtrain-study",
    resolveId: (source) => (source === id ? `\0${id}` : undefined),
    load(resolved) {
      if (resolved !== `\0${id}`) return undefined;
      this.addWatchFile(file);
      const name = file.split(/[\\/]/).pop();
      return `export default ${JSON.stringify(readFileSync(file, "utf8"))};\nexport const fileName = ${JSON.stringify(name)};\n`;
    },
  };
}

/** The corpora folder of the installed `@midtrain/data` (a workspace link inside the repository). */
function corporaDir(): string {
  const pkg = createRequire(resolve(here, "package.json")).resolve("@midtrain/data/package.json");
  const dir = resolve(dirname(pkg), "corpora");
  if (!existsSync(resolve(dir, "MANIFEST.json"))) throw new Error(`@midtrain/data has no corpora/MANIFEST.json at ${dir}; reinstall @midtrain/data`);
  return dir;
}

/** The corpora a study config names (`{ corpus: name }` in data.sources and data.sft). */
function corporaOf(studyFile: string): string[] {
  const data = (parse(readFileSync(studyFile, "utf8")) as { data?: Record<string, unknown> }).data ?? {};
  const names = new Set<string>();
  for (const group of ["sources", "sft"]) {
    for (const s of Object.values((data[group] ?? {}) as Record<string, { corpus?: unknown }>)) {
      if (typeof s?.corpus === "string") names.add(s.corpus);
    }
  }
  return [...names].sort();
}

/** The first `n` documents (lines) of a gzipped JSON Lines file, gzipped again. */
function headOf(gz: Buffer, n: number): Buffer {
  const lines = gunzipSync(gz)
    .toString("utf8")
    .split("\n")
    .filter((l) => l.trim() !== "");
  return gzipSync(Buffer.from(`${lines.slice(0, n).join("\n")}\n`, "utf8"), { level: 9 });
}

/**
 * The served `corpora/` folder (dev server and build alike): MANIFEST.json, the train and
 * validation files of the corpora the study names, and `corpora/head/<train file>` with the
 * first HEAD_DOCUMENTS documents of each train file, which the shrunken study fetches instead.
 */
function corporaPlugin(studyFile: string): Plugin {
  const dir = corporaDir();
  const files = (): Map<string, () => Buffer> => {
    const manifest = JSON.parse(readFileSync(resolve(dir, "MANIFEST.json"), "utf8")) as {
      corpora: Record<string, { files: Record<"train" | "valid", { file: string }> }>;
    };
    const out = new Map<string, () => Buffer>([["MANIFEST.json", () => readFileSync(resolve(dir, "MANIFEST.json"))]]);
    for (const name of corporaOf(studyFile)) {
      const entry = manifest.corpora[name];
      if (!entry) throw new Error(`${studyFile} names corpus '${name}', which @midtrain/data does not ship (${Object.keys(manifest.corpora).join(", ")})`);
      const { train, valid } = entry.files;
      out.set(train.file, () => readFileSync(resolve(dir, train.file)));
      out.set(valid.file, () => readFileSync(resolve(dir, valid.file)));
      out.set(`${HEAD_DIR}${train.file}`, () => headOf(readFileSync(resolve(dir, train.file)), HEAD_DOCUMENTS));
    }
    return out;
  };
  return {
    name: "midtrain-corpora",
    configureServer(server) {
      server.middlewares.use("/corpora", (req, res, next) => {
        const name = decodeURIComponent((req.url ?? "/").split("?")[0].slice(1));
        const read = files().get(name);
        if (!read) return next();
        res.setHeader("Content-Type", name.endsWith(".json") ? "application/json" : "application/gzip");
        res.end(read());
      });
    },
    generateBundle() {
      for (const [name, read] of files()) this.emitFile({ type: "asset", fileName: `corpora/${name}`, source: read() });
    },
  };
}

/** Inside the midtrain repository: the packages' TypeScript sources are next door. */
const inRepository = existsSync(resolve(workspace, "packages/experiments/src/index.ts"));

export default defineConfig(({ command, mode }) => {
  const study = studyPath();
  // A build always resolves the packages through their published entries (`exports` → dist),
  // exactly as after an install from npm. The dev server inside the repository runs their
  // TypeScript sources instead (as the root vitest config does), so package edits show up
  // without a build; `vite --mode packages` makes it use the built entries too.
  const sources = command === "serve" && inRepository && mode !== "packages";
  return {
    // Relative URLs everywhere: the built folder works from any path of any static host.
    base: "./",
    resolve: {
      alias: sources ? [{ find: /^@midtrain\/([a-z0-9-]+)$/, replacement: `${workspace}/packages/$1/src/index.ts` }] : [],
      dedupe: ["@tensorflow/tfjs-core"],
    },
    plugins: [studyPlugin(study), corporaPlugin(study)],
    build: { target: "es2022", chunkSizeWarningLimit: 8000 },
    server: { host: "127.0.0.1" },
    preview: { host: "127.0.0.1" },
  };
});
