import { permutation, Rng, type RngState } from "@midtrain/common";
import type { TrainingTime } from "@midtrain/schedulers";
import { DataConfigError, EmptySourceError, EpochLimitError, InvalidWeightsError, UnknownSourceError } from "./errors.js";
import type { PackedSource } from "./pack.js";

/** Training time as @midtrain/schedulers defines it: the mixer passes it to the mixture schedule. */
export type { TrainingTime };

/**
 * What the mixer needs from a mixture schedule: the `MixtureSchedule` built by
 * `@midtrain/schedulers` satisfies it. `at(time)` returns weights by source name (not necessarily
 * normalised). A stateful schedule exposes its state, which the mixer saves with its own.
 */
export interface MixtureScheduleLike {
  readonly sources?: readonly string[];
  at(time: TrainingTime): Record<string, number>;
  readonly stateful?: boolean;
  getState?(): unknown;
  setState?(state: unknown): void;
}

/** A batch of B sequences of length T, row-major (row b occupies [b*T, (b+1)*T)). */
export interface Batch {
  batchSize: number;
  seqLen: number;
  inputs: Int32Array;
  targets: Int32Array;
  /** 1 where the target counts toward the loss, 0 for masked prompt tokens and padding. */
  mask: Float32Array;
  /** Source name of each row. */
  sources: string[];
  /** Sequence index within its source of each row. */
  indices: number[];
  /** Normalised weights the rows were drawn with (empty for evaluation batches). */
  weights: Record<string, number>;
}

export interface SourceCounters {
  /** Completed passes over the source. */
  epoch: number;
  /** Position in the current epoch's shuffled order. */
  cursor: number;
  /** Sequences drawn so far. */
  sequences: number;
  /** Input tokens drawn (seqLen per sequence). */
  tokens: number;
  /** Positions that carry loss, drawn so far. */
  lossTokens: number;
}

/** JSON-serialisable mixer state. Restoring it into a mixer built with the same sources and schedule resumes the stream exactly. */
export interface MixerState {
  version: 1;
  seed: number | string;
  rng: RngState;
  sources: Record<string, SourceCounters & { numSequences: number }>;
  schedule?: unknown;
}

export interface SourceStats extends SourceCounters {
  numSequences: number;
  /** Epochs as a fraction: epoch + cursor / numSequences. */
  epochs: number;
}

export interface MixerOptions {
  /** Packed training sources by name. */
  sources: Record<string, PackedSource>;
  /** A mixture schedule, or fixed weights by source name. */
  schedule: MixtureScheduleLike | Record<string, number>;
  seed?: number | string;
  /** Expected sequence length; every source must match. Default: the sources' common seqLen. */
  seqLen?: number;
  /** Stop with EpochLimitError before a source would be read for epoch maxEpochs+1. One number or per source. */
  maxEpochs?: number | Record<string, number>;
  /** Packed validation sources by name, for {@link Mixer.evalBatches}. */
  validation?: Record<string, PackedSource>;
}

export interface Mixer {
  readonly sourceNames: readonly string[];
  readonly seqLen: number;
  /** Draws `batchSize` sequences, each from a source picked with the schedule's weights at `time`. */
  nextBatch(batchSize: number, time: TrainingTime): Batch;
  /** The normalised weights the schedule gives at `time` (validated). */
  weightsAt(time: TrainingTime): Record<string, number>;
  getState(): MixerState;
  setState(state: MixerState): void;
  stats(): Record<string, SourceStats>;
  /** All validation sequences of `source`, in fixed order, `batchSize` rows at a time (last batch may be smaller). */
  evalBatches(source: string, batchSize: number): Generator<Batch>;
}

/**
 * Sources with more sequences than this are shuffled by a keyed bijection instead of a table of
 * indices (4 bytes per sequence): 2^22 sequences (16 MB), far above the shipped corpora, so
 * their order is the Fisher–Yates one it always was.
 */
export const SHUFFLE_TABLE_MAX = 1 << 22;

/**
 * A seeded permutation of [0, n) in O(1) memory: a 4-round Feistel network on the smallest
 * even-bit domain that holds n, walking cycles until the image falls below n. Indexed like an array.
 */
export function feistelPermutation(n: number, rng: Rng): (i: number) => number {
  let bits = 2;
  while (2 ** bits < n) bits += 2;
  const half = bits / 2;
  const mask = 2 ** half - 1;
  const keys = [0, 1, 2, 3].map(() => Math.floor(rng.nextFloat() * 4294967296) >>> 0);
  const round = (x: number, k: number) => {
    let h = Math.imul(x ^ k, 0x9e3779b1);
    h ^= h >>> 15;
    h = Math.imul(h, 0x85ebca77);
    h ^= h >>> 13;
    return (h >>> 0) & mask;
  };
  const once = (x: number) => {
    let l = Math.floor(x / 2 ** half);
    let r = x & mask;
    for (const k of keys) {
      const t = r;
      r = (l ^ round(r, k)) & mask;
      l = t;
    }
    return l * 2 ** half + r;
  };
  return (i: number) => {
    let x = i;
    do x = once(x);
    while (x >= n);
    return x;
  };
}

