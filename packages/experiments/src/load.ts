import { existsSync } from "node:fs";
import { createRequire } from "node:module";
import { readFile } from "node:fs/promises";
import { listCorpora } from "@midtrain/data/node";
import { suggest } from "@midtrain/schedulers";
import { isAbsolute, resolve, dirname, join } from "node:path";
import { parse as parseYaml } from "yaml";
import { type ExperimentConfig, parseExperimentConfig } from "./config.js";
import { ConfigError } from "./errors.js";

/** Reads a YAML or JSON experiment config; relative data paths are resolved against its folder. */
export async function loadExperimentConfig(path: string): Promise<ExperimentConfig> {
  let text: string;
  try {
    text = await readFile(path, "utf8");
  } catch (e) {
    throw new ConfigError(path, [{ path: "", message: `cannot read the file (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})` }]);
  }
  let raw: unknown;
  try {
    raw = /\.json$/i.test(path) ? JSON.parse(text) : parseYaml(text);
  } catch (e) {
    throw new ConfigError(path, [{ path: "", message: `not valid ${/\.json$/i.test(path) ? "JSON" : "YAML"}: ${(e as Error).message.split("\n")[0]}` }]);
  }
  const config = parseExperimentConfig(raw, path);
  const base = dirname(resolve(path));
  const fix = (p?: string) => (p && !isAbsolute(p) ? resolve(base, p) : p);
  for (const s of [...Object.values(config.data.sources), ...Object.values(config.data.sft)]) {
    s.path = fix(s.path);
    s.validPath = fix(s.validPath);
    s.store = fix(s.store);
  }
  if (typeof config.tokenizer === "object") config.tokenizer.path = fix(config.tokenizer.path)!;
  config.plugins = config.plugins.map((p, i) => resolvePlugin(p, base, path, i));
  checkCorpora(config, path);
  return config;
}

/**
 * Where a plugin named in a config lives, so every worker imports the same module: a path
 * (`./my-schedules.js`) resolves against the config's folder; a package name resolves from the
 * config's folder, then from the working folder; failing both it stays a name, which the
 * import resolves from this package's location (a plugin installed beside @midtrain/experiments).
 */
function resolvePlugin(spec: string, base: string, source: string, index: number): string {
  if (spec.startsWith(".") || isAbsolute(spec)) {
    const p = resolve(base, spec);
    if (!existsSync(p)) throw new ConfigError(source, [{ path: `plugins[${index}]`, message: `${p} does not exist` }]);
    return p;
  }
  for (const from of [base, process.cwd()]) {
    try {
      return createRequire(resolve(from, "noop.js")).resolve(spec);
    } catch {
      // not installed there (or an ESM-only package without a require condition)
    }
  }
  return spec;
}

/** Shipped corpus names must exist: a typo fails when the config is loaded (also for `midtrain plan`). */
function checkCorpora(config: ExperimentConfig, source: string): void {
  checkData(config, source, false);
}

/**
 * Every file the config names (sources, validation files, tokenizer) must exist: `midtrain run`
 * checks this before anything starts. `midtrain plan` does not, so a config can be planned
 * before its data is brought.
 */
export function checkDataFiles(config: ExperimentConfig, source: string): void {
  checkData(config, source, true);
}

function checkData(config: ExperimentConfig, source: string, files: boolean): void {
  const issues: Array<{ path: string; message: string }> = [];
  const corpora = listCorpora();
  const groups = [
    ["data.sources", config.data.sources],
    ["data.sft", config.data.sft],
  ] as const;
  for (const [where, sources] of groups) {
    for (const [name, s] of Object.entries(sources)) {
      if (s.corpus && !corpora.includes(s.corpus)) {
        const guess = suggest(s.corpus, corpora, 1)[0];
        issues.push({
          path: `${where}.${name}.corpus`,
          message: `unknown corpus '${s.corpus}'${guess ? ` — did you mean '${guess}'?` : ""} (shipped: ${corpora.join(", ")}; \`midtrain corpora\` lists them)`,
        });
      }
      for (const key of files ? (["path", "validPath"] as const) : []) {
        const p = s[key];
        if (p && !/[*?]/.test(p) && !existsSync(p)) issues.push({ path: `${where}.${name}.${key}`, message: `${p} does not exist` });
      }
      if (files && s.store && !existsSync(join(s.store, "manifest.json"))) {
        issues.push({
          path: `${where}.${name}.store`,
          message: `${s.store} is not a complete token store (no manifest.json); create it with \`midtrain prepare --input ... --out ${s.store}\``,
        });
      }
    }
  }
  if (files && typeof config.tokenizer === "object" && !existsSync(config.tokenizer.path)) {
    issues.push({ path: "tokenizer.path", message: `${config.tokenizer.path} does not exist` });
  }
  if (issues.length) throw new ConfigError(source, issues);
}
