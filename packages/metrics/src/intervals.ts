/// <reference path="./jstat.d.ts" />
import jstat from "jstat";
import { EmptyInputError, InvalidArgumentError, LengthMismatchError, assertAllFinite } from "./errors.js";
import { pearson, summarize } from "./stats.js";

/**
 * A point estimate with a two-sided confidence interval. `lo`/`hi` are `null` when the sample is too
 * small to bound the estimate (fewer than 2 paired values for a mean, fewer than 4 pairs for a
 * correlation): such an estimate supports no claim either way.
 */
export interface Interval {
  estimate: number;
  lo: number | null;
  hi: number | null;
  /** Number of independent units (seeds, or pairs for a correlation). */
  n: number;
  /** Coverage of the interval, e.g. 0.95. */
  confidence: number;
  /** How the interval was formed: Student-t over the values, Fisher z for a correlation, or none. */
  method: "t" | "fisher-z" | "none";
  /** The values the estimate was computed from (per-seed differences, or the correlation's pairs count). */
  values: number[];
}

function checkConfidence(confidence: number): void {
  if (!(confidence > 0 && confidence < 1)) throw new InvalidArgumentError(`confidence must be in (0, 1), got ${confidence}`);
}

/**
 * Mean of `values` with a Student-t interval (n − 1 degrees of freedom): the right interval for a
 * handful of independent seeds. With one value the interval is `null` (no spread is observable).
 */
export function meanInterval(values: ArrayLike<number>, options: { confidence?: number } = {}): Interval {
  const confidence = options.confidence ?? 0.95;
  checkConfidence(confidence);
  const s = summarize(values);
  if (s.n < 2) return { estimate: s.mean, lo: null, hi: null, n: s.n, confidence, method: "none", values: s.values };
  const q = jstat.jStat.studentt.inv(1 - (1 - confidence) / 2, s.n - 1);
  const half = q * s.stderr;
  return { estimate: s.mean, lo: s.mean - half, hi: s.mean + half, n: s.n, confidence, method: "t", values: s.values };
}

/**
 * Paired difference `a[i] − b[i]` (e.g. baseline loss minus midtraining loss for pretraining seed i)
 * with a Student-t interval over the pairs. Pairing removes the variance the two arms share (the same
 * seed's data order and initialisation), which is what makes a few seeds informative.
 */
export function pairedDifference(a: ArrayLike<number>, b: ArrayLike<number>, options: { confidence?: number } = {}): Interval {
  if (a.length !== b.length)
    throw new LengthMismatchError(`pairedDifference(): a has ${a.length} values but b has ${b.length}; pass one value per seed on both sides`);
  if (a.length === 0) throw new EmptyInputError("pairedDifference() needs at least one pair");
  assertAllFinite(a, "a");
  assertAllFinite(b, "b");
  const d = Array.from(a, (x, i) => x - b[i]);
  return meanInterval(d, options);
}

/**
 * Pearson correlation with a Fisher-z interval (`atanh(r) ± z·/√(n − 3)`). Needs at least 4 pairs
 * for an interval; with 2–3 pairs the estimate comes without one.
 */
export function correlationInterval(x: ArrayLike<number>, y: ArrayLike<number>, options: { confidence?: number } = {}): Interval {
  const confidence = options.confidence ?? 0.95;
  checkConfidence(confidence);
  const r = pearson(x, y);
  const n = x.length;
  if (n < 4) return { estimate: r, lo: null, hi: null, n, confidence, method: "none", values: [] };
  const z = Math.atanh(Math.min(Math.max(r, -0.999999999), 0.999999999));
  const half = jstat.jStat.normal.inv(1 - (1 - confidence) / 2, 0, 1) / Math.sqrt(n - 3);
  return { estimate: r, lo: Math.tanh(z - half), hi: Math.tanh(z + half), n, confidence, method: "fisher-z", values: [] };
}

/** What an interval says about a claimed direction. */
export type Verdict = "reproduced" | "contradicted" | "inconclusive";

/**
 * `reproduced` when the whole interval lies on the claimed side of zero (`direction` +1: positive,
 * −1: negative), `contradicted` when it lies wholly on the other side, otherwise `inconclusive`
 * (including when there is no interval).
 */
export function verdictOf(interval: Interval, direction: 1 | -1): Verdict {
  if (interval.lo === null || interval.hi === null) return "inconclusive";
  const lo = direction > 0 ? interval.lo : -interval.hi;
  const hi = direction > 0 ? interval.hi : -interval.lo;
  if (lo > 0) return "reproduced";
  if (hi < 0) return "contradicted";
  return "inconclusive";
}
