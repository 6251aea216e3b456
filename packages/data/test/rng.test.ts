import { describe, expect, it } from "vitest";
import { permutation, Rng } from "../src/index.js";

describe("Rng (sfc32)", () => {
  it("matches an independent sfc32 reference from state [1,2,3,4]", () => {
    // Reference values computed with a separate Python implementation of sfc32.
    const r = Rng.fromState([1, 2, 3, 4]);
    expect([r.nextUint32(), r.nextUint32(), r.nextUint32(), r.nextUint32(), r.nextUint32()]).toEqual([
      7, 34, 56623200, 188882296, 3431242869,
    ]);
  });

  it("is deterministic per seed and differs across seeds and stream names", () => {
    const a = new Rng(42);
    const b = new Rng(42);
    const c = new Rng(43);
    const d = new Rng(42, "other");
    const xa = Array.from({ length: 8 }, () => a.nextUint32());
    expect(Array.from({ length: 8 }, () => b.nextUint32())).toEqual(xa);
    expect(Array.from({ length: 8 }, () => c.nextUint32())).not.toEqual(xa);
    expect(Array.from({ length: 8 }, () => d.nextUint32())).not.toEqual(xa);
  });

  it("resumes exactly from a JSON round trip of its state", () => {
    const r = new Rng("seed");
    for (let i = 0; i < 100; i++) r.nextFloat();
    const s = JSON.parse(JSON.stringify(r.getState()));
    const expected = Array.from({ length: 50 }, () => r.nextFloat());
    const q = Rng.fromState(s);
    expect(Array.from({ length: 50 }, () => q.nextFloat())).toEqual(expected);
  });

  it("nextFloat lies in [0,1) with mean 1/2 and nextInt is uniform (chi-square)", () => {
    const r = new Rng(7);
    let sum = 0;
    let outside = 0;
    const n = 100_000;
    for (let i = 0; i < n; i++) {
      const x = r.nextFloat();
      if (!(x >= 0 && x < 1)) outside++;
      sum += x;
    }
    expect(outside).toBe(0);
    // sd of the mean of U(0,1) is sqrt(1/12/n) ≈ 0.00091; allow 5 sd.
    expect(Math.abs(sum / n - 0.5)).toBeLessThan(5 * Math.sqrt(1 / 12 / n));
    const k = 10;
    const counts = new Array(k).fill(0);
    for (let i = 0; i < n; i++) counts[r.nextInt(k)]++;
    const e = n / k;
    const chi2 = counts.reduce((s, c) => s + ((c - e) * (c - e)) / e, 0);
    // 9 degrees of freedom: P(chi2 > 33.7) ≈ 1e-4.
    expect(chi2).toBeLessThan(33.7);
  });

  it("permutation returns each index exactly once", () => {
    const p = permutation(1000, new Rng(1));
    expect(Array.from(p).sort((a, b) => a - b)).toEqual(Array.from({ length: 1000 }, (_, i) => i));
    expect(Array.from(p.subarray(0, 20))).not.toEqual(Array.from({ length: 20 }, (_, i) => i));
  });

  it("rejects malformed state", () => {
    const r = new Rng(1);
    expect(() => r.setState([1, 2, 3] as never)).toThrow(/four uint32/);
    expect(() => r.setState([1, 2, 3, -1])).toThrow(/four uint32/);
  });
});
