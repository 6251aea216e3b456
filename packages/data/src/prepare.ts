/**
 * `prepare`: streams raw sources through a tokenizer into a token store (see store.ts for the
 * format), on worker threads, with flat memory, resumable at shard granularity; and
 * `openTokenStore`, which reads a store from disk by random access (positioned reads, never a
 * whole file).
 */
import { createHash } from "node:crypto";
import {
  closeSync,
  existsSync,
  fstatSync,
  fsyncSync,
  ftruncateSync,
  openSync,
  readdirSync,
  readFileSync,
  readSync,
  renameSync,
  rmSync,
  statSync,
  truncateSync,
  writeSync,
  mkdirSync,
  createReadStream,
} from "node:fs";
import { availableParallelism } from "node:os";
import { basename, join, relative, resolve, sep } from "node:path";
import { DataConfigError, DataError, EmptySourceError, MissingFileError } from "./errors.js";
import { createEncodePool } from "./bpe/pool.js";
import { assembleBatch, type DocBatch, type EncodedBatch, encodeBatch } from "./encode.js";
import { type FileFormat, loadTokenizer, type ReadOptions, readRecords, type TokenizerSpec } from "./files.js";
import type { PackedSource } from "./pack.js";
import { recordSft, recordText, type SftFieldOptions } from "./records.js";
import {
  checkManifest,
  checkStoreTokenizer,
  encodeShardTail,
  type ShardData,
  STORE_FORMAT,
  STORE_FORMAT_VERSION,
  type StoreInput,
  type StoreManifest,
  type StoreShard,
  type StoreSourceOptions,
  type StoreSplit,
  StoreSplitReader,
  storeSource,
  TokenStoreError,
  tokenizerFingerprint,
} from "./store.js";
import type { Tokenizer } from "./tokenizer.js";

/** A prepare could not write its output (disk full, permissions): the store is left at its last complete shard. */
export class StoreWriteError extends DataError {
  readonly path: string;
  readonly code: string | undefined;
  constructor(path: string, cause: NodeJS.ErrnoException) {
    super(
      `${path}: cannot write (${cause.code ?? cause.message})${cause.code === "ENOSPC" ? ": the disk is full" : ""}. ` +
        "Nothing half-written is visible: free space (or fix the cause) and rerun the same prepare; it continues from its last complete shard.",
    );
    this.path = path;
    this.code = cause.code;
  }
}

/** The store in the folder was prepared from other inputs, with another tokenizer or other options. */
export class StoreMismatchError extends TokenStoreError {}

/** Another live process is preparing the same store folder. */
export class StoreLockedError extends TokenStoreError {
  readonly pid: number;
  constructor(dir: string, pid: number) {
    super(dir, `another prepare (pid ${pid}) is writing this store; wait for it to finish or stop it`);
    this.pid = pid;
  }
}

export interface PrepareProgress {
  /** Input bytes (file sizes) read so far (estimated inside a compressed file) and in all. */
  inputBytes: number;
  totalInputBytes: number;
  /** UTF-8 bytes of document text tokenized so far (this run). */
  textBytes: number;
  tokens: number;
  docs: number;
  shards: number;
  /** Seconds since this run started. */
  seconds: number;
  /** The first shard index this run wrote (0 unless it resumed). */
  resumedAt: number;
}

export interface PrepareOptions extends Pick<ReadOptions, "unit" | "extensions" | "columns" | "chunkRows"> {
  /** Files, folders or globs (`data/c4/*.jsonl.gz`, `**` for any depth) of the training split (or of both splits with `validFraction`). */
  input: string | string[];
  /** Separate validation files; then every document of `input` is for training. */
  validInput?: string | string[];
  /** Folder of the store. */
  out: string;
  /** A tokenizer spec (`"bytes"` or `{ tokenizerJson }`) or a tokenizer; a fast BPE (what loadHfTokenizer returns for byte-level files) encodes on worker threads. */
  tokenizer: TokenizerSpec | Tokenizer;
  kind?: "pretrain" | "sft";
  /** Share of documents held out for validation by a seeded hash of each document (without `validInput`). Default 0. */
  validFraction?: number;
  splitSeed?: number;
  /** Pretraining: field with the text. Default `text`. */
  textField?: string;
  /** SFT: field mapping. */
  fields?: SftFieldOptions;
  /** SFT: text between prompt and response. Default "\n". */
  separator?: string;
  format?: FileFormat;
  /** Tokens per shard (a shard closes at the first document end at or past it). Default 2^25. */
  shardTokens?: number;
  /** Worker threads tokenizing (the tokenizer's encode pool). Default: the cores less one for the main thread (at least 1, at most 8); 0 tokenizes in this thread. The byte tokenizer always encodes in this thread. */
  workers?: number;
  /** Prepare again when the folder holds a store (or an unfinished one) of other inputs, tokenizer or options. Default false: refuse. */
  rebuild?: boolean;
  onProgress?: (p: PrepareProgress) => void;
  /** Test hook: called before each shard is closed (its index and split). */
  beforeShardClose?: (split: StoreSplit, index: number) => void;
  /** Test hook: shard writes fail as on a full disk (ENOSPC) once this many bytes are written. */
  failWritesAfterBytes?: number;
}

