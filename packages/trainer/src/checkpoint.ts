import type { MixerState, TrainingTime } from "@midtrain/data";
import {
  type GPTNeoXModel,
  modelFromSafetensors,
  modelToSafetensors,
  parseSafetensors,
  type SafeTensor,
  serializeSafetensors,
  toFloat32,
  toHfConfig,
} from "@midtrain/model";
import { AdamW, type AdamWConfig, type AdamWState } from "./adamw.js";
import { CheckpointCorruptError, CheckpointReadError, CheckpointWriteError } from "./errors.js";
import { sha256Hex } from "./sha256.js";
import type { CheckpointStorage } from "./storage.js";

/** A schedule's JSON config (`{ type, ...params }`, see @midtrain/schedulers). */
export type ScheduleConfigJson = { type: string; [k: string]: unknown };

/** One phase of training: its name, global step range and batch settings. */
export interface PhaseSpec {
  name: string;
  /** Global step at which the phase started. */
  startStep: number;
  /** Global step at which the phase ends (exclusive of further updates). */
  endStep: number;
  /** Sequences per optimizer step (all micro-batches together). */
  batchSize: number;
  /** Micro-batches per optimizer step; divides batchSize. */
  gradAccum: number;
  /** Global-norm clipping threshold; 0 = no clipping. */
  clipNorm: number;
}

/** Where a run came from: the checkpoint it branched (or fine-tuned) from. */
export interface LineageRef {
  kind: "branch" | "sft";
  checkpoint: string;
  step: number;
  phase: string;
  /** The storage holding that checkpoint (`CheckpointStorage.location`). */
  location?: string;
}

export interface Lineage {
  /** The checkpoint this run started from; null for a run from scratch. */
  parent: LineageRef | null;
  /** Earlier ancestors, oldest first. */
  ancestors: LineageRef[];
}

/** `trainer.json`: everything but weights and moments needed to resume exactly. */
export interface TrainerState {
  format: "midtrain-trainer";
  version: 1;
  /** Global optimizer step (= time.step). */
  step: number;
  time: TrainingTime;
  phase: PhaseSpec;
  /** Mixer state (seed, RNG, per-source cursors, stateful schedule state). */
  mixer: MixerState | null;
  schedules: { lr?: ScheduleConfigJson; mixture?: ScheduleConfigJson };
  optimizer: AdamWConfig & { step: number };
  lineage: Lineage;
  savedAt: string;
  /** Free-form data of the caller (experiment name, seed...). */
  extra?: Record<string, unknown>;
}

export const CHECKPOINT_FILES = Object.freeze({
  model: "model.safetensors",
  config: "config.json",
  optimizer: "optimizer.safetensors",
  trainer: "trainer.json",
  /** The {@link ChecksumManifest} of the other files. */
  checksums: "checksums.json",
});

/**
 * `checksums.json`: the SHA-256 and size of every other file of a checkpoint, recorded when it
 * was written and checked when it is loaded.
 */
export interface ChecksumManifest {
  format: "midtrain-checksums";
  version: 1;
  algorithm: "SHA-256";
  files: Record<string, { sha256: string; bytes: number }>;
}

/** A checkpoint that `resume` or {@link latestValidCheckpoint} passed over because a file failed its checksum. */
export interface SkippedCheckpoint {
  id: string;
  /** The file that failed. */
  file: string;
  /** The {@link CheckpointCorruptError} message (says what to delete). */
  error: string;
}

const PREFIX = "ckpt-";

/** Name of the checkpoint at a global step: `ckpt-<step>`. */
export function checkpointName(step: number): string {
  return `${PREFIX}${step}`;
}

/** Step of a checkpoint name, or undefined for other names. */
export function checkpointStep(name: string): number | undefined {
  const m = /^ckpt-(\d+)$/.exec(name);
  return m ? Number(m[1]) : undefined;
}

/** The checkpoints of a storage, by step (ascending). */
export async function listCheckpoints(storage: CheckpointStorage): Promise<{ id: string; step: number }[]> {
  const out: { id: string; step: number }[] = [];
  for (const id of await storage.list()) {
    const step = checkpointStep(id);
    if (step !== undefined) out.push({ id, step });
  }
  return out.sort((a, b) => a.step - b.step);
}

/** The checkpoint with the highest step, or undefined when there is none. */
export async function latestCheckpoint(storage: CheckpointStorage): Promise<string | undefined> {
  const all = await listCheckpoints(storage);
  return all.length ? all[all.length - 1].id : undefined;
}

const enc = new TextEncoder();
const dec = new TextDecoder();

function paramOf(model: GPTNeoXModel, name: string) {
  const p = model.params.get(name);
  if (!p) throw new CheckpointReadError(`optimizer state names '${name}', which is not a parameter of the model`);
  return p;
}

