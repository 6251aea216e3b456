import { buildLrSchedule, type ScheduleConfig, trainingTime } from "@midtrain/schedulers";
import { describe, expect, it } from "vitest";
import { at } from "./helpers.js";

const lr = (config: ScheduleConfig) => buildLrSchedule(config);

describe("the study's schedule (10% linear warmup, cosine 3e-4 → 1e-6 over 61,035 steps)", () => {
  const study = lr({ type: "cosine", peak: 3e-4, min: 1e-6, warmup: { fraction: 0.1 }, total: 61035 });
  // Independent reference, written from the formula: warmup 6103.5 steps, then
  // min + (peak - min) * (1 + cos(pi * (s - w) / (T - w))) / 2.
  const reference = (s: number) => {
    const w = 0.1 * 61035;
    if (s < w) return (3e-4 * s) / w;
    return 1e-6 + (3e-4 - 1e-6) * 0.5 * (1 + Math.cos((Math.PI * (s - w)) / (61035 - w)));
  };

  it("gives ≈9.7e-5 at step 40,000 and ≈2.55e-4 at step 20,000", () => {
    // Tolerance: half a unit of the last digit the paper prints.
    expect(Math.abs(study.at(at(40000)) - 9.7e-5)).toBeLessThanOrEqual(0.05e-5);
    expect(Math.abs(study.at(at(20000)) - 2.55e-4)).toBeLessThanOrEqual(0.005e-4);
  });

  it("matches every branch point the paper lists (half a unit of the last printed digit)", () => {
    const points: [number, number, number][] = [
      [6000, 2.95e-4, 0.005e-4],
      [20000, 2.55e-4, 0.005e-4],
      [30000, 1.81e-4, 0.005e-4],
      [40000, 9.7e-5, 0.05e-5],
      [50000, 3.0e-5, 0.05e-5],
      [56000, 7e-6, 0.5e-6],
    ];
    for (const [step, value, tol] of points) expect(Math.abs(study.at(at(step)) - value)).toBeLessThanOrEqual(tol);
  });

  it("equals the closed-form reference to 1e-12 relative everywhere", () => {
    for (let s = 0; s <= 61035; s += 997) {
      expect(Math.abs(study.at(at(s)) - reference(s))).toBeLessThanOrEqual(1e-12 * 3e-4);
    }
    expect(study.at(at(61035))).toBe(1e-6);
    expect(study.at(at(70000))).toBe(1e-6);
  });

  it("takes the run length from the training time when the config has no total", () => {
    const derived = lr({ type: "cosine", peak: 3e-4, min: 1e-6, warmup: { fraction: 0.1 } });
    for (const s of [0, 3000, 6103, 20000, 40000, 61035]) {
      expect(derived.at(at(s, { totalSteps: 61035 }))).toBe(study.at(at(s)));
    }
  });

  it("counts tokens instead of steps when unit is 'tokens'", () => {
    const perStep = 1024 * 2048;
    const byTokens = lr({
      type: "cosine",
      unit: "tokens",
      peak: 3e-4,
      min: 1e-6,
      warmup: { fraction: 0.1 },
      total: 61035 * perStep,
    });
    for (const s of [1000, 20000, 40000]) {
      const t = trainingTime({ step: s, tokensPerStep: perStep });
      expect(byTokens.at(t)).toBeCloseTo(study.at(at(s)), 15);
    }
  });
});