const ZERO_TIME: TrainingTime = { step: 0, tokens: 0, phase: "", phaseStep: 0, phaseSteps: 1, phaseFraction: 0 };

function isSchedule(s: unknown): s is MixtureScheduleLike {
  return typeof s === "object" && s !== null && typeof (s as { at?: unknown }).at === "function";
}

/** Checks and normalises mixture weights against the known source names. */
export function normaliseWeights(weights: Record<string, number>, known: readonly string[]): Record<string, number> {
  if (weights === null || typeof weights !== "object") throw new InvalidWeightsError("mixture weights must be an object mapping source name to weight");
  let total = 0;
  for (const [name, w] of Object.entries(weights)) {
    if (!known.includes(name)) throw new UnknownSourceError(name, known);
    if (typeof w !== "number" || !Number.isFinite(w) || w < 0) {
      throw new InvalidWeightsError(`mixture weight for '${name}' is ${w}; weights must be finite and >= 0`);
    }
    total += w;
  }
  if (!(total > 0)) {
    throw new InvalidWeightsError(`mixture weights are all zero (${JSON.stringify(weights)}); give at least one source a positive weight`);
  }
  const out: Record<string, number> = {};
  for (const name of known) out[name] = (weights[name] ?? 0) / total;
  return out;
}

function allocBatch(B: number, T: number): Batch {
  return {
    batchSize: B,
    seqLen: T,
    inputs: new Int32Array(B * T),
    targets: new Int32Array(B * T),
    mask: new Float32Array(B * T),
    sources: [],
    indices: [],
    weights: {},
  };
}

/** Iterates over every sequence of a packed source in order, `batchSize` rows at a time. */
export function* evalBatches(source: PackedSource, batchSize: number, name = "eval"): Generator<Batch> {
  if (!Number.isInteger(batchSize) || batchSize < 1) throw new DataConfigError(`batchSize must be a positive integer, got ${batchSize}`);
  for (let start = 0; start < source.numSequences; start += batchSize) {
    const B = Math.min(batchSize, source.numSequences - start);
    const batch = allocBatch(B, source.seqLen);
    for (let b = 0; b < B; b++) {
      source.write(start + b, batch.inputs, batch.targets, batch.mask, b);
      batch.sources.push(name);
      batch.indices.push(start + b);
    }
    yield batch;
  }
}

/**
 * Creates a deterministic, resumable weighted mixer over packed sources. Each sequence's source is
 * drawn with a seeded PRNG from the schedule's weights at the batch's training time; each source
 * serves its sequences in a seeded shuffled order that is redrawn every epoch.
 */