export interface PrepareResult {
  dir: string;
  manifest: StoreManifest;
  /** True when the store was already complete for these inputs and tokenizer (nothing done). */
  upToDate: boolean;
  /** Shards that were already complete when this run started (a resumed prepare). */
  resumedShards: number;
}

const DEFAULT_SHARD_TOKENS = 1 << 25;
const BATCH_DOCS = 512;
const BATCH_CHARS = 1 << 20;

// ---------------------------------------------------------------------------------------------
// Inputs

function globRegex(pattern: string): RegExp {
  let re = "";
  for (let i = 0; i < pattern.length; i++) {
    const c = pattern[i];
    if (c === "*" && pattern[i + 1] === "*") {
      re += pattern[i + 2] === "/" ? "(?:.*/)?" : ".*";
      i += pattern[i + 2] === "/" ? 2 : 1;
    } else if (c === "*") re += "[^/]*";
    else if (c === "?") re += "[^/]";
    else re += c.replace(/[.+^${}()|[\]\\]/g, "\\$&");
  }
  return new RegExp(`^${re}$`);
}

function walk(dir: string, out: string[]): void {
  const entries = readdirSync(dir, { withFileTypes: true }).sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  for (const e of entries) {
    if (e.name.startsWith(".")) continue;
    const p = join(dir, e.name);
    if (e.isDirectory()) walk(p, out);
    else if (e.isFile()) out.push(p);
  }
}

/** The files a list of paths, folders and globs names, in order (each folder or glob sorted). */
export function resolveInputs(input: string | string[], extensions?: string[]): string[] {
  const out: string[] = [];
  const ext = (f: string) => !extensions || extensions.some((x) => f.toLowerCase().endsWith(x.toLowerCase()));
  for (const raw of Array.isArray(input) ? input : [input]) {
    const p = resolve(raw);
    if (/[*?]/.test(raw)) {
      const parts = p.split(sep);
      const first = parts.findIndex((x) => /[*?]/.test(x));
      const base = parts.slice(0, first).join(sep) || sep;
      if (!existsSync(base)) throw new MissingFileError(base, `the folder of glob ${raw}`);
      const re = globRegex(parts.slice(first).join("/"));
      const all: string[] = [];
      walk(base, all);
      const hits = all.filter((f) => re.test(relative(base, f).split(sep).join("/")) && ext(f));
      if (hits.length === 0) throw new EmptySourceError(`glob ${raw} matches no files`);
      out.push(...hits);
    } else if (!existsSync(p)) throw new MissingFileError(p, "check the path");
    else if (statSync(p).isDirectory()) {
      const all: string[] = [];
      walk(p, all);
      const hits = all.filter(ext);
      if (hits.length === 0) throw new EmptySourceError(`no files found under ${p}${extensions ? ` with extensions ${extensions.join(", ")}` : ""}`);
      out.push(...hits);
    } else out.push(p);
  }
  return out;
}

async function sha256File(path: string): Promise<string> {
  const h = createHash("sha256");
  for await (const chunk of createReadStream(path, { highWaterMark: 1 << 20 })) h.update(chunk as Buffer);
  return h.digest("hex");
}

async function describeInputs(files: string[], known?: StoreInput[]): Promise<StoreInput[]> {
  const out: StoreInput[] = [];
  for (const path of files) {
    const st = statSync(path);
    const k = known?.find((x) => x.path === path);
    const sha256 = k && k.size === st.size && k.mtimeMs === st.mtimeMs ? k.sha256 : await sha256File(path);
    out.push({ path, size: st.size, mtimeMs: st.mtimeMs, sha256 });
  }
  return out;
}

/** Inputs are the same when paths, sizes and contents match (a touched file with the same bytes is the same). */
function sameInputs(a: StoreInput[], b: StoreInput[]): boolean {
  return a.length === b.length && a.every((x, i) => x.path === b[i].path && x.size === b[i].size && x.sha256 === b[i].sha256);
}

// ---------------------------------------------------------------------------------------------
// Encoding on worker threads

interface Encoder {
  encode(batch: DocBatch): Promise<EncodedBatch>;
  close(): Promise<void>;
}

