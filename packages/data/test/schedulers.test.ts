import { buildMixtureSchedule } from "@midtrain/schedulers";
import { describe, expect, it } from "vitest";
import * as lib from "../src/index.js";
import { ByteTokenizer, createMixer, type MixtureScheduleLike, packPretrain, type TrainingTime, UnknownSourceError } from "../src/index.js";
import { drawSteps, makeMixer } from "./fixtures/mixer-fixture.mjs";

const tok = new ByteTokenizer();
const mono = (ch: string) =>
  packPretrain(
    Array.from({ length: 20 }, () => ch.repeat(50)),
    tok,
    { seqLen: 8 },
  );
const at = (step: number): TrainingTime => ({ step, tokens: step * 800, phase: "pretrain", phaseStep: step, phaseSteps: 200, phaseFraction: step / 200 });

/** |count - n p| < 4.5 sqrt(n p (1-p)) for every source (exact zero when p = 0). */
function expectBinomial(counts: Record<string, number>, weights: Record<string, number>, n: number) {
  for (const k of Object.keys(counts)) {
    const p = weights[k] ?? 0;
    if (p === 0) expect(counts[k], k).toBe(0);
    else expect(Math.abs(counts[k] - n * p), k).toBeLessThan(4.5 * Math.sqrt(n * p * (1 - p)));
  }
}

describe("with @midtrain/schedulers mixture schedules", () => {
  it("a 'switch' schedule: source fractions follow the weights before and after the switch", () => {
    const schedule: MixtureScheduleLike = buildMixtureSchedule({
      type: "switch",
      before: { general: 0.9, code: 0.1 },
      after: { general: 0.4, code: 0.35, math: 0.25 },
      at: 100,
    });
    const m = createMixer({ sources: { general: mono("g"), code: mono("c"), math: mono("m") }, schedule, seed: 77 });
    const count = (from: number, to: number) => {
      const c: Record<string, number> = { general: 0, code: 0, math: 0 };
      for (let s = from; s < to; s++) for (const name of m.nextBatch(100, at(s)).sources) c[name]++;
      return c;
    };
    expectBinomial(count(0, 100), { general: 0.9, code: 0.1 }, 10_000);
    expectBinomial(count(100, 200), { general: 0.4, code: 0.35, math: 0.25 }, 10_000);
  });

  it("the 'midtraining' schedule drives the shared fixture and resumes across its switch", () => {
    const schedule = () => buildMixtureSchedule({ type: "midtraining", general: "general", specialized: "code", weight: 0.3, start: 50 });
    const m = makeMixer(lib, schedule());
    drawSteps(m, 0, 30);
    const saved = JSON.stringify(m.getState());
    const expected = drawSteps(m, 30, 100);
    expect(new Set(expected.flatMap((b) => b.sources))).toEqual(new Set(["general", "code"]));
    const fresh = makeMixer(lib, schedule());
    fresh.setState(JSON.parse(saved));
    expect(drawSteps(fresh, 30, 100)).toEqual(expected);
  });

  it("a schedule naming a source the mixer lacks is rejected when the mixer is built", () => {
    const schedule = buildMixtureSchedule({ type: "static", weights: { general: 0.5, maths: 0.5 } });
    expect(() => createMixer({ sources: { general: mono("g"), math: mono("m") }, schedule })).toThrow(UnknownSourceError);
    expect(() => createMixer({ sources: { general: mono("g"), math: mono("m") }, schedule })).toThrow(/'maths'/);
  });
});
