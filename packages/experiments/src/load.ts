import { readFile } from "node:fs/promises";
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
  return config;
}
