import { readFileSync } from "node:fs";
import { buildLrSchedule, createRegistry, ScheduleConfigError, type TrainingTime, UnknownScheduleError } from "@midtrain/schedulers";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import defaultExport, { plugin, sawtooth, triangular } from "../src/index.js";

const at = (step: number): TrainingTime => ({ step, tokens: 0, phase: "main", phaseStep: step, phaseSteps: 0, phaseFraction: 0 });
const registry = () => createRegistry().register(plugin);

describe("the plugin object", () => {
  it("is the default export and names its package", () => {
    expect(defaultExport).toBe(plugin);
    expect(plugin.name).toBe("@midtrain/example-scheduler-plugin");
    expect(plugin.types).toEqual([triangular, sawtooth]);
  });
  it("registers next to the built-in types", () => {
    const r = registry();
    expect(r.has("triangular", "lr")).toBe(true);
    expect(r.has("sawtooth", "mixture")).toBe(true);
    expect(r.ownerOf("lr", "triangular")).toBe(plugin.name);
    expect(r.has("cosine", "lr")).toBe(true);
  });
  it("is unknown (with a hint to load it) in a registry without it", () => {
    expect(() => buildLrSchedule({ type: "triangular", base: 0, max: 1, halfCycle: 1 }, { registry: createRegistry() })).toThrow(UnknownScheduleError);
  });
});

describe("triangular (hand-computed: base 0.1, max 1.1, half cycle 10)", () => {
  const cfg = { type: "triangular", base: 0.1, max: 1.1, halfCycle: 10 };
  it("triangular: up and down between base and max", () => {
    const s = registry().buildLr(cfg);
    const expected: [number, number][] = [
      [0, 0.1],
      [5, 0.6],
      [10, 1.1],
      [15, 0.6],
      [20, 0.1],
      [25, 0.6],
      [30, 1.1],
    ];
    for (const [x, v] of expected) expect(s.at(at(x))).toBeCloseTo(v, 14);
  });
  it("triangular2 halves the amplitude every cycle; exp-range scales it by gamma^x", () => {
    const t2 = registry().buildLr({ ...cfg, mode: "triangular2" });
    expect(t2.at(at(10))).toBeCloseTo(1.1, 14);
    expect(t2.at(at(30))).toBeCloseTo(0.1 + 0.5, 14);
    expect(t2.at(at(50))).toBeCloseTo(0.1 + 0.25, 14);
    const ex = registry().buildLr({ ...cfg, mode: "exp-range", gamma: 0.99 });
    expect(ex.at(at(10))).toBeCloseTo(0.1 + 0.99 ** 10, 14);
  });
  it("stays within [base, max] and is continuous (random times)", () => {
    const s = registry().buildLr(cfg);
    fc.assert(
      fc.property(fc.double({ min: 0, max: 1e4, noNaN: true }), (x) => {
        const v = s.at(at(x));
        expect(v).toBeGreaterThanOrEqual(0.1 - 1e-15);
        expect(v).toBeLessThanOrEqual(1.1 + 1e-15);
        expect(Math.abs(s.at(at(x + 1e-9)) - v)).toBeLessThanOrEqual(1e-6);
      }),
    );
  });
  it("rejects bad parameters with messages that say what to fix", () => {
    expect(() => registry().buildLr({ ...cfg, max: 0.05 })).toThrow(/^lr\.max: must be > 0\.1 \(got 0\.05\)/);
    expect(() => registry().buildLr({ ...cfg, halfCycle: 0 })).toThrow(ScheduleConfigError);
    expect(() => registry().buildLr({ type: "triangular", base: 0, max: 1, halfcycle: 3 })).toThrow(/did you mean 'halfCycle'\?/);
    expect(() => registry().buildLr({ ...cfg, mode: "triangle" })).toThrow(/did you mean 'triangular'/);
  });
});

describe("sawtooth (hand-computed: low 0.1, high 0.5, period 100)", () => {
  const cfg = { type: "sawtooth", base: "general", target: "code", low: 0.1, high: 0.5, period: 100 };
  it("ramps the target's share each period and resets", () => {
    const s = registry().buildMixture(cfg);
    expect(s.at(at(0))).toEqual({ general: 0.9, code: 0.1 });
    expect(s.at(at(50)).code).toBeCloseTo(0.3, 14);
    expect(s.at(at(150)).code).toBeCloseTo(0.3, 14);
    expect(s.at(at(200)).code).toBeCloseTo(0.1, 14);
  });
  it("gives weights on the simplex for declared sources (random times)", () => {
    const s = registry().buildMixture(cfg, { sources: ["general", "code", "math"] });
    fc.assert(
      fc.property(fc.double({ min: 0, max: 1e6, noNaN: true }), (x) => {
        const w = s.at(at(x));
        expect(Object.keys(w)).toEqual(["general", "code", "math"]);
        expect(w.math).toBe(0);
        expect(Math.abs(w.general + w.code - 1)).toBeLessThanOrEqual(1e-12);
        expect(w.code).toBeGreaterThanOrEqual(0.1 - 1e-12);
        expect(w.code).toBeLessThanOrEqual(0.5 + 1e-12);
      }),
    );
  });
  it("rejects unknown sources, equal sources and high < low", () => {
    expect(() => registry().buildMixture(cfg, { sources: ["general", "math"] })).toThrow(/^mixture\.target: unknown source 'code'/);
    expect(() => registry().buildMixture({ ...cfg, target: "general" })).toThrow(/same source as base/);
    expect(() => registry().buildMixture({ ...cfg, high: 0.05 })).toThrow(/^mixture\.high: must be >= 0\.1/);
  });
});

describe("the example config", () => {
  const config = JSON.parse(readFileSync(new URL("../configs/cyclic-midtraining.json", import.meta.url), "utf8"));
  it("names this plugin and builds with it registered", () => {
    expect(config.plugins).toEqual([plugin.name]);
    const r = registry();
    const lr = r.buildLr(config.lr);
    const mix = r.buildMixture(config.mixture);
    expect(lr.at(at(50))).toBeCloseTo(0.0005, 15); // warmup, halfway to 1e-3
    expect(lr.at(at(100))).toBeCloseTo(0.0001, 15); // the triangular part starts at base
    expect(lr.at(at(300))).toBeCloseTo(0.001, 15); // top of its first cycle
    expect(lr.at(at(700))).toBeCloseTo(0.0001 + 0.0009 / 2, 15); // second cycle, halved
    expect(mix.at(at(250)).code).toBeCloseTo(0.2, 15);
  });
});
