import { buildMixtureSchedule, ScheduleStateError, trainingTime } from "@midtrain/schedulers";
import { describe, expect, it } from "vitest";
import { at } from "./helpers.js";

const sources = ["general", "code"];

describe("midtraining switch: general only until k, then (1 - w, w)", () => {
  const forms: [string, unknown, (s: number) => ReturnType<typeof trainingTime>][] = [
    ["a step", { step: 20000 }, (s) => trainingTime({ step: s })],
    ["a plain number in the schedule's unit", 20000, (s) => trainingTime({ step: s })],
    ["a token count", { tokens: 20000 * 2048 }, (s) => trainingTime({ step: s, tokensPerStep: 2048 })],
    ["a fraction of the run", { fraction: 0.25 }, (s) => trainingTime({ step: s, totalSteps: 80000 })],
  ];
  for (const [name, start, time] of forms) {
    it(`switches at k given as ${name}`, () => {
      const m = buildMixtureSchedule({ type: "midtraining", general: "general", specialized: "code", weight: 0.2, start });
      expect(m.sources).toEqual(sources);
      expect(m.at(time(0))).toEqual({ general: 1, code: 0 });
      expect(m.at(time(19999))).toEqual({ general: 1, code: 0 });
      expect(m.at(time(20000))).toEqual({ general: 0.8, code: 0.2 });
      expect(m.at(time(61035))).toEqual({ general: 0.8, code: 0.2 });
    });
  }
  it("weight 1 is continued pretraining (no general data after k)", () => {
    const m = buildMixtureSchedule({ type: "midtraining", general: "general", specialized: "code", weight: 1, start: 10 });
    expect(m.at(at(10))).toEqual({ general: 0, code: 1 });
  });
});

describe("hand-computed values of each mixture type", () => {
  it("static, with normalize dividing by the sum", () => {
    const m = buildMixtureSchedule({ type: "static", weights: { a: 3, b: 1 }, normalize: true });
    expect(m.at(at(7))).toEqual({ a: 0.75, b: 0.25 });
  });

  it("returns a weight for every declared source (0 for unmentioned ones), in declared order", () => {
    const m = buildMixtureSchedule({ type: "static", weights: { code: 1 } }, { sources: ["general", "code", "math"] });
    expect(m.sources).toEqual(["general", "code", "math"]);
    expect(Object.keys(m.at(at(0)))).toEqual(["general", "code", "math"]);
    expect(m.at(at(0))).toEqual({ general: 0, code: 1, math: 0 });
  });

  it("switch", () => {
    const m = buildMixtureSchedule({ type: "switch", before: { a: 1 }, after: { a: 0.5, b: 0.5 }, at: 100 });
    expect(m.at(at(99))).toEqual({ a: 1, b: 0 });
    expect(m.at(at(100))).toEqual({ a: 0.5, b: 0.5 });
  });

  it("ramp: linear and cosine interpolation between two mixtures", () => {
    const base = { type: "ramp", from: { a: 1 }, to: { a: 0.2, b: 0.8 }, start: 100, end: 200 };
    const lin = buildMixtureSchedule(base);
    expect(lin.at(at(50))).toEqual({ a: 1, b: 0 });
    const mid = lin.at(at(125)); // q = 0.25: a = 0.75 * 1 + 0.25 * 0.2, b = 0.25 * 0.8
    expect(mid.a).toBeCloseTo(0.8, 15);
    expect(mid.b).toBeCloseTo(0.2, 15);
    expect(lin.at(at(200))).toEqual({ a: 0.2, b: 0.8 });
    const cos = buildMixtureSchedule({ ...base, shape: "cosine" });
    const q = 0.5 * (1 - Math.cos(Math.PI * 0.25));
    expect(cos.at(at(125)).b).toBeCloseTo(0.8 * q, 15);
    expect(cos.at(at(150)).b).toBeCloseTo(0.4, 15);
  });

  it("stages: piecewise weights with until points", () => {
    const m = buildMixtureSchedule({
      type: "stages",
      total: 1000,
      stages: [{ weights: { general: 1 }, until: 300 }, { weights: { general: 0.8, code: 0.2 }, until: { fraction: 0.8 } }, { weights: { code: 1 } }],
    });
    expect(m.at(at(299))).toEqual({ general: 1, code: 0 });
    expect(m.at(at(300))).toEqual({ general: 0.8, code: 0.2 });
    expect(m.at(at(799))).toEqual({ general: 0.8, code: 0.2 });
    expect(m.at(at(800))).toEqual({ general: 0, code: 1 });
  });

  it("curriculum: moves weight from one source to others across the phase", () => {
    const m = buildMixtureSchedule({ type: "curriculum", from: "general", to: ["code", "math"] });
    const t = trainingTime({ step: 1250, phaseStart: 1000, phaseSteps: 1000 });
    expect(t.phaseFraction).toBe(0.25);
    const w = m.at(t);
    expect(w.general).toBeCloseTo(0.75, 15);
    expect(w.code).toBeCloseTo(0.125, 15);
    expect(w.math).toBeCloseTo(0.125, 15);
    const windowed = buildMixtureSchedule({ type: "curriculum", from: "general", to: { code: 1 }, start: 100, end: 300 });
    expect(windowed.at(at(50))).toEqual({ general: 1, code: 0 });
    expect(windowed.at(at(150)).code).toBeCloseTo(0.25, 15);
    expect(windowed.at(at(400))).toEqual({ general: 0, code: 1 });
  });
});