/**
 * Optimizer moments as safetensors (`exp_avg.<name>`, `exp_avg_sq.<name>`, Hugging Face
 * parameter names), in the layout of the model's variables (`metadata.layout`), with the step
 * and hyper-parameters in the metadata.
 */
export function optimizerToSafetensors(model: GPTNeoXModel, state: AdamWState, config: AdamWConfig): Uint8Array {
  const tensors = new Map<string, SafeTensor>();
  for (const [prefix, moments] of [
    ["exp_avg", state.m],
    ["exp_avg_sq", state.v],
  ] as const) {
    for (const [name, data] of Object.entries(moments)) {
      tensors.set(`${prefix}.${name}`, { dtype: "F32", shape: paramOf(model, name).shape.slice(), data });
    }
  }
  return serializeSafetensors(tensors, {
    format: "midtrain-adamw",
    layout: "variables",
    step: String(state.step),
    config: JSON.stringify(config),
  });
}

/** Reads {@link optimizerToSafetensors} output back, checking it against the model's variables. */
export function optimizerFromSafetensors(model: GPTNeoXModel, bytes: Uint8Array): { state: AdamWState; config?: AdamWConfig } {
  const { tensors, metadata } = parseSafetensors(bytes);
  if (metadata.format !== "midtrain-adamw" || metadata.layout !== "variables") {
    throw new CheckpointReadError(
      `optimizer.safetensors has format '${metadata.format}' / layout '${metadata.layout}', expected 'midtrain-adamw' / 'variables'`,
    );
  }
  const state: AdamWState = { step: Number(metadata.step), m: {}, v: {} };
  for (const [key, t] of tensors) {
    const dot = key.indexOf(".");
    const prefix = key.slice(0, dot);
    const name = key.slice(dot + 1);
    if (prefix !== "exp_avg" && prefix !== "exp_avg_sq") {
      throw new CheckpointReadError(`optimizer.safetensors has an unexpected tensor '${key}'`);
    }
    const shape = paramOf(model, name).shape;
    if (t.shape.join(",") !== shape.join(",")) {
      throw new CheckpointReadError(`optimizer moment '${key}' has shape [${t.shape}] but the parameter has [${shape}]`);
    }
    (prefix === "exp_avg" ? state.m : state.v)[name] = toFloat32(t, key);
  }
  return { state, config: metadata.config ? JSON.parse(metadata.config) : undefined };
}

export interface SaveCheckpointOptions {
  model: GPTNeoXModel;
  optimizer: AdamW;
  state: TrainerState;
  /** Default `ckpt-<state.step>`. */
  id?: string;
}

/** The checksum manifest of a checkpoint's files. */
export async function checksumManifest(files: Record<string, Uint8Array>): Promise<ChecksumManifest> {
  const entries = await Promise.all(Object.entries(files).map(async ([name, data]) => [name, { sha256: await sha256Hex(data), bytes: data.length }] as const));
  return { format: "midtrain-checksums", version: 1, algorithm: "SHA-256", files: Object.fromEntries(entries) };
}

/**
 * Writes `model.safetensors`, `config.json`, `optimizer.safetensors`, `trainer.json` and
 * `checksums.json` (SHA-256 and size of the others) as one checkpoint (atomically, through the storage). Throws {@link CheckpointWriteError} on failure;
 * the other checkpoints are left as they were. Resolves to the checkpoint's name.
 */
export async function saveCheckpoint(storage: CheckpointStorage, options: SaveCheckpointOptions): Promise<string> {
  const { model, optimizer, state } = options;
  const id = options.id ?? checkpointName(state.step);
  const files: Record<string, Uint8Array> = {
    [CHECKPOINT_FILES.model]: await modelToSafetensors(model),
    [CHECKPOINT_FILES.config]: enc.encode(`${JSON.stringify(toHfConfig(model.config), null, 2)}\n`),
    [CHECKPOINT_FILES.optimizer]: optimizerToSafetensors(model, await optimizer.getState(), optimizer.config),
    [CHECKPOINT_FILES.trainer]: enc.encode(`${JSON.stringify(state, null, 2)}\n`),
  };
  files[CHECKPOINT_FILES.checksums] = enc.encode(`${JSON.stringify(await checksumManifest(files), null, 2)}\n`);
  try {
    await storage.write(id, files);
  } catch (e) {
    throw new CheckpointWriteError(
      `could not write checkpoint '${id}' to ${storage.location ?? "the checkpoint storage"}: ${(e as Error).message}. ` +
        "The previous checkpoints are intact; free space or fix permissions, then resume from the latest one.",
      { cause: e },
    );
  }
  return id;
}

export interface LoadedCheckpoint {
  id: string;
  model: GPTNeoXModel;
  /** An AdamW with the saved hyper-parameters and moments (absent with `optimizer: false`). */
  optimizer?: AdamW;
  state: TrainerState;
}

