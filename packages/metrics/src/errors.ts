/** Base class of every error thrown by `@midtrain/metrics`. */
export class MetricsError extends Error {
  override name = "MetricsError";
}

/** Two inputs that must line up (losses and mask, X and Y rows, x and y) have different lengths. */
export class LengthMismatchError extends MetricsError {
  override name = "LengthMismatchError";
}

/** An input that needs at least one element (or one counted token) was empty. */
export class EmptyInputError extends MetricsError {
  override name = "EmptyInputError";
}

/** An input held NaN or ±Infinity where a finite number is required. */
export class NonFiniteError extends MetricsError {
  override name = "NonFiniteError";
}

/** An argument is out of its allowed range (negative counts, weight outside [0, 1], k < 1...). */
export class InvalidArgumentError extends MetricsError {
  override name = "InvalidArgumentError";
}

/** A quantity is mathematically undefined for these inputs (zero variance, zero-norm vectors). */
export class UndefinedMetricError extends MetricsError {
  override name = "UndefinedMetricError";
}

/** Throws {@link NonFiniteError} unless `x` is a finite number. */
export function assertFinite(x: number, what: string): void {
  if (!Number.isFinite(x)) {
    throw new NonFiniteError(`${what} must be a finite number, got ${x}; check for a diverged run or a missing value`);
  }
}

/** Throws {@link NonFiniteError} at the first non-finite entry of `xs`. */
export function assertAllFinite(xs: ArrayLike<number>, what: string): void {
  for (let i = 0; i < xs.length; i++) {
    if (!Number.isFinite(xs[i])) {
      throw new NonFiniteError(`${what}[${i}] is ${xs[i]}; every entry must be finite (check for a diverged run or masked positions holding NaN)`);
    }
  }
}

/**
 * Compensated (Neumaier) running sum: keeps float64 sums of millions of per-token losses
 * accurate to a few ulps instead of drifting with the number of terms.
 */
export class CompensatedSum {
  private sum = 0;
  private c = 0;
  add(x: number): void {
    const t = this.sum + x;
    if (Math.abs(this.sum) >= Math.abs(x)) this.c += this.sum - t + x;
    else this.c += x - t + this.sum;
    this.sum = t;
  }
  get value(): number {
    return this.sum + this.c;
  }
}
