import { describe, expect, it } from "vitest";
import { hashString, permutation, Rng } from "../src/index.js";

describe("Rng (sfc32)", () => {
  it("matches an independent sfc32 reference from state [1,2,3,4]", () => {
    // Reference values computed with a separate Python implementation of sfc32.
    const r = Rng.fromState([1, 2, 3, 4]);
    expect([r.nextUint32(), r.nextUint32(), r.nextUint32(), r.nextUint32(), r.nextUint32()]).toEqual([7, 34, 56623200, 188882296, 3431242869]);
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

  it("draws what the data mixer has always drawn (values recorded before the generators were merged)", () => {
    const draw = (r: Rng, n: number) => Array.from({ length: n }, () => r.nextUint32());
    expect(draw(new Rng(42), 4)).toEqual([1028872839, 2516511472, 400437680, 853279530]);
    expect(draw(new Rng(42, "mixer"), 4)).toEqual([1897358887, 2276818938, 910688067, 2719706392]);
    expect(draw(new Rng(7, "order", "code", 3), 4)).toEqual([289134692, 3299874410, 1616342716, 552653204]);
    expect(draw(new Rng(2 ** 40 + 5), 3)).toEqual([167027725, 2952839764, 3361370212]);
    expect(new Rng(-3).getState()).toEqual([3380564016, 1270183900, 3573216851, 4126767558]);
    const s = new Rng("seed");
    expect([s.nextFloat(), s.nextFloat(), s.nextFloat()]).toEqual([0.2700233060513929, 0.9945595249110588, 0.5502073312905802]);
    const r = new Rng(9);
    expect(Array.from({ length: 6 }, () => r.nextInt(1000))).toEqual([216, 455, 672, 558, 581, 201]);
    expect(Array.from(permutation(12, new Rng(1)))).toEqual([0, 1, 4, 7, 5, 9, 10, 3, 6, 2, 8, 11]);
  });

  it("gives each model parameter the stream its initial weights have always come from", () => {
    const r = Rng.forParameter(1234, "gpt_neox.layers.0.attention.dense.weight");
    expect(Array.from({ length: 6 }, () => r.nextUint32())).toEqual([419622248, 4008068377, 3089024261, 4078069509, 560713067, 2370712417]);
    const e = Rng.forParameter(0, "");
    expect(Array.from({ length: 4 }, () => e.nextUint32())).toEqual([4060171630, 4183280616, 3965778086, 3481510486]);
    // Float32 values recorded from the model's generator before the merge: bit-equal, not close.
    const normals = Rng.forParameter(0xffffffff, "embed_in.weight").fillNormal(new Float32Array(5), 0.02);
    expect(Array.from(normals)).toEqual([-0.008507052436470985, -0.008037930354475975, 0.01509779877960682, 0.0036653249990195036, -0.002920484635978937]);
    expect(Array.from({ length: 4 }, () => Rng.forParameter(5, "a").nextUint32())).toEqual(
      Array.from({ length: 4 }, () => Rng.forParameter(5, "a").nextUint32()),
    );
    expect(Rng.forParameter(5, "a").nextUint32()).not.toBe(Rng.forParameter(5, "b").nextUint32());
  });

  it("hashString is 32-bit FNV-1a", () => {
    // Published FNV-1a test vectors: "" → offset basis, "a" → 0xe40c292c, "foobar" → 0xbf9cf968.
    expect([hashString(""), hashString("a"), hashString("foobar")]).toEqual([0x811c9dc5, 0xe40c292c, 0xbf9cf968]);
    expect(hashString("abc")).toBe(440920331);
  });

  it("uniform never returns 0 or 1", () => {
    const r = Rng.fromState([0, 0, 0, 0]);
    for (let i = 0; i < 1000; i++) {
      const u = r.uniform();
      expect(u > 0 && u < 1).toBe(true);
    }
  });

  it("rejects malformed state", () => {
    const r = new Rng(1);
    expect(() => r.setState([1, 2, 3] as never)).toThrow(/four uint32/);
    expect(() => r.setState([1, 2, 3, -1])).toThrow(/four uint32/);
  });
});