/**
 * Encodes document batches: on the tokenizer's encode pool (worker threads, for the fast BPE that
 * loadHfTokenizer returns) when `workers` > 0, else in this thread; laid out for the store in order.
 */
function createEncoder(tokenizer: Tokenizer, workers: number, width: 2 | 4, split?: { fraction: number; seed: number }): Encoder & { threads: number } {
  if (workers <= 0) return { threads: 0, encode: async (batch) => encodeBatch(tokenizer, batch, width, split), close: async () => {} };
  const pool = createEncodePool(tokenizer, { threads: workers });
  return {
    threads: pool.threads,
    async encode(batch) {
      const texts = batch.kind === "pretrain" ? batch.texts : [...batch.prompts, ...batch.responses];
      return assembleBatch(batch, await pool.encode(texts), tokenizer.eosId, width, split);
    },
    close: () => pool.close(),
  };
}

// ---------------------------------------------------------------------------------------------
// Writing shards

interface OpenShardState {
  /** Token bytes in the open shard's temporary file. */
  tmpBytes: number;
  ends: number[];
  bytes: number[];
  promptLens: number[];
}

interface Position {
  stage: StoreSplit;
  file: number;
  record: number;
}

interface ProgressFile {
  format: typeof STORE_FORMAT;
  version: number;
  key: string;
  inputs: Record<StoreSplit, StoreInput[]>;
  position: Position;
  shards: Record<StoreSplit, StoreShard[]>;
  open: Record<StoreSplit, OpenShardState>;
}

const shardName = (split: StoreSplit, i: number) => `${split}-${String(i).padStart(5, "0")}.bin`;

function writeFileAtomicSync(path: string, text: string): void {
  const tmp = `${path}.tmp`;
  const fd = openSync(tmp, "w");
  try {
    writeSync(fd, text);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  renameSync(tmp, path);
}

class SplitWriter {
  private fd: number | undefined;
  state: OpenShardState = { tmpBytes: 0, ends: [], bytes: [], promptLens: [] };
  constructor(
    private readonly dir: string,
    readonly split: StoreSplit,
    readonly shards: StoreShard[],
    private readonly width: 2 | 4,
    private readonly sft: boolean,
    private readonly shardTokens: number,
    private readonly beforeClose?: (split: StoreSplit, index: number) => void,
    private readonly budget?: WriteBudget,
  ) {}
  private get tmpPath(): string {
    return join(this.dir, `${shardName(this.split, this.shards.length)}.tmp`);
  }
  /** Reopens the open shard's temporary file at its checkpointed length. */
  restore(state: OpenShardState): void {
    this.state = { tmpBytes: state.tmpBytes, ends: [...state.ends], bytes: [...state.bytes], promptLens: [...state.promptLens] };
    const final = join(this.dir, shardName(this.split, this.shards.length));
    // Killed between closing this shard and recording it: its first tmpBytes bytes are the open shard's tokens.
    if (!existsSync(this.tmpPath) && existsSync(final)) renameSync(final, this.tmpPath);
    if (state.tmpBytes > 0) {
      if (!existsSync(this.tmpPath) || statSync(this.tmpPath).size < state.tmpBytes) {
        throw new TokenStoreError(this.dir, `the unfinished shard ${basename(this.tmpPath)} is missing or shorter than recorded; rerun with --rebuild`);
      }
      // Appends go after the recorded bytes (a plain r+ descriptor would write from offset 0).
      truncateSync(this.tmpPath, state.tmpBytes);
      this.fd = openSync(this.tmpPath, "a");
    }
  }
  private get tokens(): number {
    return this.state.tmpBytes / this.width;
  }
  add(tokens: Uint8Array, ntok: number, bytes: number, promptLen: number): void {
    if (this.fd === undefined) this.fd = openSync(this.tmpPath, "w");
    writeAll(this.fd, tokens, this.tmpPath, this.budget);
    this.state.tmpBytes += tokens.length;
    this.state.ends.push(this.tokens);
    this.state.bytes.push(bytes);
    if (this.sft) this.state.promptLens.push(promptLen);
    void ntok;
  }
  get full(): boolean {
    return this.tokens >= this.shardTokens;
  }
  get empty(): boolean {
    return this.state.ends.length === 0;
  }
  /** Appends index and footer, syncs, renames the temporary file to the shard's name. */
  close(): StoreShard {
    const index = this.shards.length;
    this.beforeClose?.(this.split, index);
    const fd = this.fd!;
    const tail = encodeShardTail(this.width, this.tokens, this.state.ends, this.state.bytes, this.sft ? this.state.promptLens : undefined);
    writeAll(fd, tail, this.tmpPath, this.budget);
    fsyncSync(fd);
    closeSync(fd);
    this.fd = undefined;
    const file = shardName(this.split, index);
    renameSync(this.tmpPath, join(this.dir, file));
    const shard: StoreShard = {
      file,
      size: this.state.tmpBytes + tail.length,
      tokens: this.tokens,
      docs: this.state.ends.length,
      bytes: this.state.bytes.reduce((a, b) => a + b, 0),
    };
    this.shards.push(shard);
    this.state = { tmpBytes: 0, ends: [], bytes: [], promptLens: [] };
    return shard;
  }
  sync(): void {
    if (this.fd !== undefined) fsyncSync(this.fd);
  }
  /** After a failed write: back to the checkpointed length, file closed. */
  abandon(checkpointBytes: number): void {
    if (this.fd === undefined) return;
    try {
      ftruncateSync(this.fd, checkpointBytes);
    } catch {
      // the file stays longer; a rerun truncates it to the recorded length
    }
    closeSync(this.fd);
    this.fd = undefined;
  }
}

/** Test hook: bytes the shard writes may still take before they fail as on a full disk (unset: no limit). */
interface WriteBudget {
  left: number;
}

function writeAll(fd: number, data: Uint8Array, path: string, budget?: WriteBudget): void {
  let off = 0;
  try {
    if (budget && budget.left < data.length) {
      // Write what fits, then fail the way a full disk does.
      if (budget.left > 0) writeSync(fd, data, 0, budget.left);
      budget.left = 0;
      throw Object.assign(new Error("no space left on device (simulated)"), { code: "ENOSPC" });
    }
    if (budget) budget.left -= data.length;
    while (off < data.length) off += writeSync(fd, data, off, data.length - off);
  } catch (e) {
    throw new StoreWriteError(path, e as NodeJS.ErrnoException);
  }
}

// ---------------------------------------------------------------------------------------------
// The prepare loop

function isTokenizer(t: unknown): t is Tokenizer {
  return typeof t === "object" && t !== null && typeof (t as Tokenizer).encode === "function";
}

/** A lock file holding this process's id; a lock of a dead process on this host is taken over. */
/** Worker threads by default: one per core but the main thread's, at least 1, at most 8. */
export function defaultWorkers(): number {
  return Math.max(1, Math.min(8, availableParallelism() - 1));
}

const heldLocks = new Set<string>();

function isZombie(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    return stat.slice(stat.lastIndexOf(")") + 2).startsWith("Z");
  } catch {
    return false;
  }
}

