/**
 * Node-only file access behind `@midtrain/data/node` (`./node.ts` lists what is public): text
 * files and folders, JSON Lines (plain or gzip), Parquet, and the corpora shipped with the
 * package. Everything here streams records; packing happens in the core.
 */
import { createReadStream, existsSync, readFileSync, statSync } from "node:fs";
import { readdir, readFile } from "node:fs/promises";
import { basename, dirname, join, resolve } from "node:path";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import { createGunzip } from "node:zlib";
import { asyncBufferFromFile, parquetMetadataAsync, parquetReadObjects } from "hyparquet";
import { compressors } from "hyparquet-compressors";
import { buildCorpusSource, type CorpusInfo, type CorpusManifest, type CorpusSourceOptions, corpusEntry, parseJsonlLine } from "./corpus.js";
import { DataConfigError, EmptySourceError, MalformedInputError, MissingFileError } from "./errors.js";
import type { SftFieldOptions } from "./records.js";
import { type BuiltSource, buildSource, type SourceOptions, type SourcedRecord } from "./source.js";
import { ByteTokenizer, loadHfTokenizer, type Tokenizer } from "./tokenizer.js";

export type FileFormat = "text" | "jsonl" | "parquet";

function ensureExists(path: string): void {
  if (!existsSync(path)) throw new MissingFileError(resolve(path), "check the path, or build it first");
}

/** Format from the file name: .jsonl/.ndjson/.json(.gz) → jsonl, .parquet → parquet, anything else → text. */
export function detectFormat(path: string): FileFormat {
  const p = path.toLowerCase().replace(/\.gz$/, "");
  if (p.endsWith(".jsonl") || p.endsWith(".ndjson") || p.endsWith(".json")) return "jsonl";
  if (p.endsWith(".parquet")) return "parquet";
  return "text";
}

function isGzip(path: string): boolean {
  return path.toLowerCase().endsWith(".gz");
}

/** Streams a JSON Lines file (gzip when the name ends in .gz), one record per non-blank line. */
export async function* readJsonl(path: string): AsyncGenerator<SourcedRecord> {
  ensureExists(path);
  const raw = createReadStream(path);
  const input = isGzip(path) ? raw.pipe(createGunzip()) : raw;
  const gzErr: { e?: Error } = {};
  if (isGzip(path))
    raw.on("error", (e) => {
      gzErr.e = e;
    });
  const rl = createInterface({ input, crlfDelay: Number.POSITIVE_INFINITY });
  let line = 0;
  try {
    for await (const text of rl) {
      line++;
      if (text.trim() === "") continue;
      yield { record: parseJsonlLine(text, path, line), origin: { file: path, line } };
    }
  } catch (e) {
    if (e instanceof MalformedInputError) throw e;
    throw new MalformedInputError(`cannot read ${isGzip(path) ? "gzip " : ""}JSON Lines: ${(e as Error).message}`, path, line + 1);
  } finally {
    rl.close();
    raw.destroy();
  }
  if (gzErr.e) throw new MalformedInputError(`cannot read file: ${gzErr.e.message}`, path);
}

export interface ParquetReadOptions {
  /** Only these columns (default: all). */
  columns?: string[];
  /** Rows read per chunk (default 4096); memory stays bounded by one chunk. */
  chunkRows?: number;
}

/** Streams the rows of a Parquet file as objects, chunk by chunk (all codecs supported). */
export async function* readParquet(path: string, options: ParquetReadOptions = {}): AsyncGenerator<SourcedRecord> {
  ensureExists(path);
  let file: Awaited<ReturnType<typeof asyncBufferFromFile>>;
  let metadata: Awaited<ReturnType<typeof parquetMetadataAsync>>;
  try {
    file = await asyncBufferFromFile(path);
    metadata = await parquetMetadataAsync(file);
  } catch (e) {
    throw new MalformedInputError(`not a readable Parquet file: ${(e as Error).message}`, path);
  }
  const total = Number(metadata.num_rows);
  const chunk = options.chunkRows ?? 4096;
  for (let start = 0; start < total; start += chunk) {
    const rows = await parquetReadObjects({
      file,
      metadata,
      columns: options.columns,
      rowStart: start,
      rowEnd: Math.min(total, start + chunk),
      compressors,
    });
    for (let i = 0; i < rows.length; i++) yield { record: rows[i], origin: { file: path, line: start + i + 1 } };
  }
}