/** A read failure that means the file is not there (rather than, say, a permission or I/O error). */
function isMissing(e: unknown): boolean {
  const code = (e as { code?: unknown } | null)?.code;
  return code === undefined || code === "ENOENT";
}

/**
 * Reads one file of a checkpoint; with a manifest, checks its size and SHA-256 and throws
 * {@link CheckpointCorruptError} on a mismatch (or when a listed file is missing).
 */
async function readFile(storage: CheckpointStorage, id: string, file: string, manifest?: ChecksumManifest): Promise<Uint8Array> {
  const want = manifest?.files[file];
  let bytes: Uint8Array;
  try {
    bytes = await storage.read(id, file);
  } catch (e) {
    if (want && isMissing(e)) throw new CheckpointCorruptError(id, file, storage.location, `is listed in checksums.json but missing (${(e as Error).message})`);
    throw new CheckpointReadError(`cannot read ${file} of checkpoint '${id}' in ${storage.location ?? "the checkpoint storage"}: ${(e as Error).message}`, {
      cause: e,
    });
  }
  if (!manifest) return bytes;
  if (!want) throw new CheckpointCorruptError(id, file, storage.location, "is not listed in checksums.json");
  if (bytes.length !== want.bytes) {
    throw new CheckpointCorruptError(id, file, storage.location, `has ${bytes.length} bytes, but ${want.bytes} were written`);
  }
  const got = await sha256Hex(bytes);
  if (got !== want.sha256) {
    throw new CheckpointCorruptError(
      id,
      file,
      storage.location,
      `does not match the checksum recorded when it was written (SHA-256 ${got.slice(0, 16)}…, recorded ${want.sha256.slice(0, 16)}…)`,
    );
  }
  return bytes;
}

/** The checksum manifest of a checkpoint, or undefined for a checkpoint written before checksums existed. */
async function readManifest(storage: CheckpointStorage, id: string): Promise<ChecksumManifest | undefined> {
  let bytes: Uint8Array;
  try {
    bytes = await storage.read(id, CHECKPOINT_FILES.checksums);
  } catch (e) {
    if (isMissing(e)) return undefined;
    throw new CheckpointReadError(
      `cannot read ${CHECKPOINT_FILES.checksums} of checkpoint '${id}' in ${storage.location ?? "the checkpoint storage"}: ${(e as Error).message}`,
      { cause: e },
    );
  }
  let m: ChecksumManifest;
  try {
    m = JSON.parse(dec.decode(bytes));
  } catch (e) {
    throw new CheckpointCorruptError(id, CHECKPOINT_FILES.checksums, storage.location, `is not valid JSON (${(e as Error).message})`);
  }
  const valid =
    m?.format === "midtrain-checksums" &&
    m.version === 1 &&
    m.algorithm === "SHA-256" &&
    typeof m.files === "object" &&
    m.files !== null &&
    Object.values(m.files).every((f) => typeof f?.sha256 === "string" && typeof f.bytes === "number");
  if (!valid) throw new CheckpointCorruptError(id, CHECKPOINT_FILES.checksums, storage.location, "is not a midtrain checksum manifest");
  for (const f of [CHECKPOINT_FILES.trainer, CHECKPOINT_FILES.config, CHECKPOINT_FILES.model, CHECKPOINT_FILES.optimizer]) {
    if (!(f in m.files)) throw new CheckpointCorruptError(id, f, storage.location, "is not listed in checksums.json");
  }
  return m;
}

function parseTrainerState(id: string, bytes: Uint8Array): TrainerState {
  let json: TrainerState;
  try {
    json = JSON.parse(dec.decode(bytes));
  } catch (e) {
    throw new CheckpointReadError(`trainer.json of '${id}' is not valid JSON: ${(e as Error).message}`);
  }
  if (json?.format !== "midtrain-trainer" || json.version !== 1) {
    throw new CheckpointReadError(`trainer.json of '${id}' is not a midtrain trainer state (format/version)`);
  }
  return json;
}

/** Reads and parses `trainer.json` of a checkpoint (checked against its checksum when the checkpoint has one). */
export async function readTrainerState(storage: CheckpointStorage, id: string): Promise<TrainerState> {
  return parseTrainerState(id, await readFile(storage, id, CHECKPOINT_FILES.trainer, await readManifest(storage, id)));
}

/**
 * Checks every file of a checkpoint against its `checksums.json`. Resolves to true when all
 * match, to false for a checkpoint written before checksums existed (nothing to check); throws
 * {@link CheckpointCorruptError} naming the first file that does not match.
 */
export async function verifyCheckpoint(storage: CheckpointStorage, id: string): Promise<boolean> {
  const manifest = await readManifest(storage, id);
  if (!manifest) return false;
  for (const file of Object.keys(manifest.files)) await readFile(storage, id, file, manifest);
  return true;
}