function lockDir(dir: string): () => void {
  const path = join(dir, ".prepare.lock");
  if (heldLocks.has(path)) throw new StoreLockedError(dir, process.pid);
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      const fd = openSync(path, "wx");
      writeSync(fd, String(process.pid));
      closeSync(fd);
      heldLocks.add(path);
      return () => {
        heldLocks.delete(path);
        rmSync(path, { force: true });
      };
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== "EEXIST") throw e;
      const pid = Number(readFileSync(path, "utf8"));
      let alive = false;
      try {
        if (pid > 0) process.kill(pid, 0);
        alive = pid > 0;
      } catch (err) {
        alive = (err as NodeJS.ErrnoException).code === "EPERM";
      }
      // A killed process not yet reaped by its parent still answers signal 0: a zombie holds nothing.
      if (alive && isZombie(pid)) alive = false;
      if (alive && pid !== process.pid) throw new StoreLockedError(dir, pid);
      // A dead process's lock (or one of this pid left by a process that died before it): take it over.
      rmSync(path, { force: true });
    }
  }
  throw new TokenStoreError(dir, "cannot take the store's lock file .prepare.lock");
}

function recordOptions(o: PrepareOptions, kind: "pretrain" | "sft"): Record<string, unknown> {
  const r: Record<string, unknown> = {};
  if (kind === "pretrain") r.textField = o.textField ?? "text";
  else {
    r.fields = o.fields ?? {};
    r.separator = o.separator ?? "\n";
  }
  if (o.unit) r.unit = o.unit;
  if (o.format) r.format = o.format;
  if (o.columns) r.columns = o.columns;
  if (o.extensions) r.extensions = o.extensions;
  return r;
}

/**
 * Tokenizes raw files into a token store in `options.out`: streaming, on worker threads, memory
 * bounded by a few batches whatever the corpus size. Resumable (a killed prepare continues from
 * its last complete shard and ends with the same bytes), a no-op when the store is complete for
 * the same inputs, tokenizer and options, and refused (or, with `rebuild`, redone) otherwise.
 */
