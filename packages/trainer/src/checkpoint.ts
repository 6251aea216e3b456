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
import { CheckpointReadError, CheckpointWriteError } from "./errors.js";
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
});

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

/**
 * Writes `model.safetensors`, `config.json`, `optimizer.safetensors` and `trainer.json` as one
 * checkpoint (atomically, through the storage). Throws {@link CheckpointWriteError} on failure;
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

async function readFile(storage: CheckpointStorage, id: string, file: string): Promise<Uint8Array> {
  try {
    return await storage.read(id, file);
  } catch (e) {
    throw new CheckpointReadError(
      `cannot read ${file} of checkpoint '${id}' in ${storage.location ?? "the checkpoint storage"}: ${(e as Error).message}`,
      { cause: e },
    );
  }
}

/** Reads and parses `trainer.json` of a checkpoint. */
export async function readTrainerState(storage: CheckpointStorage, id: string): Promise<TrainerState> {
  const text = dec.decode(await readFile(storage, id, CHECKPOINT_FILES.trainer));
  let json: TrainerState;
  try {
    json = JSON.parse(text);
  } catch (e) {
    throw new CheckpointReadError(`trainer.json of '${id}' is not valid JSON: ${(e as Error).message}`);
  }
  if (json?.format !== "midtrain-trainer" || json.version !== 1) {
    throw new CheckpointReadError(`trainer.json of '${id}' is not a midtrain trainer state (format/version)`);
  }
  return json;
}

/**
 * Loads a checkpoint (default: the latest one of the storage): the model, an AdamW holding the
 * saved moments (unless `optimizer: false`) and the trainer state.
 */
export async function loadCheckpoint(
  storage: CheckpointStorage,
  id?: string,
  options: { optimizer?: boolean } = {},
): Promise<LoadedCheckpoint> {
  const name = id ?? (await latestCheckpoint(storage));
  if (!name) {
    throw new CheckpointReadError(`no checkpoint in ${storage.location ?? "the checkpoint storage"}; train first or check the path`);
  }
  const state = await readTrainerState(storage, name);
  const config = JSON.parse(dec.decode(await readFile(storage, name, CHECKPOINT_FILES.config)));
  const model = modelFromSafetensors(config, await readFile(storage, name, CHECKPOINT_FILES.model));
  if (options.optimizer === false) return { id: name, model, state };
  try {
    const { state: moments, config: saved } = optimizerFromSafetensors(model, await readFile(storage, name, CHECKPOINT_FILES.optimizer));
    const { step: _step, ...cfg } = state.optimizer ?? {};
    const optimizer = new AdamW({ ...saved, ...cfg });
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
