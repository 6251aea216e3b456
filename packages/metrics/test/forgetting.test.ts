import { describe, expect, it } from "vitest";
import { InvalidArgumentError, NonFiniteError } from "../src/errors.js";
import { forgetting, relativeImprovement } from "../src/forgetting.js";

describe("forgetting", () => {
  it("positive means more forgetting; hand-computed values (tolerance 1e-12)", () => {
    const f = forgetting({ generalLossAfterSft: 5.1, baselineGeneralLossAfterSft: 5.0, generalLossBeforeSft: 4.0 });
    expect(f.vsBaseline).toBeCloseTo(0.1, 12);
    expect(f.relativeVsBaseline).toBeCloseTo(0.02, 12);
    expect(f.vsBeforeSft).toBeCloseTo(1.1, 12);
    expect(f.relativeVsBeforeSft).toBeCloseTo(0.275, 12);
  });

  it("paper example: Starcoder 20% midtraining forgets less than C4-only on PyCode", () => {
    // 410M, PyCode: C4 loss after SFT 4.611 (Starcoder 20%) vs 5.058 (C4-only).
    const f = forgetting({ generalLossAfterSft: 4.611, baselineGeneralLossAfterSft: 5.058 });
    expect(f.vsBaseline).toBeCloseTo(-0.447, 12);
    expect(f.vsBeforeSft).toBeUndefined();
    expect(f.relativeVsBeforeSft).toBeUndefined();
  });

  it("rejects non-positive or non-finite losses", () => {
    expect(() => forgetting({ generalLossAfterSft: 5, baselineGeneralLossAfterSft: 0 })).toThrow(InvalidArgumentError);
    expect(() => forgetting({ generalLossAfterSft: Number.NaN, baselineGeneralLossAfterSft: 5 })).toThrow(NonFiniteError);
  });
});

describe("relativeImprovement", () => {
  it("(L_base − L) / L_base with the paper's PyCode numbers", () => {
    // (2.264 − 2.091) / 2.264 = 0.173 / 2.264 = 0.07641342756...
    expect(relativeImprovement(2.264, 2.091)).toBeCloseTo(0.0764134275618375, 12);
    expect(relativeImprovement(2, 2.5)).toBeCloseTo(-0.25, 12); // worse than baseline → negative
    expect(relativeImprovement(3, 3)).toBe(0);
  });
  it("rejects a zero baseline", () => {
    expect(() => relativeImprovement(0, 1)).toThrow(/baselineLoss must be a positive loss/);
  });
});