export function createMixer(options: MixerOptions): Mixer {
  // Sorted, so the draw does not depend on the order the caller listed the sources in.
  const names = Object.keys(options.sources ?? {}).sort();
  if (names.length === 0) throw new EmptySourceError("createMixer needs at least one source in options.sources");
  const sources = options.sources;
  const seqLens = new Set(names.map((n) => sources[n].seqLen));
  const seqLen = options.seqLen ?? sources[names[0]].seqLen;
  for (const n of names) {
    if (sources[n].seqLen !== seqLen) {
      throw new DataConfigError(
        `source '${n}' was packed with seqLen ${sources[n].seqLen} but the mixer uses ${seqLen}` +
          (seqLens.size > 1 ? "; pack every source with the same seqLen" : ""),
      );
    }
  }
  const seed = options.seed ?? 0;
  const schedule: MixtureScheduleLike = isSchedule(options.schedule)
    ? options.schedule
    : (() => {
        const fixed = { ...(options.schedule as Record<string, number>) };
        return { sources: Object.keys(fixed), at: () => fixed };
      })();
  if (schedule.sources) for (const s of schedule.sources) if (!names.includes(s)) throw new UnknownSourceError(s, names);
  // Fail early on bad weights: evaluate the schedule at the start of training.
  if (!isSchedule(options.schedule)) normaliseWeights(options.schedule as Record<string, number>, names);
  const maxEpochsOf = (name: string): number | undefined => {
    const m = options.maxEpochs;
    const v = typeof m === "number" ? m : m?.[name];
    if (v !== undefined && !(v > 0)) throw new DataConfigError(`maxEpochs for '${name}' must be > 0, got ${v}`);
    return v;
  };
  const caps = Object.fromEntries(names.map((n) => [n, maxEpochsOf(n)]));
  if (options.maxEpochs && typeof options.maxEpochs === "object") {
    for (const n of Object.keys(options.maxEpochs)) if (!names.includes(n)) throw new UnknownSourceError(n, names, "maxEpochs");
  }
  if (options.validation) {
    for (const [n, v] of Object.entries(options.validation)) {
      if (v.seqLen !== seqLen) throw new DataConfigError(`validation source '${n}' has seqLen ${v.seqLen}, the mixer uses ${seqLen}`);
    }
  }

  let rng = new Rng(seed, "mixer");
  let counters: Record<string, SourceCounters> = {};
  const resetCounters = () => {
    counters = Object.fromEntries(names.map((n) => [n, { epoch: 0, cursor: 0, sequences: 0, tokens: 0, lossTokens: 0 }]));
  };
  resetCounters();
  const perms = new Map<string, { epoch: number; perm: (i: number) => number }>();
  const permFor = (name: string, epoch: number): ((i: number) => number) => {
    const c = perms.get(name);
    if (c && c.epoch === epoch) return c.perm;
    const n = sources[name].numSequences;
    const rng = new Rng(seed, "order", name, epoch);
    // A shuffled index array up to SHUFFLE_TABLE_MAX sequences; above it a keyed bijection, so memory does not grow with the source.
    const table = n <= SHUFFLE_TABLE_MAX ? permutation(n, rng) : undefined;
    const perm = table ? (i: number) => table[i] : feistelPermutation(n, rng);
    perms.set(name, { epoch, perm });
    return perm;
  };

  const weightsAt = (time: TrainingTime): Record<string, number> => normaliseWeights(schedule.at(time ?? ZERO_TIME), names);

  const pick = (weights: Record<string, number>): string => {
    const u = rng.nextFloat();
    let cum = 0;
    let last = "";
    for (const n of names) {
      const w = weights[n];
      if (!(w > 0)) continue;
      cum += w;
      last = n;
      if (u < cum) return n;
    }
    return last; // u within rounding error of 1
  };

  const draw = (name: string, batch: Batch, row: number): void => {
    const src = sources[name];
    const c = counters[name];
    if (src.numSequences === 0) throw new EmptySourceError(`source '${name}' has no sequences but the mixture gives it a positive weight`);
    const cap = caps[name];
    if (cap !== undefined && c.epoch >= cap) throw new EpochLimitError(name, cap);
    const index = permFor(name, c.epoch)(c.cursor);
    const loss = src.write(index, batch.inputs, batch.targets, batch.mask, row);
    c.cursor++;
    if (c.cursor >= src.numSequences) {
      c.cursor = 0;
      c.epoch++;
    }
    c.sequences++;
    c.tokens += seqLen;
    c.lossTokens += loss;
    batch.sources.push(name);
    batch.indices.push(index);
  };

  const mixer: Mixer = {
    sourceNames: names,
    seqLen,
    weightsAt,
    nextBatch(batchSize: number, time: TrainingTime): Batch {
      if (!Number.isInteger(batchSize) || batchSize < 1) throw new DataConfigError(`batchSize must be a positive integer, got ${batchSize}`);
      const weights = weightsAt(time);
      const saved = mixer.getState();
      const batch = allocBatch(batchSize, seqLen);
      batch.weights = weights;
      try {
        for (let b = 0; b < batchSize; b++) draw(pick(weights), batch, b);
      } catch (e) {
        // Leave the mixer as it was before this call, so a caller can fix the cause and retry.
        mixer.setState(saved);
        throw e;
      }
      return batch;
    },
    getState(): MixerState {
      const state: MixerState = {
        version: 1,
        seed,
        rng: rng.getState(),
        sources: Object.fromEntries(names.map((n) => [n, { ...counters[n], numSequences: sources[n].numSequences }])),
      };
      if (schedule.stateful && schedule.getState) state.schedule = schedule.getState();
      return state;
    },
    setState(state: MixerState): void {
      if (state?.version !== 1) throw new DataConfigError("unsupported mixer state: expected an object with version 1");
      if (state.seed !== seed) {
        throw new DataConfigError(`mixer state was saved with seed ${JSON.stringify(state.seed)}, this mixer has seed ${JSON.stringify(seed)}`);
      }
      for (const n of Object.keys(state.sources)) if (!names.includes(n)) throw new UnknownSourceError(n, names, "mixer state");
      for (const n of names) {
        const s = state.sources[n];
        if (!s) throw new DataConfigError(`mixer state has no entry for source '${n}'; it was saved from a mixer with other sources`);
        if (s.numSequences !== sources[n].numSequences) {
          throw new DataConfigError(
            `source '${n}' has ${sources[n].numSequences} sequences but the state was saved with ${s.numSequences}; rebuild the source with the same data, tokenizer and seqLen`,
          );
        }
      }
      rng = Rng.fromState(state.rng);
      counters = Object.fromEntries(
        names.map((n) => {
          const { epoch, cursor, sequences, tokens, lossTokens } = state.sources[n];
          return [n, { epoch, cursor, sequences, tokens, lossTokens }];
        }),
      );
      if (state.schedule !== undefined && schedule.setState) schedule.setState(state.schedule);
    },
    stats(): Record<string, SourceStats> {
      return Object.fromEntries(
        names.map((n) => {
          const c = counters[n];
          const size = sources[n].numSequences;
          return [n, { ...c, numSequences: size, epochs: c.epoch + (size ? c.cursor / size : 0) }];
        }),
      );
    },
    evalBatches(source: string, batchSize: number): Generator<Batch> {
      const v = options.validation ?? {};
      if (!Object.hasOwn(v, source)) throw new UnknownSourceError(source, Object.keys(v), "evalBatches");
      return evalBatches(v[source], batchSize, source);
    },
  };
  return mixer;
}