export async function prepare(options: PrepareOptions): Promise<PrepareResult> {
  const dir = resolve(options.out);
  const kind = options.kind ?? "pretrain";
  if (kind !== "pretrain" && kind !== "sft") throw new DataConfigError(`kind must be 'pretrain' or 'sft', got '${kind}'`);
  const fraction = options.validFraction ?? 0;
  if (!(fraction >= 0 && fraction < 1)) throw new DataConfigError(`validFraction must be in [0, 1), got ${fraction}`);
  const seed = options.splitSeed ?? 0;
  const shardTokens = options.shardTokens ?? DEFAULT_SHARD_TOKENS;
  if (!Number.isInteger(shardTokens) || shardTokens < 1) throw new DataConfigError(`shardTokens must be a positive integer, got ${shardTokens}`);
  const tokenizer = isTokenizer(options.tokenizer) ? options.tokenizer : loadTokenizer(options.tokenizer);
  const width: 2 | 4 = tokenizer.vocabSize <= 65536 ? 2 : 4;
  const fingerprint = tokenizerFingerprint(tokenizer);
  const trainFiles = resolveInputs(options.input, options.extensions);
  const validFiles = options.validInput !== undefined ? resolveInputs(options.validInput, options.extensions) : [];
  const split = { fraction: options.validInput !== undefined ? 0 : fraction, seed, validInputs: options.validInput !== undefined };
  const recOpts = recordOptions(options, kind);
  const tokInfo = {
    fingerprint,
    name: tokenizer.name,
    vocabSize: tokenizer.vocabSize,
    eosId: tokenizer.eosId,
    ...(tokenizer.padId !== undefined ? { padId: tokenizer.padId } : {}),
  };
  const keyOf = (inputs: Record<StoreSplit, StoreInput[]>) =>
    createHash("sha256")
      .update(
        JSON.stringify([
          STORE_FORMAT_VERSION,
          kind,
          tokInfo,
          width,
          shardTokens,
          split,
          recOpts,
          inputs.train.map((i) => [i.path, i.size, i.sha256]),
          inputs.valid.map((i) => [i.path, i.size, i.sha256]),
        ]),
      )
      .digest("hex");

  try {
    mkdirSync(dir, { recursive: true });
  } catch (e) {
    throw new StoreWriteError(dir, e as NodeJS.ErrnoException);
  }
  const unlock = lockDir(dir);
  try {
    const manifestPath = join(dir, "manifest.json");
    const progressPath = join(dir, "progress.json");
    // A complete store: a no-op when it is for the same inputs, tokenizer and options.
    if (existsSync(manifestPath)) {
      const m = checkManifest(JSON.parse(readFileSync(manifestPath, "utf8")), manifestPath);
      const inputs = { train: await describeInputs(trainFiles, m.inputs.train), valid: await describeInputs(validFiles, m.inputs.valid) };
      const why = mismatch(m, { kind, tokInfo, width, shardTokens, split, recOpts, inputs });
      if (!why) return { dir, manifest: m, upToDate: true, resumedShards: m.totals.train.shards + m.totals.valid.shards };
      if (!options.rebuild)
        throw new StoreMismatchError(dir, `the store here was prepared ${why}; prepare into another folder, or pass --rebuild (rebuild: true) to replace it`);
      wipe(dir);
    }
    const inputs = {
      train: await describeInputs(trainFiles),
      valid: await describeInputs(validFiles),
    };
    const key = keyOf(inputs);
    let progress: ProgressFile | undefined;
    if (existsSync(progressPath)) {
      const p = JSON.parse(readFileSync(progressPath, "utf8")) as ProgressFile;
      if (p.key === key && p.version === STORE_FORMAT_VERSION) progress = p;
      else if (!options.rebuild) {
        throw new StoreMismatchError(
          dir,
          "an unfinished prepare of other inputs, another tokenizer or other options is in this folder; pass --rebuild (rebuild: true) to start over, or prepare into another folder",
        );
      } else wipe(dir);
    }
    return await run(options, { dir, kind, tokenizer, width, shardTokens, split, recOpts, tokInfo, inputs, key, progress, manifestPath, progressPath });
  } finally {
    unlock();
  }
}