/**
 * The newest checkpoint whose files match their checksums (or that has none to check), and the
 * newer ones passed over as corrupt. `id` is undefined when there is no usable checkpoint.
 * With `atMost`, checkpoints after that step are not considered.
 */
export async function latestValidCheckpoint(
  storage: CheckpointStorage,
  options: { atMost?: number } = {},
): Promise<{ id: string | undefined; skipped: SkippedCheckpoint[] }> {
  const all = (await listCheckpoints(storage)).filter((c) => options.atMost === undefined || c.step <= options.atMost);
  const skipped: SkippedCheckpoint[] = [];
  for (let i = all.length - 1; i >= 0; i--) {
    try {
      await verifyCheckpoint(storage, all[i].id);
      return { id: all[i].id, skipped };
    } catch (e) {
      if (!(e instanceof CheckpointCorruptError)) throw e;
      skipped.push({ id: e.checkpoint, file: e.file, error: e.message });
    }
  }
  return { id: undefined, skipped };
}

export interface LoadCheckpointOptions {
  /** Load the optimizer's moments (default true). */
  optimizer?: boolean;
  /**
   * Build the AdamW with its moments in host memory (`offload: true`, see `AdamWOptions`), so
   * that loading puts no optimizer state on the device. Checkpoints are the same in either
   * placement. Default false.
   */
  offloadOptimizer?: boolean;
}

/**
 * Loads a checkpoint (default: the latest one of the storage): the model, an AdamW holding the
 * saved moments (unless `optimizer: false`) and the trainer state. Every file is checked against
 * the checkpoint's `checksums.json` first (also the ones this load does not use), so a corrupt
 * checkpoint throws {@link CheckpointCorruptError} before anything is built; checkpoints written
 * before checksums existed load unchecked.
 */
export async function loadCheckpoint(storage: CheckpointStorage, id?: string, options: LoadCheckpointOptions = {}): Promise<LoadedCheckpoint> {
  const name = id ?? (await latestCheckpoint(storage));
  if (!name) {
    throw new CheckpointReadError(`no checkpoint in ${storage.location ?? "the checkpoint storage"}; train first or check the path`);
  }
  const manifest = await readManifest(storage, name);
  const state = parseTrainerState(name, await readFile(storage, name, CHECKPOINT_FILES.trainer, manifest));
  const configBytes = await readFile(storage, name, CHECKPOINT_FILES.config, manifest);
  const modelBytes = await readFile(storage, name, CHECKPOINT_FILES.model, manifest);
  const withOptimizer = options.optimizer !== false;
  const optimizerBytes = withOptimizer || manifest ? await readFile(storage, name, CHECKPOINT_FILES.optimizer, manifest) : undefined;
  const used = new Set<string>([CHECKPOINT_FILES.trainer, CHECKPOINT_FILES.config, CHECKPOINT_FILES.model, CHECKPOINT_FILES.optimizer]);
  for (const file of Object.keys(manifest?.files ?? {})) if (!used.has(file)) await readFile(storage, name, file, manifest);
  let config: unknown;
  try {
    config = JSON.parse(dec.decode(configBytes));
  } catch (e) {
    throw new CheckpointReadError(`config.json of '${name}' is not valid JSON: ${(e as Error).message}`);
  }
  const model = modelFromSafetensors(config as Parameters<typeof modelFromSafetensors>[0], modelBytes);
  if (!withOptimizer || !optimizerBytes) return { id: name, model, state };
  try {
    const { state: moments, config: saved } = optimizerFromSafetensors(model, optimizerBytes);
    const { step: _step, ...cfg } = state.optimizer ?? {};
    const optimizer = new AdamW({ ...saved, ...cfg, offload: options.offloadOptimizer ?? false });
    optimizer.setState(moments, model.params);
    return { id: name, model, optimizer, state };
  } catch (e) {
    model.dispose();
    throw e;
  }
}

/**
 * Deletes all but the newest `keepLast` checkpoints, never deleting those whose step is in
 * `keepSteps` or whose name is in `protect`. Resolves to the deleted names.
 */
export async function pruneCheckpoints(
  storage: CheckpointStorage,
  keepLast: number,
  keepSteps: readonly number[] = [],
  protect: readonly string[] = [],
): Promise<string[]> {
  const all = await listCheckpoints(storage);
  const newest = new Set(all.slice(Math.max(0, all.length - keepLast)).map((c) => c.id));
  const deleted: string[] = [];
  for (const c of all) {
    if (newest.has(c.id) || keepSteps.includes(c.step) || protect.includes(c.id)) continue;
    await storage.delete(c.id);
    deleted.push(c.id);
  }
  return deleted;
}