describe("doremi (stateful, feedback-driven)", () => {
  const config = { type: "doremi", initial: { general: 0.5, code: 0.5 }, stepSize: 1, smoothing: 0 };

  it("declares state and starts at its initial weights", () => {
    const m = buildMixtureSchedule(config);
    expect(m.stateful).toBe(true);
    expect(m.at(at(0))).toEqual({ general: 0.5, code: 0.5 });
  });

  it("raises the weight of the source with the larger excess loss: e^2 / (e^2 + e^1)", () => {
    const m = buildMixtureSchedule(config);
    m.update!({ time: at(1), lossBySource: { general: 1, code: 2 } });
    const expected = Math.exp(2) / (Math.exp(2) + Math.exp(1));
    expect(m.at(at(1)).code).toBeCloseTo(expected, 14);
    // A reference loss removes the excess: code's 2 - 2 = 0, general's 1 - 0 = 1.
    const r = buildMixtureSchedule({ ...config, referenceLoss: { code: 2 } });
    r.update!({ time: at(1), lossBySource: { general: 1, code: 2 } });
    expect(r.at(at(1)).general).toBeCloseTo(expected, 14);
  });

  it("mixes in the uniform distribution with the smoothing share", () => {
    const m = buildMixtureSchedule({ ...config, smoothing: 0.1 });
    m.update!({ time: at(1), lossBySource: { general: 0, code: 50 } });
    // code's raw weight is ~1, so 0.9 * 1 + 0.1 / 2.
    expect(m.at(at(1)).code).toBeCloseTo(0.95, 12);
    expect(m.at(at(1)).general).toBeCloseTo(0.05, 12);
  });

  it("a checkpointed state (through JSON) restores the exact weights and future updates", () => {
    const a = buildMixtureSchedule({ ...config, stepSize: 0.3, smoothing: 0.01 });
    const losses = [
      [2.1, 3.4],
      [2.0, 3.1],
      [1.9, 2.2],
      [1.8, 2.5],
    ];
    for (const [i, [g, c]] of losses.slice(0, 2).entries()) a.update!({ time: at(i), lossBySource: { general: g, code: c } });
    const saved = JSON.parse(JSON.stringify(a.getState!()));
    const b = buildMixtureSchedule(JSON.parse(JSON.stringify(a.config)));
    expect(b.at(at(2))).not.toEqual(a.at(at(2)));
    b.setState!(saved);
    expect(b.at(at(2))).toEqual(a.at(at(2)));
    for (const [g, c] of losses.slice(2)) {
      a.update!({ time: at(3), lossBySource: { general: g, code: c } });
      b.update!({ time: at(3), lossBySource: { general: g, code: c } });
    }
    expect(b.at(at(4))).toEqual(a.at(at(4)));
    expect(b.getState!()).toEqual(a.getState!());
  });

  it("defaults to uniform weights over the declared sources", () => {
    const m = buildMixtureSchedule({ type: "doremi" }, { sources: ["a", "b", "c", "d"] });
    expect(m.at(at(0))).toEqual({ a: 0.25, b: 0.25, c: 0.25, d: 0.25 });
  });

  it("rejects bad state and feedback with messages that say what is wrong", () => {
    const m = buildMixtureSchedule(config);
    expect(() => m.setState!({ type: "doremi", logWeights: { general: 0 }, updates: 0 })).toThrow(ScheduleStateError);
    expect(() => m.setState!({ type: "doremi", logWeights: { general: 0 }, updates: 0 })).toThrow(/differ from this schedule's/);
    expect(() => m.setState!({ type: "exp3" })).toThrow(/expected \{ type: "doremi"/);
    expect(() => m.update!({ time: at(0), lossBySource: { cdoe: 1 } })).toThrow(/unknown source 'cdoe' — did you mean 'code'\?/);
    expect(() => m.update!({ time: at(0), lossBySource: { code: Number.NaN } })).toThrow(/must be finite/);
  });

  it("stateless schedules say so and have no state methods", () => {
    const m = buildMixtureSchedule({ type: "static", weights: { a: 1 } });
    expect(m.stateful).toBe(false);
    expect(m.getState).toBeUndefined();
    expect(m.update).toBeUndefined();
  });
});