function mismatch(
  m: StoreManifest,
  now: {
    kind: string;
    tokInfo: StoreManifest["tokenizer"];
    width: number;
    shardTokens: number;
    split: StoreManifest["split"];
    recOpts: Record<string, unknown>;
    inputs: Record<StoreSplit, StoreInput[]>;
  },
): string | undefined {
  if (m.tokenizer.fingerprint !== now.tokInfo.fingerprint)
    return `with tokenizer '${m.tokenizer.name}' (fingerprint ${m.tokenizer.fingerprint}), not '${now.tokInfo.name}' (${now.tokInfo.fingerprint})`;
  if (m.kind !== now.kind) return `as a ${m.kind} source, not ${now.kind}`;
  if (!sameInputs(m.inputs.train, now.inputs.train) || !sameInputs(m.inputs.valid, now.inputs.valid)) {
    const changed = [...now.inputs.train, ...now.inputs.valid].find(
      (x) => ![...m.inputs.train, ...m.inputs.valid].some((y) => y.path === x.path && y.sha256 === x.sha256),
    );
    return `from other input files${changed ? ` (${changed.path} is new or changed)` : " (files were removed)"}`;
  }
  if (m.shardTokens !== now.shardTokens || m.width !== now.width) return `with ${m.shardTokens} tokens per shard, not ${now.shardTokens}`;
  if (JSON.stringify(m.split) !== JSON.stringify(now.split)) return `with validation split ${JSON.stringify(m.split)}, not ${JSON.stringify(now.split)}`;
  if (JSON.stringify(m.options) !== JSON.stringify(now.recOpts)) return `with record options ${JSON.stringify(m.options)}, not ${JSON.stringify(now.recOpts)}`;
  return undefined;
}

function wipe(dir: string): void {
  for (const f of readdirSync(dir))
    if (f === "manifest.json" || f === "progress.json" || /^(train|valid)-\d+\.bin(\.tmp)?$/.test(f) || f.endsWith(".json.tmp"))
      rmSync(join(dir, f), { force: true });
}

interface RunContext {
  dir: string;
  kind: "pretrain" | "sft";
  tokenizer: Tokenizer;
  width: 2 | 4;
  shardTokens: number;
  split: StoreManifest["split"];
  recOpts: Record<string, unknown>;
  tokInfo: StoreManifest["tokenizer"];
  inputs: Record<StoreSplit, StoreInput[]>;
  key: string;
  progress: ProgressFile | undefined;
  manifestPath: string;
  progressPath: string;
}

interface PendingDoc {
  stage: StoreSplit;
  file: number;
  record: number;
}

