import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { EmptyInputError, LengthMismatchError, NonFiniteError, UndefinedMetricError } from "../src/errors.js";
import { pearson, summarize } from "../src/stats.js";

describe("summarize", () => {
  it("hand-computed mean, sample std, stderr, min, max (tolerance 1e-12)", () => {
    const s = summarize([2, 4, 4, 4, 5, 5, 7, 9]);
    expect(s.mean).toBe(5);
    // Σ(x−5)² = 32; sample variance 32/7.
    expect(s.std).toBeCloseTo(Math.sqrt(32 / 7), 12);
    expect(s.stderr).toBeCloseTo(Math.sqrt(32 / 7) / Math.sqrt(8), 12);
    expect(s.n).toBe(8);
    expect(s.min).toBe(2);
    expect(s.max).toBe(9);
    expect(s.values).toEqual([2, 4, 4, 4, 5, 5, 7, 9]);
  });
  it("one value: std and stderr are 0", () => {
    expect(summarize([3.5])).toMatchObject({ mean: 3.5, std: 0, stderr: 0, n: 1 });
  });
  it("stable with a large common offset", () => {
    const s = summarize([1e9 + 1, 1e9 + 2, 1e9 + 3]);
    expect(s.mean).toBe(1e9 + 2);
    expect(s.std).toBeCloseTo(1, 9);
  });
  it("errors", () => {
    expect(() => summarize([])).toThrow(EmptyInputError);
    expect(() => summarize([1, Number.NaN])).toThrow(NonFiniteError);
  });
});

describe("pearson", () => {
  it("hand-computed case", () => {
    // dx = [-2,-1,0,1,2], dy = [-2,0,1,0,1]: Σdxdy = 6, Σdx² = 10, Σdy² = 6 → r = 6/√60.
    expect(pearson([1, 2, 3, 4, 5], [2, 4, 5, 4, 5])).toBeCloseTo(6 / Math.sqrt(60), 12);
    expect(pearson([1, 2, 3], [10, 20, 30])).toBeCloseTo(1, 12);
    expect(pearson([1, 2, 3], [3, 1, -1])).toBeCloseTo(-1, 12);
  });
  it("is symmetric and bounded (property test)", () => {
    const arr = fc.array(fc.double({ min: -1e3, max: 1e3, noNaN: true }), { minLength: 3, maxLength: 20 });
    fc.assert(
      fc.property(arr, arr, (a, b) => {
        const n = Math.min(a.length, b.length);
        const x = a.slice(0, n);
        const y = b.slice(0, n);
        let r: number;
        try {
          r = pearson(x, y);
        } catch (e) {
          return e instanceof UndefinedMetricError; // constant input
        }
        return r >= -1 && r <= 1 && Math.abs(r - pearson(y, x)) < 1e-12;
      }),
    );
  });
  it("errors", () => {
    expect(() => pearson([1, 2], [1])).toThrow(LengthMismatchError);
    expect(() => pearson([1], [1])).toThrow(EmptyInputError);
    expect(() => pearson([1, 1, 1], [1, 2, 3])).toThrow(/x is constant/);
  });
});
