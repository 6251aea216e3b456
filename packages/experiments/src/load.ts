import { existsSync } from "node:fs";
import { readFile } from "node:fs/promises";
import { listCorpora } from "@midtrain/data/node";
import { suggest } from "@midtrain/schedulers";
import { isAbsolute, resolve, dirname } from "node:path";
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
  }
  if (typeof config.tokenizer === "object") config.tokenizer.path = fix(config.tokenizer.path)!;
  checkCorpora(config, path);
  return config;
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
        if (p && !existsSync(p)) issues.push({ path: `${where}.${name}.${key}`, message: `${p} does not exist` });
      }
    }
  }
  if (files && typeof config.tokenizer === "object" && !existsSync(config.tokenizer.path)) {
    issues.push({ path: "tokenizer.path", message: `${config.tokenizer.path} does not exist` });
  }
  if (issues.length) throw new ConfigError(source, issues);
}
