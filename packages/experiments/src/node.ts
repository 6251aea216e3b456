import { mkdir, readFile, rm } from "node:fs/promises";
import { dirname, isAbsolute, join, resolve } from "node:path";
import { pathToFileURL } from "node:url";
import { byteTokenizer } from "@midtrain/data";
import { loadTokenizer } from "@midtrain/data/node";
import { type MetricsRecord, recordToJson } from "@midtrain/trainer";
import { FsStorage, JsonlSink, readJsonl } from "@midtrain/trainer/node";
import type { ExperimentConfig } from "./config.js";
import type { Registry } from "@midtrain/schedulers";
import { buildExperimentData } from "./data.js";
import type { ExperimentData, RunEnv } from "./env.js";
import { experimentRegistry } from "./plugins.js";
import { ExperimentError } from "./errors.js";
import { writeFileAtomic } from "./report/write.js";
import { type SourceStoreOptions, sourceStore, storeSources } from "./stores.js";

export { checkDataFiles, loadExperimentConfig } from "./load.js";

/** Imports a plugin by the path `loadExperimentConfig` resolved (or by package name). */
export function importPlugin(specifier: string): Promise<unknown> {
  return import(/* @vite-ignore */ isAbsolute(specifier) ? pathToFileURL(specifier).href : specifier);
}

/** The experiment's schedule registry in Node: built-ins plus the config's plugins. */
export function nodeExperimentRegistry(config: Pick<ExperimentConfig, "plugins">): Promise<Registry> {
  return experimentRegistry(config, { import: importPlugin });
}
export { acquireRunLock, checkRunFolder, RunFolderError, type RunLock, RunLockedError } from "./lock.js";
export { writeReport } from "./report/write.js";

/** Creates the folder, then writes the file atomically (temp name + rename). */
async function writeAtomic(path: string, text: string): Promise<void> {
  await mkdir(dirname(path), { recursive: true });
  await writeFileAtomic(path, text);
}

/**
 * Every source of a config, read from token stores: a `store:` source from its folder, a shipped
 * corpus or raw files from a cache folder that is prepared on first use (see stores.ts).
 */
export async function loadExperimentData(config: ExperimentConfig, options: Omit<SourceStoreOptions, "tokenizer"> = {}): Promise<ExperimentData> {
  const tokenizer = config.tokenizer === "byte" ? byteTokenizer() : loadTokenizer({ tokenizerJson: config.tokenizer.path });
  return buildExperimentData(config, tokenizer, async (request) => {
    const store = await sourceStore(config, request.name, request.source, request.kind, { ...options, tokenizer });
    return storeSources(store, request);
  });
}

/** A run-folder file that is not what it should be (garbled JSON, a malformed metrics line). */
export class RunFileError extends ExperimentError {}

/** A run folder on disk: checkpoints, metrics and outcomes under `root`. Data is loaded once per process. */
export function nodeEnv(root: string): RunEnv {
  const base = resolve(root);
  let cached: { key: string; data: Promise<ExperimentData> } | undefined;
  const readMetrics = async (p: string, onTorn?: (where: string) => void): Promise<MetricsRecord[]> => {
    const file = join(base, p);
    try {
      return await readJsonl(file, { onTornTail: (t) => onTorn?.(`${t.path}:${t.line}`) });
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === "ENOENT") return [];
      throw e;
    }
  };
  return {
    loadData(config) {
      const key = JSON.stringify([config.tokenizer, config.data]);
      if (!cached || cached.key !== key) cached = { key, data: loadExperimentData(config) };
      return cached.data;
    },
    storage: (p) => new FsStorage(join(base, p)),
    sink: (p) => new JsonlSink(join(base, p)),
    readMetrics,
    async rewindMetrics(p, maxStep) {
      const file = join(base, p);
      if (maxStep === Number.POSITIVE_INFINITY) return; // the sink drops a torn tail when it opens
      if (maxStep < 0) {
        await rm(file, { force: true });
        return;
      }
      const kept = (await readMetrics(p)).filter((r) => r.step <= maxStep);
      await writeAtomic(file, kept.map((r) => `${recordToJson(r)}\n`).join(""));
    },
    async readJson<T>(p: string) {
      const file = join(base, p);
      let text: string;
      try {
        text = await readFile(file, "utf8");
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code === "ENOENT") return undefined;
        throw e;
      }
      try {
        return JSON.parse(text) as T;
      } catch (e) {
        throw new RunFileError(`${file} is not valid JSON (${(e as Error).message}); delete it to have the run write it again`);
      }
    },
    importModule: importPlugin,
    writeJson: (p, v) => writeAtomic(join(base, p), `${JSON.stringify(v, null, 2)}\n`),
  };
}
