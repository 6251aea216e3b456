import type { Mixer, MixerState, TrainingTime } from "@midtrain/data";
import type { GPTNeoXModel } from "@midtrain/model";
import { buildLrSchedule, type LrSchedule, type Registry } from "@midtrain/schedulers";
import { AdamW, type AdamWOptions } from "./adamw.js";
import {
  type Lineage,
  type LineageRef,
  type LoadCheckpointOptions,
  type LoadedCheckpoint,
  listCheckpoints,
  loadCheckpoint,
  type PhaseSpec,
  type SkippedCheckpoint,
  type TrainerState,
} from "./checkpoint.js";
import { CheckpointCorruptError, CheckpointReadError } from "./errors.js";
import type { CheckpointStorage } from "./storage.js";
import type { PhaseOptions } from "./train.js";

/** What a phase starts from: spread it into `trainPhase` options. */
export interface PhaseStart {
  model: GPTNeoXModel;
  optimizer: AdamW;
  time: TrainingTime;
  lineage: Lineage;
  /** The checkpoint it was loaded from. */
  fromCheckpoint: string;
  /** That checkpoint's trainer state. */
  state: TrainerState;
}

/** `trainPhase`'s phase options for a saved phase. */
export function phaseOptions(spec: PhaseSpec): PhaseOptions {
  return { name: spec.name, steps: spec.endStep, batchSize: spec.batchSize, gradAccum: spec.gradAccum, clipNorm: spec.clipNorm };
}

export interface ResumeOptions {
  storage: CheckpointStorage;
  /**
   * Default: the latest checkpoint of the storage whose files match their checksums (newer
   * corrupt ones are passed over and listed in `skipped`). A named checkpoint that is corrupt
   * throws CheckpointCorruptError.
   */
  checkpoint?: string;
  /** A mixer built with the same sources, seed and mixture schedule as the saved run; its state is restored. */
  mixer: Mixer;
  /** Registry for rebuilding the saved LR schedule (default: the schedulers' default registry). */
  registry?: Registry;
  /** Keep the loaded optimizer's moments in host memory (AdamW `offload: true`). Default false. */
  offloadOptimizer?: boolean;
}

export interface Resumed extends PhaseStart {
  /** The saved phase, as `trainPhase` options. */
  phase: PhaseOptions;
  /** The saved LR schedule rebuilt from its config (absent when the run saved none). */
  lr?: LrSchedule;
  /** Newer checkpoints passed over because a file failed its checksum (newest first); empty when none. */
  skipped: SkippedCheckpoint[];
}

/** The newest checkpoint that loads with intact files, and the corrupt ones passed over. */
async function loadLatestValid(
  storage: CheckpointStorage,
  options: LoadCheckpointOptions = {},
): Promise<{ loaded: LoadedCheckpoint; skipped: SkippedCheckpoint[] }> {
  const all = await listCheckpoints(storage);
  const skipped: SkippedCheckpoint[] = [];
  for (let i = all.length - 1; i >= 0; i--) {
    try {
      return { loaded: await loadCheckpoint(storage, all[i].id, options), skipped };
    } catch (e) {
      if (!(e instanceof CheckpointCorruptError)) throw e;
      skipped.push({ id: e.checkpoint, file: e.file, error: e.message });
    }
  }
  const where = storage.location ?? "the checkpoint storage";
  if (skipped.length === 0) throw new CheckpointReadError(`no checkpoint in ${where}; train first or check the path`);
  throw new CheckpointReadError(
    `no intact checkpoint in ${where}: ${skipped.map((s) => `'${s.id}' (${s.file})`).join(", ")} failed their checksums. ` +
      "Delete them and start the run again.",
  );
}

/**
 * Continues a run exactly where a checkpoint left it: weights, optimizer moments and step,
 * training time, phase and the mixer's RNG and cursors. Training on from here gives the same
 * losses as a run that was never stopped. Without a checkpoint name it takes the newest intact
 * checkpoint and reports the corrupt ones it passed over in `skipped`.
 */
export async function resume(o: ResumeOptions): Promise<Resumed> {
  const load = { offloadOptimizer: o.offloadOptimizer };
  const { loaded, skipped } =
    o.checkpoint !== undefined ? { loaded: await loadCheckpoint(o.storage, o.checkpoint, load), skipped: [] } : await loadLatestValid(o.storage, load);
  const { state } = loaded;
  try {
    if (!state.mixer) throw new CheckpointReadError(`checkpoint '${loaded.id}' has no mixer state; it cannot be resumed exactly`);
    o.mixer.setState(state.mixer);
    const lr = state.schedules.lr ? buildLrSchedule(state.schedules.lr, { registry: o.registry }) : undefined;
    return {
      model: loaded.model,
      optimizer: loaded.optimizer!,
      time: state.time,
      lineage: state.lineage,
      fromCheckpoint: loaded.id,
      state,
      phase: phaseOptions(state.phase),
      ...(lr ? { lr } : {}),
      skipped,
    };
  } catch (e) {
    loaded.model.dispose();
    loaded.optimizer?.dispose();
    throw e;
  }
}

