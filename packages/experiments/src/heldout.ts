import type { PackedSource } from "@midtrain/data";
import type { ExperimentConfig } from "./config.js";
import type { ExperimentData } from "./env.js";
import { ExperimentError } from "./errors.js";

/**
 * A source's held-out sequences in two disjoint halves: `valid` drives every choice a run makes
 * (evaluation curves, the SFT learning rate), `test` only measures what the report states.
 */
export interface HeldOut {
  valid: PackedSource;
  test: PackedSource;
}

/** A packed source restricted to the given sequence indices (in that order). */
export function indexedSubset(src: PackedSource, indices: readonly number[]): PackedSource {
  if (indices.length === src.numSequences && indices.every((x, i) => x === i)) return src;
  const n = indices.length;
  return {
    kind: src.kind,
    seqLen: src.seqLen,
    numSequences: n,
    numTokens: Math.round((src.numTokens * n) / Math.max(1, src.numSequences)),
    numDocuments: src.numDocuments,
    numBytes: Math.round((src.numBytes * n) / Math.max(1, src.numSequences)),
    write: (index, inputs, targets, mask, row) => src.write(indices[index], inputs, targets, mask, row),
  };
}

/** A packed source restricted to `max` sequences spread evenly over it (a fixed evaluation subset). */
export function evenSubset(src: PackedSource, max: number): PackedSource {
  const n = Math.min(max, src.numSequences);
  if (n === src.numSequences) return src;
  return indexedSubset(
    src,
    Array.from({ length: n }, (_, i) => Math.floor((i * src.numSequences) / n)),
  );
}

/**
 * FNV-1a (32-bit) over a sequence's content: input ids, target ids and loss mask. Identical
 * sequences hash alike wherever they sit, so the split is a function of content only.
 */
export function sequenceHash(inputs: Int32Array, targets: Int32Array, mask: Float32Array): number {
  let h = 0x811c9dc5;
  const mix = (v: number) => {
    for (let s = 0; s < 32; s += 8) {
      h ^= (v >>> s) & 0xff;
      h = Math.imul(h, 0x01000193);
    }
  };
  for (let i = 0; i < inputs.length; i++) mix(inputs[i]);
  for (let i = 0; i < targets.length; i++) mix(targets[i]);
  for (let i = 0; i < mask.length; i++) mix(mask[i] > 0 ? 1 : 0);
  return h >>> 0;
}

/**
 * Splits a held-out source (documents never trained on) into validation and test halves by a
 * hash of each sequence's content: up to `max` sequences each, taken evenly from the source
 * first. Needs at least 2 held-out sequences; each half gets at least one.
 */
export function splitHeldOut(src: PackedSource, max: number, name: string): HeldOut {
  const pool = evenSubset(src, 2 * max);
  if (pool.numSequences < 2)
    throw new ExperimentError(
      `${name} has ${pool.numSequences} held-out sequence(s); the validation/test split needs at least 2 — give the source more documents (or a validPath)`,
    );
  const T = pool.seqLen;
  const inputs = new Int32Array(T);
  const targets = new Int32Array(T);
  const mask = new Float32Array(T);
  const valid: number[] = [];
  const test: number[] = [];
  for (let i = 0; i < pool.numSequences; i++) {
    inputs.fill(0);
    targets.fill(0);
    mask.fill(0);
    pool.write(i, inputs, targets, mask, 0);
    // The top bit of the hash: independent of the low bits that a sequence's position might correlate with.
    (sequenceHash(inputs, targets, mask) >>> 31 ? test : valid).push(i);
  }
  if (!test.length) test.push(valid.pop()!);
  if (!valid.length) valid.push(test.pop()!);
  return { valid: indexedSubset(pool, valid.slice(0, max)), test: indexedSubset(pool, test.slice(0, max)) };
}

/** Held-out halves of every pretraining source and SFT set of an experiment (cached per data object). */
export interface HeldOutSets {
  sources: Record<string, HeldOut>;
  sft: Record<string, HeldOut>;
}

const cache = new WeakMap<ExperimentData, Map<number, HeldOutSets>>();

export function heldOutSets(config: ExperimentConfig, data: ExperimentData): HeldOutSets {
  const max = config.data.maxValidationSequences;
  let byMax = cache.get(data);
  if (!byMax) {
    byMax = new Map();
    cache.set(data, byMax);
  }
  let sets = byMax.get(max);
  if (!sets) {
    sets = {
      sources: Object.fromEntries(Object.entries(data.sources).map(([n, s]) => [n, splitHeldOut(s.valid, max, `source '${n}'`)])),
      sft: Object.fromEntries(Object.entries(data.sft).map(([n, s]) => [n, splitHeldOut(s.valid, max, `SFT set '${n}'`)])),
    };
    byMax.set(max, sets);
  }
  return sets;
}
