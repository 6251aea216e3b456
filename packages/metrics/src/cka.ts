import { EmptyInputError, InvalidArgumentError, LengthMismatchError, NonFiniteError, UndefinedMetricError } from "./errors.js";

/**
 * A dense matrix of n rows (examples / token positions) by p columns (features / hidden units):
 * either an array of rows, or a row-major flat buffer with its shape (e.g. the `Float32Array`
 * from `await tensor.data()` with `tensor.shape`).
 */
export type Matrix = ArrayLike<number>[] | { data: ArrayLike<number>; rows: number; cols: number };

export interface CkaOptions {
  /**
   * How to compute the Frobenius norms: in feature space (p×p products, cost ≈ n·p²) or in
   * sample space (n×n Gram matrices, cost ≈ n²·p). `auto` (default) picks the cheaper one.
   * Both give the same value up to rounding.
   */
  method?: "auto" | "features" | "gram";
}

interface Dense {
  data: Float64Array;
  rows: number;
  cols: number;
}

function toDense(m: Matrix, what: string): Dense {
  if (Array.isArray(m)) {
    const rows = m.length;
    if (rows === 0) throw new EmptyInputError(`${what} has no rows`);
    const cols = m[0].length;
    const data = new Float64Array(rows * cols);
    for (let i = 0; i < rows; i++) {
      if (m[i].length !== cols) {
        throw new LengthMismatchError(`${what} row ${i} has ${m[i].length} columns but row 0 has ${cols}; rows must be equal length`);
      }
      for (let j = 0; j < cols; j++) data[i * cols + j] = m[i][j];
    }
    return { data, rows, cols };
  }
  const { rows, cols } = m as { rows: number; cols: number };
  const src = (m as { data: ArrayLike<number> }).data;
  if (!Number.isInteger(rows) || !Number.isInteger(cols) || rows < 0 || cols < 0) {
    throw new InvalidArgumentError(`${what} shape must be non-negative integers, got ${rows}×${cols}`);
  }
  if (src.length !== rows * cols) {
    throw new LengthMismatchError(`${what}.data has ${src.length} entries but rows·cols = ${rows}·${cols} = ${rows * cols}`);
  }
  return { data: Float64Array.from(src), rows, cols };
}

function toCenteredDense(m: Matrix, what: string): Dense {
  const d = toDense(m, what);
  const { data, rows, cols } = d;
  if (rows === 0 || cols === 0) throw new EmptyInputError(`${what} is empty (${rows}×${cols}); it needs rows and columns`);
  for (let i = 0; i < data.length; i++) {
    if (!Number.isFinite(data[i])) {
      throw new NonFiniteError(`${what}[${Math.floor(i / cols)}][${i % cols}] is ${data[i]}; activations must be finite`);
    }
  }
  for (let j = 0; j < cols; j++) {
    let mean = 0;
    for (let i = 0; i < rows; i++) mean += data[i * cols + j];
    mean /= rows;
    for (let i = 0; i < rows; i++) data[i * cols + j] -= mean;
  }
  return d;
}

/** Sum of squares of AᵀB (A: n×p, B: n×q), i.e. ‖AᵀB‖_F², without storing AᵀB. */
function crossFrobSq(a: Dense, b: Dense): number {
  const n = a.rows;
  const row = new Float64Array(b.cols);
  let total = 0;
  for (let j = 0; j < a.cols; j++) {
    row.fill(0);
    for (let i = 0; i < n; i++) {
      const aij = a.data[i * a.cols + j];
      if (aij === 0) continue;
      const off = i * b.cols;
      for (let k = 0; k < b.cols; k++) row[k] += aij * b.data[off + k];
    }
    for (let k = 0; k < b.cols; k++) total += row[k] * row[k];
  }
  return total;
}

/** Gram matrix AAᵀ (n×n). */
function gram(a: Dense): Float64Array {
  const n = a.rows;
  const p = a.cols;
  const g = new Float64Array(n * n);
  for (let i = 0; i < n; i++) {
    for (let k = i; k < n; k++) {
      let s = 0;
      for (let j = 0; j < p; j++) s += a.data[i * p + j] * a.data[k * p + j];
      g[i * n + k] = s;
      g[k * n + i] = s;
    }
  }
  return g;
}

function dotAll(a: Float64Array, b: Float64Array): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i] * b[i];
  return s;
}

/**
 * Linear CKA (Kornblith et al., 2019) between representations X [n, p1] and Y [n, p2] of the
 * same n inputs: columns are centered, then
 * `CKA = ‖YᵀX‖_F² / (‖XᵀX‖_F · ‖YᵀY‖_F)`, in [0, 1].
 * Invariant to orthogonal transforms and isotropic scaling of either side, not to general
 * invertible linear maps. Throws when the row counts differ or a side has zero variance.
 */
export function linearCka(x: Matrix, y: Matrix, options: CkaOptions = {}): number {
  const X = toCenteredDense(x, "X");
  const Y = toCenteredDense(y, "Y");
  if (X.rows !== Y.rows) {
    throw new LengthMismatchError(`X has ${X.rows} rows but Y has ${Y.rows}; CKA compares representations of the same inputs, one row per input in both`);
  }
  if (X.rows < 2) throw new EmptyInputError("linear CKA needs at least 2 rows (inputs) to center the columns");
  const n = X.rows;
  const method = options.method ?? "auto";
  const featureCost = X.cols * X.cols + Y.cols * Y.cols + X.cols * Y.cols;
  const gramCost = n * (X.cols + Y.cols);
  const useGram = method === "gram" || (method === "auto" && gramCost < featureCost);
  let cross: number;
  let xx: number;
  let yy: number;
  if (useGram) {
    const kx = gram(X);
    const ky = gram(Y);
    // With centered columns: ‖YᵀX‖_F² = tr(XXᵀ YYᵀ) = <Kx, Ky>_F and ‖XᵀX‖_F = ‖XXᵀ‖_F.
    cross = dotAll(kx, ky);
    xx = Math.sqrt(dotAll(kx, kx));
    yy = Math.sqrt(dotAll(ky, ky));
  } else {
    cross = crossFrobSq(Y, X);
    xx = Math.sqrt(crossFrobSq(X, X));
    yy = Math.sqrt(crossFrobSq(Y, Y));
  }
  if (xx === 0 || yy === 0) {
    throw new UndefinedMetricError(`linear CKA is undefined: ${xx === 0 ? "X" : "Y"} has zero variance (every row is the same after centering)`);
  }
  return Math.min(1, Math.max(0, cross / (xx * yy)));
}

/**
 * Linear CKA layer by layer between two models' hidden states on the same inputs
 * (e.g. before vs after SFT): `result[l] = linearCka(xs[l], ys[l])`.
 */
export function ckaPerLayer(xs: readonly Matrix[], ys: readonly Matrix[], options: CkaOptions = {}): number[] {
  if (xs.length !== ys.length) {
    throw new LengthMismatchError(`xs has ${xs.length} layers but ys has ${ys.length}; pass one matrix per layer for both models`);
  }
  if (xs.length === 0) throw new EmptyInputError("ckaPerLayer() got no layers");
  return xs.map((x, l) => {
    try {
      return linearCka(x, ys[l], options);
    } catch (e) {
      if (e instanceof Error) e.message = `layer ${l}: ${e.message}`;
      throw e;
    }
  });
}