async function run(options: PrepareOptions, c: RunContext): Promise<PrepareResult> {
  const { dir, kind, width } = c;
  const sft = kind === "sft";
  const shards: Record<StoreSplit, StoreShard[]> = c.progress ? c.progress.shards : { train: [], valid: [] };
  const budget = options.failWritesAfterBytes !== undefined ? { left: options.failWritesAfterBytes } : undefined;
  const writers: Record<StoreSplit, SplitWriter> = {
    train: new SplitWriter(dir, "train", shards.train, width, sft, c.shardTokens, options.beforeShardClose, budget),
    valid: new SplitWriter(dir, "valid", shards.valid, width, sft, c.shardTokens, options.beforeShardClose, budget),
  };
  const resumedShards = shards.train.length + shards.valid.length;
  // Anything a killed run left that the checkpoint does not list goes; the open shards go back to their recorded length.
  const keep = new Set([...shards.train, ...shards.valid].map((s) => s.file));
  if (c.progress) {
    writers.train.restore(c.progress.open.train);
    writers.valid.restore(c.progress.open.valid);
  }
  for (const s of ["train", "valid"] as const) keep.add(`${shardName(s, shards[s].length)}.tmp`);
  for (const f of readdirSync(dir)) if (/^(train|valid)-\d+\.bin(\.tmp)?$/.test(f) && !keep.has(f)) rmSync(join(dir, f), { force: true });
  let position: Position = c.progress?.position ?? { stage: "train", file: 0, record: 0 };
  const checkpoint = (pos: Position) => {
    writers.train.sync();
    writers.valid.sync();
    const p: ProgressFile = {
      format: STORE_FORMAT,
      version: STORE_FORMAT_VERSION,
      key: c.key,
      inputs: c.inputs,
      position: pos,
      shards,
      open: { train: writers.train.state, valid: writers.valid.state },
    };
    try {
      writeFileAtomicSync(c.progressPath, JSON.stringify(p));
    } catch (e) {
      throw e instanceof DataError ? e : new StoreWriteError(c.progressPath, e as NodeJS.ErrnoException);
    }
    checkpointBytes = { train: writers.train.state.tmpBytes, valid: writers.valid.state.tmpBytes };
  };
  let checkpointBytes = { train: writers.train.state.tmpBytes, valid: writers.valid.state.tmpBytes };
  if (!c.progress) checkpoint(position);

  // The main thread reads, parses, hashes and writes: it takes one core, the workers the rest.
  const requested = options.workers ?? defaultWorkers();
  const encoder = createEncoder(c.tokenizer, requested, width, c.split.fraction > 0 ? c.split : undefined);
  const totalInputBytes = [...c.inputs.train, ...c.inputs.valid].reduce((a, b) => a + b.size, 0);
  const started = Date.now();
  const stats = { inputBytes: 0, textBytes: 0, tokens: 0, docs: 0 };
  let doneFileBytes = 0;
  let doneFileText = 0;
  let fileText = 0;
  let fileSize = 0;
  let lastReport = 0;
  const report = (force = false) => {
    if (!options.onProgress) return;
    const now = Date.now();
    if (!force && now - lastReport < 200) return;
    lastReport = now;
    const ratio = doneFileBytes > 0 && doneFileText > 0 ? doneFileText / doneFileBytes : 1;
    stats.inputBytes = doneFileBytes + Math.min(fileSize * 0.999, fileText / ratio);
    options.onProgress({
      ...stats,
      totalInputBytes,
      shards: shards.train.length + shards.valid.length,
      seconds: (now - started) / 1000,
      resumedAt: resumedShards,
    });
  };

  // Documents in file order, batched; batches go to the workers and come back in order.
  const stages: StoreSplit[] = c.split.validInputs ? ["train", "valid"] : ["train"];
  async function* batches(): AsyncGenerator<{ batch: DocBatch; where: PendingDoc[] }> {
    let texts: string[] = [];
    let prompts: string[] = [];
    let responses: string[] = [];
    let where: PendingDoc[] = [];
    let chars = 0;
    const flush = () => {
      const out = { batch: (sft ? { kind: "sft", prompts, responses } : { kind: "pretrain", texts }) as DocBatch, where };
      texts = [];
      prompts = [];
      responses = [];
      where = [];
      chars = 0;
      return out;
    };
    const sepText = (c.recOpts.separator as string | undefined) ?? "\n";
    for (const stage of stages) {
      if (stages.indexOf(stage) < stages.indexOf(position.stage)) continue;
      const files = c.inputs[stage];
      for (let f = stage === position.stage ? position.file : 0; f < files.length; f++) {
        const skip = stage === position.stage && f === position.file ? position.record : 0;
        let rec = 0;
        fileText = 0;
        fileSize = files[f].size;
        const readOpts: ReadOptions = { unit: options.unit, columns: options.columns, chunkRows: options.chunkRows, format: options.format };
        for await (const { record, origin } of readRecords(files[f].path, readOpts)) {
          rec++;
          if (rec <= skip) continue;
          if (sft) {
            const ex = recordSft(record, options.fields, origin);
            prompts.push(ex.prompt + sepText);
            responses.push(ex.response);
            chars += ex.prompt.length + ex.response.length;
            fileText += ex.prompt.length + ex.response.length;
          } else {
            const text = recordText(record, { textField: options.textField }, origin);
            texts.push(text);
            chars += text.length;
            fileText += text.length;
          }
          where.push({ stage, file: f, record: rec });
          if (where.length >= BATCH_DOCS || chars >= BATCH_CHARS) yield flush();
        }
        doneFileBytes += files[f].size;
        doneFileText += fileText;
        fileText = 0;
        fileSize = 0;
      }
    }
    if (where.length) yield flush();
  }

  try {
    const inflight: Array<{ result: Promise<EncodedBatch>; where: PendingDoc[] }> = [];
    const depth = Math.max(2, 2 * requested);
    const consume = async () => {
      const head = inflight.shift()!;
      const r = await head.result;
      for (let i = 0; i < head.where.length; i++) {
        const w = head.where[i];
        const target = w.stage === "valid" || r.valid[i] ? writers.valid : writers.train;
        const begin = i ? r.ends[i - 1] : 0;
        const tok = r.tokens.subarray(begin * width, r.ends[i] * width);
        target.add(tok, r.ends[i] - begin, r.bytes[i], r.promptLens ? r.promptLens[i] : 0);
        stats.docs++;
        stats.tokens += r.ends[i] - begin;
        stats.textBytes += r.bytes[i];
        if (target.full) {
          target.close();
          position = { stage: w.stage, file: w.file, record: w.record };
          checkpoint(position);
        }
      }
      report();
    };
    for await (const b of batches()) {
      inflight.push({ result: encoder.encode(b.batch), where: b.where });
      // A rejected batch must not go unhandled while earlier ones are consumed.
      inflight[inflight.length - 1].result.catch(() => {});
      if (inflight.length >= depth) await consume();
    }
    while (inflight.length) await consume();
    for (const s of ["train", "valid"] as const) if (!writers[s].empty) writers[s].close();
  } catch (e) {
    writers.train.abandon(checkpointBytes.train);
    writers.valid.abandon(checkpointBytes.valid);
    throw e;
  } finally {
    await encoder.close();
  }
  const totals = (s: StoreSplit) => ({
    shards: shards[s].length,
    tokens: shards[s].reduce((a, b) => a + b.tokens, 0),
    docs: shards[s].reduce((a, b) => a + b.docs, 0),
    bytes: shards[s].reduce((a, b) => a + b.bytes, 0),
  });
  const manifest: StoreManifest = {
    format: STORE_FORMAT,
    version: STORE_FORMAT_VERSION,
    kind,
    tokenizer: c.tokInfo,
    width,
    shardTokens: c.shardTokens,
    split: c.split,
    options: c.recOpts,
    inputs: c.inputs,
    shards,
    totals: { train: totals("train"), valid: totals("valid") },
  };
  if (manifest.totals.train.docs + manifest.totals.valid.docs === 0) {
    rmSync(c.progressPath, { force: true });
    throw new EmptySourceError(
      `the inputs of ${dir} hold no documents (${[...c.inputs.train, ...c.inputs.valid].map((i) => i.path).join(", ")}); check the paths and the field mapping`,
    );
  }
  try {
    writeFileAtomicSync(c.manifestPath, `${JSON.stringify(manifest, null, 2)}\n`);
  } catch (e) {
    throw new StoreWriteError(c.manifestPath, e as NodeJS.ErrnoException);
  }
  rmSync(c.progressPath, { force: true });
  report(true);
  return { dir, manifest, upToDate: false, resumedShards };
}

