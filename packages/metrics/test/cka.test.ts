import { Rng } from "@midtrain/common";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { ckaPerLayer, linearCka } from "../src/cka.js";
import { LengthMismatchError, NonFiniteError, UndefinedMetricError } from "../src/errors.js";

/** Seeded uniform numbers in [-0.5, 0.5), from the project's generator. */
function rng(seed: number): () => number {
  const r = new Rng(seed);
  return () => r.nextFloat() - 0.5;
}
const randn = (r: () => number, n: number, p: number) => Array.from({ length: n }, () => Array.from({ length: p }, r));
const matmul = (a: number[][], b: number[][]) => a.map((row) => b[0].map((_, j) => row.reduce((s, v, k) => s + v * b[k][j], 0)));
const transpose = (a: number[][]) => a[0].map((_, j) => a.map((row) => row[j]));

/** Random orthogonal p×p matrix by Gram–Schmidt. */
function orthogonal(r: () => number, p: number): number[][] {
  const q: number[][] = [];
  while (q.length < p) {
    let v = Array.from({ length: p }, r);
    for (const u of q) {
      const d = v.reduce((s, x, i) => s + x * u[i], 0);
      v = v.map((x, i) => x - d * u[i]);
    }
    const norm = Math.hypot(...v);
    q.push(v.map((x) => x / norm));
  }
  return q;
}

/**
 * Independent reference: HSIC form with an explicit centering matrix H = I − 11ᵀ/n on the
 * uncentered data, CKA = tr(KHLH) / sqrt(tr(KHKH)·tr(LHLH)), K = XXᵀ, L = YYᵀ.
 */
function ckaReference(x: number[][], y: number[][]): number {
  const n = x.length;
  const H = Array.from({ length: n }, (_, i) => Array.from({ length: n }, (_, j) => (i === j ? 1 : 0) - 1 / n));
  const K = matmul(matmul(H, matmul(x, transpose(x))), H);
  const L = matmul(matmul(H, matmul(y, transpose(y))), H);
  const tr = (a: number[][], b: number[][]) => a.reduce((s, row, i) => s + row.reduce((t, v, j) => t + v * b[j][i], 0), 0);
  return tr(K, L) / Math.sqrt(tr(K, K) * tr(L, L));
}

const methods = ["features", "gram", "auto"] as const;

describe("linear CKA", () => {
  it.each(methods)("hand-computed case (%s): X vs X·diag(1,2) = 20/√544", (method) => {
    // X is already centered; XᵀX = diag(2,2), Y = X·diag(1,2): YᵀX = diag(2,4), YᵀY = diag(2,8).
    // CKA = (4+16) / (√8 · √68) = 20/√544 = 0.857492925712544
    const X = [
      [1, 0],
      [-1, 0],
      [0, 1],
      [0, -1],
    ];
    const Y = X.map(([a, b]) => [a, 2 * b]);
    expect(linearCka(X, Y, { method })).toBeCloseTo(20 / Math.sqrt(544), 12);
    expect(20 / Math.sqrt(544)).toBeCloseTo(0.857492925712544, 12);
  });

  it.each(methods)("CKA(X, X) = 1 and matches the HSIC reference (%s, tolerance 1e-10)", (method) => {
    const r = rng(1);
    const X = randn(r, 12, 5);
    const Y = randn(r, 12, 3);
    expect(linearCka(X, X, { method })).toBeCloseTo(1, 12);
    expect(linearCka(X, Y, { method })).toBeCloseTo(ckaReference(X, Y), 10);
  });

  it("invariant to orthogonal transforms, isotropic scaling and column offsets", () => {
    const r = rng(2);
    const X = randn(r, 15, 4);
    const Y = randn(r, 15, 6);
    const base = linearCka(X, Y);
    const XQ = matmul(X, orthogonal(r, 4));
    const Ys = Y.map((row) => row.map((v, j) => 7.5 * v + j * 3)); // scale + per-column shift
    expect(linearCka(XQ, Ys)).toBeCloseTo(base, 10);
    expect(linearCka(XQ, X)).toBeCloseTo(1, 10);
  });

  it("NOT invariant to a general invertible linear map", () => {
    const r = rng(3);
    const X = randn(r, 20, 3);
    const Y = randn(r, 20, 3);
    const A = [
      [1, 0, 0],
      [4, 1, 0],
      [0, 0, 0.05],
    ]; // det = 0.05 ≠ 0: invertible, but not orthogonal·scalar
    const XA = matmul(X, A);
    expect(linearCka(X, XA)).toBeLessThan(0.95);
    expect(Math.abs(linearCka(XA, Y) - linearCka(X, Y))).toBeGreaterThan(1e-3);
  });

  it("property: symmetric and in [0, 1]; flat Float32Array input agrees", () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 1e6 }), fc.integer({ min: 2, max: 10 }), (seed, n) => {
        const r = rng(seed);
        const X = randn(r, n, 3);
        const Y = randn(r, n, 2);
        const c = linearCka(X, Y);
        return c >= 0 && c <= 1 && Math.abs(c - linearCka(Y, X)) < 1e-12;
      }),
    );
    const r = rng(4);
    const X = randn(r, 6, 3);
    const Y = randn(r, 6, 4);
    const flat = { data: new Float32Array(X.flat()), rows: 6, cols: 3 };
    const Xf = X.map((row) => row.map((v) => Math.fround(v)));
    expect(linearCka(flat, Y)).toBeCloseTo(linearCka(Xf, Y), 12);
  });

  it("per-layer helper", () => {
    const r = rng(5);
    const a = randn(r, 8, 3);
    const b = randn(r, 8, 3);
    const out = ckaPerLayer([a, b], [a, a]);
    expect(out[0]).toBeCloseTo(1, 12);
    expect(out[1]).toBeCloseTo(linearCka(b, a), 12);
    expect(() => ckaPerLayer([a], [a, b])).toThrow(LengthMismatchError);
    expect(() => ckaPerLayer([a, b], [a, randn(r, 7, 3)])).toThrow(/layer 1: X has 8 rows but Y has 7/);
  });

  it("errors", () => {
    expect(() => linearCka([[1], [2]], [[1], [2], [3]])).toThrow(LengthMismatchError);
    expect(() => linearCka([[1], [1]], [[1], [2]])).toThrow(UndefinedMetricError);
    expect(() => linearCka([[1], [Number.NaN]], [[1], [2]])).toThrow(NonFiniteError);
    expect(() => linearCka({ data: [1, 2, 3], rows: 2, cols: 2 }, [[1], [2]])).toThrow(/rows·cols/);
    expect(() => linearCka([[1, 2], [3]], [[1], [2]])).toThrow(/row 1 has 1 columns/);
  });
});
