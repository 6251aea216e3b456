import { EmptyInputError, LengthMismatchError, UndefinedMetricError, assertAllFinite } from "./errors.js";

/** Summary statistics over repeated runs (seeds). */
export interface Summary {
  mean: number;
  /** Sample standard deviation (divides by n − 1); 0 when n = 1 (check `n` before reading it as spread). */
  std: number;
  n: number;
  min: number;
  max: number;
  /** Standard error of the mean, `std / sqrt(n)`; 0 when n = 1. */
  stderr: number;
  /** The input values, copied, in input order. */
  values: number[];
}

/** Mean, sample std, n, min, max and standard error of `values` (e.g. one metric over seeds). */
export function summarize(values: ArrayLike<number>): Summary {
  if (values.length === 0) {
    throw new EmptyInputError("summarize() needs at least one value; got an empty array (did every seed fail?)");
  }
  assertAllFinite(values, "values");
  const xs = Array.from(values);
  const n = xs.length;
  let mean = 0;
  // Welford's update: numerically stable for values with a large common offset.
  let m2 = 0;
  for (let i = 0; i < n; i++) {
    const d = xs[i] - mean;
    mean += d / (i + 1);
    m2 += d * (xs[i] - mean);
  }
  const std = n > 1 ? Math.sqrt(m2 / (n - 1)) : 0;
  return {
    mean,
    std,
    n,
    min: Math.min(...xs),
    max: Math.max(...xs),
    stderr: std / Math.sqrt(n),
    values: xs,
  };
}

/**
 * Pearson correlation coefficient of paired samples (e.g. proximity advantage vs relative
 * improvement across branches). Throws when lengths differ, n < 2, or either side is constant.
 */
export function pearson(x: ArrayLike<number>, y: ArrayLike<number>): number {
  if (x.length !== y.length) {
    throw new LengthMismatchError(`pearson(): x has ${x.length} values but y has ${y.length}; pass paired samples`);
  }
  if (x.length < 2) {
    throw new EmptyInputError(`pearson() needs at least 2 pairs, got ${x.length}`);
  }
  assertAllFinite(x, "x");
  assertAllFinite(y, "y");
  const n = x.length;
  let mx = 0;
  let my = 0;
  for (let i = 0; i < n; i++) {
    mx += x[i];
    my += y[i];
  }
  mx /= n;
  my /= n;
  let sxy = 0;
  let sxx = 0;
  let syy = 0;
  for (let i = 0; i < n; i++) {
    const dx = x[i] - mx;
    const dy = y[i] - my;
    sxy += dx * dy;
    sxx += dx * dx;
    syy += dy * dy;
  }
  if (sxx === 0 || syy === 0) {
    throw new UndefinedMetricError(`pearson(): ${sxx === 0 ? "x" : "y"} is constant, so the correlation is undefined; it needs varying values`);
  }
  const r = sxy / Math.sqrt(sxx * syy);
  return Math.max(-1, Math.min(1, r));
}