// ---------------------------------------------------------------------------------------------
// Reading

/** One shard file read by positioned reads (`fs.readSync` at offsets), never loaded whole. */
export function fileShard(path: string): ShardData {
  const fd = openSync(path, "r");
  const size = fstatSync(fd).size;
  let closed = false;
  return {
    byteLength: size,
    readInto(offset, target) {
      let got = 0;
      while (got < target.length) {
        const n = readSync(fd, target, got, target.length - got, offset + got);
        if (n === 0)
          throw new TokenStoreError(
            path,
            `shard ended at byte ${offset + got} while reading ${target.length} bytes at ${offset}; it is truncated — run prepare with --rebuild`,
          );
        got += n;
      }
    },
    close() {
      if (!closed) closeSync(fd);
      closed = true;
    },
  };
}

/** A token store on disk, opened for reading. */
export interface TokenStore {
  readonly dir: string;
  readonly manifest: StoreManifest;
  /** The reader of one split (opened on first use). */
  split(split: StoreSplit): StoreSplitReader;
  /** A packed source over one split (see `storeSource`). */
  source(split: StoreSplit, options: StoreSourceOptions): PackedSource;
  close(): void;
}

/**
 * Opens a complete token store: checks its manifest (format version), every shard's size and
 * footer, and, given `tokenizer`, that the store was prepared with a tokenizer that gives the same ids.
 */
export function openTokenStore(dir: string, options: { tokenizer?: Tokenizer } = {}): TokenStore {
  const root = resolve(dir);
  const mpath = join(root, "manifest.json");
  if (!existsSync(mpath)) {
    if (existsSync(join(root, "progress.json")))
      throw new TokenStoreError(root, "the store is unfinished (a prepare was stopped); rerun the same prepare to complete it");
    throw new MissingFileError(mpath, "not a token store; create one with `midtrain prepare`");
  }
  let raw: unknown;
  try {
    raw = JSON.parse(readFileSync(mpath, "utf8"));
  } catch (e) {
    throw new TokenStoreError(mpath, `not valid JSON (${(e as Error).message}); prepare the store again with --rebuild`);
  }
  const manifest = checkManifest(raw, mpath);
  if (options.tokenizer) checkStoreTokenizer(manifest, options.tokenizer, root);
  const readers = new Map<StoreSplit, StoreSplitReader>();
  const split = (s: StoreSplit): StoreSplitReader => {
    let r = readers.get(s);
    if (!r) {
      const data = manifest.shards[s].map((sh) => {
        const p = join(root, sh.file);
        if (!existsSync(p)) throw new TokenStoreError(p, "shard listed in the manifest is missing; run prepare with --rebuild");
        return fileShard(p);
      });
      try {
        r = new StoreSplitReader(manifest, s, data, root);
      } catch (e) {
        for (const d of data) d.close?.();
        throw e;
      }
      readers.set(s, r);
    }
    return r;
  };
  return {
    dir: root,
    manifest,
    split,
    source: (s, o) => storeSource(split(s), o),
    close() {
      for (const r of readers.values()) r.close();
      readers.clear();
    },
  };
}

/** Whether `dir` holds a complete token store. */
export function isTokenStore(dir: string): boolean {
  return existsSync(join(dir, "manifest.json"));
}
