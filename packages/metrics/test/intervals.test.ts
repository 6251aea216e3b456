import { describe, expect, it } from "vitest";
import { correlationInterval, LengthMismatchError, meanInterval, pairedDifference, verdictOf } from "../src/index.js";

describe("confidence intervals over seeds", () => {
  it("meanInterval is the Student-t interval (table values t(0.975, 4) = 2.776, t(0.975, 1) = 12.706)", () => {
    // values 1..5: mean 3, sample std sqrt(2.5), stderr sqrt(0.5).
    const i = meanInterval([1, 2, 3, 4, 5]);
    expect(i.method).toBe("t");
    expect(i.estimate).toBe(3);
    expect(i.hi! - 3).toBeCloseTo(2.7764451 * Math.sqrt(0.5), 5);
    expect(3 - i.lo!).toBeCloseTo(2.7764451 * Math.sqrt(0.5), 5);
    const two = meanInterval([1, 3]);
    expect(two.hi! - 2).toBeCloseTo(12.7062047, 4);
    const ninety = meanInterval([1, 2, 3, 4, 5], { confidence: 0.9 });
    expect(ninety.hi! - 3).toBeCloseTo(2.1318468 * Math.sqrt(0.5), 5);
  });

  it("one value has no interval and supports no verdict", () => {
    const i = meanInterval([0.4]);
    expect(i).toMatchObject({ lo: null, hi: null, method: "none", n: 1 });
    expect(verdictOf(i, 1)).toBe("inconclusive");
  });

  it("pairedDifference pairs by index, so a shared seed effect cancels", () => {
    // Arm a is 0.1 above b on every seed while seeds differ by a lot: the unpaired spread is huge, the paired one is 0.
    const b = [2.0, 2.5, 3.1, 1.7];
    const a = b.map((x, i) => x + 0.1 + (i % 2 ? 1e-3 : -1e-3));
    const d = pairedDifference(a, b);
    expect(d.estimate).toBeCloseTo(0.1, 10);
    expect(d.lo!).toBeGreaterThan(0.09);
    expect(verdictOf(d, 1)).toBe("reproduced");
    expect(verdictOf(d, -1)).toBe("contradicted");
    expect(() => pairedDifference([1, 2], [1])).toThrow(LengthMismatchError);
  });

  it("verdictOf flips with the data", () => {
    expect(verdictOf(meanInterval([0.2, 0.25, 0.22]), 1)).toBe("reproduced");
    expect(verdictOf(meanInterval([-0.2, -0.25, -0.22]), 1)).toBe("contradicted");
    expect(verdictOf(meanInterval([-0.2, 0.25, 0.02]), 1)).toBe("inconclusive");
    expect(verdictOf(meanInterval([-0.2, -0.25, -0.22]), -1)).toBe("reproduced");
  });

  it("correlationInterval uses Fisher z and needs 4 pairs for an interval", () => {
    // The bounds must equal the closed form tanh(atanh(r) ± z_{0.975}/√(n − 3)).
    const x = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10];
    const y = [2, 1, 4, 3, 7, 5, 6, 9, 10, 8];
    const i = correlationInterval(x, y);
    const z = Math.atanh(i.estimate);
    expect(i.method).toBe("fisher-z");
    expect(i.lo!).toBeCloseTo(Math.tanh(z - 1.959964 / Math.sqrt(7)), 5);
    expect(i.hi!).toBeCloseTo(Math.tanh(z + 1.959964 / Math.sqrt(7)), 5);
    expect(correlationInterval([1, 2, 3], [1, 3, 2]).lo).toBeNull();
  });
});