describe("hand-computed values of each type", () => {
  it("constant, with and without warmup", () => {
    expect(lr({ type: "constant", value: 0.01 }).at(at(12345))).toBe(0.01);
    const w = lr({ type: "constant", value: 1, warmup: 10, warmupFrom: 0.5 });
    expect(w.at(at(0))).toBe(0.5);
    expect(w.at(at(4))).toBeCloseTo(0.7, 15);
    expect(w.at(at(10))).toBe(1);
  });

  it("linear: warmup 10, decay 1 → 0.1 by step 110", () => {
    const s = lr({ type: "linear", peak: 1, min: 0.1, warmup: 10, total: 110 });
    expect(s.at(at(5))).toBeCloseTo(0.5, 15);
    expect(s.at(at(10))).toBe(1);
    expect(s.at(at(60))).toBeCloseTo(0.55, 15); // 1 - 0.9 * 0.5
    expect(s.at(at(110))).toBe(0.1);
    expect(s.at(at(500))).toBe(0.1);
  });

  it("polynomial power 2 at mid-decay: 0.1 + 0.9 * 0.5^2", () => {
    const s = lr({ type: "polynomial", peak: 1, min: 0.1, warmup: 10, total: 110, power: 2 });
    expect(s.at(at(60))).toBeCloseTo(0.325, 15);
    expect(s.at(at(85))).toBeCloseTo(0.1 + 0.9 * 0.25 ** 2, 15);
  });

  describe("wsd (warmup 10, stable, decay over the last 20 of 100, peak 1, min 0.01)", () => {
    const base = { type: "wsd", peak: 1, min: 0.01, warmup: 10, decay: 20, total: 100 };
    const cases: [string, number][] = [
      ["linear", 0.01 + 0.99 * 0.75],
      ["cosine", 0.01 + 0.99 * 0.5 * (1 + Math.cos(Math.PI / 4))],
      ["1-sqrt", 0.01 + 0.99 * 0.5],
      ["exponential", 0.01 ** 0.25],
    ];
    for (const [shape, expected] of cases) {
      it(`${shape}: a quarter into the decay (step 85) is ${expected.toFixed(6)}`, () => {
        const s = lr({ ...base, shape });
        expect(s.at(at(5))).toBeCloseTo(0.5, 15);
        expect(s.at(at(50))).toBe(1);
        expect(s.at(at(80))).toBeCloseTo(1, 15);
        expect(s.at(at(85))).toBeCloseTo(expected, 12);
        expect(s.at(at(100))).toBe(0.01);
      });
    }
    it("with min = peak every shape stays at peak (no 0/0 in the exponential shape)", () => {
      for (const [shape] of cases) expect(lr({ ...base, min: 1, shape }).at(at(90))).toBe(1);
    });
    it("takes the decay length as a fraction of the run", () => {
      const frac = lr({ ...base, decay: { fraction: 0.2 }, shape: "cosine" });
      const abs = lr({ ...base, shape: "cosine" });
      for (const s of [0, 30, 79, 81, 90, 99, 100]) expect(frac.at(at(s))).toBeCloseTo(abs.at(at(s)), 15);
    });
  });

  it("inverse-sqrt: peak * sqrt(warmup / step) after warmup; timescale without warmup", () => {
    const s = lr({ type: "inverse-sqrt", peak: 1, warmup: 100 });
    expect(s.at(at(50))).toBeCloseTo(0.5, 15);
    expect(s.at(at(100))).toBe(1);
    expect(s.at(at(400))).toBeCloseTo(0.5, 15);
    const t = lr({ type: "inverse-sqrt", peak: 1, timescale: 10 });
    expect(t.at(at(0))).toBe(1);
    expect(t.at(at(30))).toBeCloseTo(0.5, 15); // sqrt(10 / 40)
  });

  it("step: multiplies by gamma every `every` steps", () => {
    const s = lr({ type: "step", initial: 1, gamma: 0.5, every: 10 });
    expect(s.at(at(9.99))).toBe(1);
    expect(s.at(at(10))).toBe(0.5);
    expect(s.at(at(25))).toBe(0.25);
  });

  it("multistep: multiplies by gamma at each milestone", () => {
    const s = lr({ type: "multistep", initial: 1, gamma: 0.1, milestones: [10, { fraction: 0.3 }], total: 100 });
    expect(s.at(at(5))).toBe(1);
    expect(s.at(at(10))).toBeCloseTo(0.1, 15);
    expect(s.at(at(29))).toBeCloseTo(0.1, 15);
    expect(s.at(at(30))).toBeCloseTo(0.01, 15);
  });

  it("sequential: each part sees its own time and length", () => {
    const s = lr({
      type: "sequential",
      total: 110,
      parts: [
        { length: 10, schedule: { type: "constant", value: 1, warmup: 10 } },
        // The cosine's run length is the part's: 110 - 10 = 100.
        { schedule: { type: "cosine", peak: 1, min: 0 } },
      ],
    });
    expect(s.at(at(5))).toBeCloseTo(0.5, 15);
    expect(s.at(at(10))).toBe(1);
    expect(s.at(at(60))).toBeCloseTo(0.5, 15); // cos at its own step 50 of 100
    expect(s.at(at(110))).toBe(0);
  });

  it("sequential takes fractional lengths and the total from the training time", () => {
    const s = lr({
      type: "sequential",
      parts: [{ length: { fraction: 0.5 }, schedule: { type: "constant", value: 2 } }, { schedule: { type: "linear", peak: 2, min: 0 } }],
    });
    expect(s.at(at(49, { totalSteps: 100 }))).toBe(2);
    expect(s.at(at(75, { totalSteps: 100 }))).toBeCloseTo(1, 15);
  });

  it("multiply and scale", () => {
    const m = lr({
      type: "multiply",
      scale: 2,
      schedules: [
        { type: "constant", value: 0.5 },
        { type: "step", initial: 1, gamma: 0.5, every: 10 },
      ],
    });
    expect(m.at(at(15))).toBeCloseTo(2 * 0.5 * 0.5, 15);
    const sc = lr({ type: "scale", factor: 0.1, schedule: { type: "linear", peak: 1, total: 100 } });
    expect(sc.at(at(50))).toBeCloseTo(0.05, 15);
  });

  it("phase-steps: an SFT schedule restarts with each phase", () => {
    const s = lr({ type: "cosine", unit: "phase-steps", peak: 1, min: 0, warmup: { fraction: 0.1 } });
    // Phase of 100 steps that starts at global step 5000; its step 55 is halfway through the decay.
    const t = trainingTime({ step: 5055, phaseStart: 5000, phaseSteps: 100, phase: "sft" });
    expect(s.at(t)).toBeCloseTo(0.5, 15);
    expect(s.at(trainingTime({ step: 5005, phaseStart: 5000, phaseSteps: 100 }))).toBeCloseTo(0.5, 15);
  });

  it("the built config is a frozen copy that serializes to the input", () => {
    const cfg = { type: "cosine", peak: 1, total: 10 };
    const s = lr(cfg);
    expect(JSON.parse(JSON.stringify(s.config))).toEqual(cfg);
    expect(Object.isFrozen(s.config)).toBe(true);
    cfg.peak = 2;
    expect(s.at(at(0))).toBe(1); // still peak 1, not the mutated 2
    expect(s.at(at(5))).toBeCloseTo(0.5, 15);
  });
});