export interface TextReadOptions {
  /** How a text file becomes documents: the whole file (default), or one per non-blank line / blank-line-separated paragraph. */
  unit?: "file" | "line" | "paragraph";
  /** Only files with these extensions when reading a folder (e.g. [".txt", ".md"]). Default: all. */
  extensions?: string[];
}

async function listFiles(dir: string, extensions?: string[]): Promise<string[]> {
  const out: string[] = [];
  const walk = async (d: string) => {
    const entries = (await readdir(d, { withFileTypes: true })).sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    for (const e of entries) {
      if (e.name.startsWith(".")) continue;
      const p = join(d, e.name);
      if (e.isDirectory()) await walk(p);
      else if (e.isFile() && (!extensions || extensions.some((x) => e.name.toLowerCase().endsWith(x.toLowerCase())))) out.push(p);
    }
  };
  await walk(dir);
  return out;
}

/** Streams plain-text documents from a file or a folder (files in sorted order, recursively). */
export async function* readText(path: string, options: TextReadOptions = {}): AsyncGenerator<SourcedRecord> {
  ensureExists(path);
  const files = statSync(path).isDirectory() ? await listFiles(path, options.extensions) : [path];
  for (const f of files) {
    const text = (await readFile(f, "utf8")).replace(/\r\n/g, "\n");
    const unit = options.unit ?? "file";
    if (unit === "file") {
      if (text.trim()) yield { record: text, origin: { file: f } };
      continue;
    }
    const parts = unit === "line" ? text.split("\n") : text.split(/\n\s*\n/);
    let line = 1;
    for (const part of parts) {
      if (part.trim()) yield { record: unit === "line" ? part : part.trim(), origin: { file: f, line } };
      line += part.split("\n").length + (unit === "line" ? 0 : 1);
    }
  }
}

export interface ReadOptions extends TextReadOptions, ParquetReadOptions {
  /** Force a format instead of detecting it from each file name. */
  format?: FileFormat;
}

/**
 * Streams records from a file or folder of any supported format. In a folder, each file is read by
 * its own extension (JSONL/Parquet as records, everything else as text), in sorted order.
 */
export async function* readRecords(path: string, options: ReadOptions = {}): AsyncGenerator<SourcedRecord> {
  ensureExists(path);
  const files = statSync(path).isDirectory() ? await listFiles(path, options.extensions) : [path];
  if (files.length === 0)
    throw new EmptySourceError(`no files found under ${resolve(path)}${options.extensions ? ` with extensions ${options.extensions.join(", ")}` : ""}`);
  for (const f of files) {
    const format = options.format ?? detectFormat(f);
    if (format === "jsonl") yield* readJsonl(f);
    else if (format === "parquet") yield* readParquet(f, options);
    else yield* readText(f, { unit: options.unit });
  }
}

/** Reads, tokenizes and packs a file or folder: `readRecords` + `buildSource`. */
export async function loadSource(path: string, options: SourceOptions & ReadOptions): Promise<BuiltSource> {
  let n = 0;
  const counted = async function* () {
    for await (const r of readRecords(path, options)) {
      n++;
      yield r;
    }
  };
  try {
    return await buildSource(counted(), { name: basename(path), ...options });
  } catch (e) {
    if (e instanceof EmptySourceError && n === 0) throw new EmptySourceError(`source ${resolve(path)} contains no records`);
    throw e;
  }
}

// ---------------------------------------------------------------------------------------------
// Shipped corpora

/** Folder holding the shipped corpora (`corpora/` next to `src/` and `dist/`). */
export function corporaDir(): string {
  const here = dirname(fileURLToPath(import.meta.url));
  for (const cand of [resolve(here, "../corpora"), resolve(here, "../../corpora")]) {
    if (existsSync(join(cand, "MANIFEST.json"))) return cand;
  }
  return resolve(here, "../corpora");
}

/** The shipped corpora's manifest (names, provenance, license, sizes, checksums). */
export function corpusManifest(): CorpusManifest {
  const p = join(corporaDir(), "MANIFEST.json");
  ensureExists(p);
  return JSON.parse(readFileSync(p, "utf8")) as CorpusManifest;
}