/** The lineage record of a run started from checkpoint `id` (with `state`) of `storage`. */
function parentRef(kind: LineageRef["kind"], id: string, state: TrainerState, storage: CheckpointStorage): LineageRef {
  return { kind, checkpoint: id, step: state.step, phase: state.phase.name, ...(storage.location ? { location: storage.location } : {}) };
}

function childLineage(parent: Lineage, ref: LineageRef): Lineage {
  return { parent: ref, ancestors: parent.parent ? [...parent.ancestors, parent.parent] : [...parent.ancestors] };
}

/**
 * Carries a saved mixer state into a mixer with other sources or another schedule: the RNG
 * continues, and each source the two share (same size) keeps its cursor, so the general data
 * stream does not restart at a branch. Needs the same seed. Returns the sources that continued.
 */
export function carryMixerState(saved: MixerState, mixer: Mixer): string[] {
  const cur = mixer.getState();
  if (saved.seed !== cur.seed) return [];
  const sources = { ...cur.sources };
  const carried: string[] = [];
  for (const n of Object.keys(cur.sources)) {
    const p = saved.sources[n];
    if (p && p.numSequences === cur.sources[n].numSequences) {
      sources[n] = { ...p };
      carried.push(n);
    }
  }
  mixer.setState({ ...cur, rng: saved.rng, sources });
  return carried;
}

export interface BranchOptions {
  storage: CheckpointStorage;
  /** The checkpoint to branch from (the branch point k); a corrupt one throws CheckpointCorruptError. */
  checkpoint: string;
  /** A mixer with the branch's mixture schedule. */
  mixer: Mixer;
  /**
   * `continue` (default): carry the parent's RNG and the cursors of shared sources over (needs
   * the same mixer seed); `fresh`: keep the mixer as built.
   */
  data?: "continue" | "fresh";
  /** Keep the loaded optimizer's moments in host memory (AdamW `offload: true`). Default false. */
  offloadOptimizer?: boolean;
}

export interface Branched extends PhaseStart {
  /** Sources whose cursors continued from the parent. */
  continuedSources: string[];
}

/**
 * Starts a branch at a checkpoint's step k (midtraining, or continued pretraining with weight 1):
 * weights, optimizer moments and step and the training time continue, so the parent's LR schedule
 * (a function of the global step) continues without re-warmup; only the data mixture changes.
 * Pass the returned `time` and a new phase name to `trainPhase`. Lineage records the parent.
 */
export async function branch(o: BranchOptions): Promise<Branched> {
  const loaded = await loadCheckpoint(o.storage, o.checkpoint, { offloadOptimizer: o.offloadOptimizer });
  const { state } = loaded;
  const continuedSources = o.data !== "fresh" && state.mixer ? carryMixerState(state.mixer, o.mixer) : [];
  return {
    model: loaded.model,
    optimizer: loaded.optimizer!,
    time: state.time,
    lineage: childLineage(state.lineage, parentRef("branch", loaded.id, state, o.storage)),
    fromCheckpoint: loaded.id,
    state,
    continuedSources,
  };
}

export interface SftOptions {
  storage: CheckpointStorage;
  /** The checkpoint whose weights to fine-tune; a corrupt one throws CheckpointCorruptError. */
  checkpoint: string;
  /** Hyper-parameters of the fresh optimizer. */
  optimizer?: AdamWOptions;
  /** Phase name (default `sft`). */
  phase?: string;
}

/**
 * Starts supervised fine-tuning from a checkpoint's weights: a fresh AdamW and a training time
 * of its own starting at step 0 (give the SFT phase its own LR schedule). Lineage records the parent.
 */
export async function startSft(o: SftOptions): Promise<PhaseStart> {
  const loaded = await loadCheckpoint(o.storage, o.checkpoint, { optimizer: false });
  const { state } = loaded;
  const name = o.phase ?? "sft";
  return {
    model: loaded.model,
    optimizer: new AdamW(o.optimizer),
    time: { step: 0, tokens: 0, phase: name, phaseStep: 0, phaseSteps: 0, phaseFraction: 0 },
    lineage: childLineage(state.lineage, parentRef("sft", loaded.id, state, o.storage)),
    fromCheckpoint: loaded.id,
    state,
  };
}