/** Names of the shipped corpora. */
export function listCorpora(): string[] {
  return Object.keys(corpusManifest().corpora);
}

function corpusInfo(name: string): CorpusInfo {
  return corpusEntry(corpusManifest(), name);
}

/** Path of a shipped corpus file (gzipped JSON Lines). */
export function corpusPath(name: string, split: "train" | "valid" = "train"): string {
  const info = corpusInfo(name);
  if (split !== "train" && split !== "valid") throw new DataConfigError(`split must be 'train' or 'valid', got '${split}'`);
  const p = join(corporaDir(), info.files[split].file);
  ensureExists(p);
  return p;
}

/** Streams the records of a shipped corpus split. */
export function loadCorpus(name: string, split: "train" | "valid" = "train"): AsyncGenerator<SourcedRecord> {
  return readJsonl(corpusPath(name, split));
}

/**
 * Packs a shipped corpus: its train file into `train` and its held-out file into `valid`, by the
 * rules of {@link buildCorpusSource} (the kind comes from the manifest; options set tokenizer,
 * seqLen, masking).
 */
export async function loadCorpusSource(name: string, options: CorpusSourceOptions): Promise<Required<BuiltSource>> {
  const info = corpusInfo(name);
  return buildCorpusSource(info, { train: loadCorpus(name, "train"), valid: loadCorpus(name, "valid") }, options);
}

// ---------------------------------------------------------------------------------------------
// Declarative specs (what an experiment config names)

/** A tokenizer by name: "bytes" (default), or a path to a Hugging Face tokenizer.json. */
export type TokenizerSpec = "bytes" | { tokenizerJson: string; tokenizerConfig?: string; eosToken?: string; padToken?: string };

/** Loads a tokenizer from a spec; a tokenizer_config.json next to the tokenizer.json is used when present. */
export function loadTokenizer(spec: TokenizerSpec = "bytes"): Tokenizer {
  if (spec === "bytes") return new ByteTokenizer();
  if (!spec || typeof spec !== "object" || typeof spec.tokenizerJson !== "string") {
    throw new DataConfigError(`tokenizer must be "bytes" or { tokenizerJson: "path/to/tokenizer.json" }, got ${JSON.stringify(spec)}`);
  }
  ensureExists(spec.tokenizerJson);
  const cfgPath = spec.tokenizerConfig ?? join(dirname(spec.tokenizerJson), "tokenizer_config.json");
  const tokenizerConfig = existsSync(cfgPath) ? (JSON.parse(readFileSync(cfgPath, "utf8")) as Record<string, unknown>) : undefined;
  if (spec.tokenizerConfig) ensureExists(spec.tokenizerConfig);
  return loadHfTokenizer(readFileSync(spec.tokenizerJson, "utf8"), {
    tokenizerConfig,
    eosToken: spec.eosToken,
    padToken: spec.padToken,
    name: basename(dirname(resolve(spec.tokenizerJson))),
  });
}

/**
 * Where a source's records come from: a shipped corpus by name, or a file/folder with its format
 * and field mapping. `kind` defaults to the corpus's kind, else "pretrain".
 */
export type SourceSpec =
  | { corpus: string; maskPrompt?: boolean; separator?: string; limit?: number }
  | ({
      path: string;
      kind?: "pretrain" | "sft";
      validFraction?: number;
      splitSeed?: number;
      textField?: string;
      fields?: SftFieldOptions;
      maskPrompt?: boolean;
      separator?: string;
      limit?: number;
    } & ReadOptions);

/** Builds the train (and validation) sources a spec names, with the given tokenizer and seqLen. */
export async function loadSourceSpec(spec: SourceSpec, options: { tokenizer: Tokenizer; seqLen: number; name?: string }): Promise<BuiltSource> {
  if (spec && typeof spec === "object" && "corpus" in spec) {
    const { corpus, ...rest } = spec;
    return loadCorpusSource(corpus, { ...rest, ...options } as CorpusSourceOptions);
  }
  if (!spec || typeof spec !== "object" || typeof (spec as { path?: unknown }).path !== "string") {
    throw new DataConfigError(`a source spec needs { corpus: name } or { path: file-or-folder }, got ${JSON.stringify(spec)}`);
  }
  const { path, ...rest } = spec;
  return loadSource(path, { ...rest, ...options } as SourceOptions & ReadOptions);
}
