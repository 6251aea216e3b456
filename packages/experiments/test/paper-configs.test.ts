import { readdirSync } from "node:fs";
import { join, resolve } from "node:path";
import { buildLrSchedule } from "@midtrain/schedulers";
import { describe, expect, it } from "vitest";
import { loadExperimentConfig } from "../src/load.js";
import { planExperiment } from "../src/plan.js";

const dir = resolve(import.meta.dirname, "../../../examples/paper-scale");
const files = readdirSync(dir).filter((f) => f.endsWith(".yaml"));
// What the runner passes: the run's length in steps is part of the training time.
const time = (step: number) => ({ step, tokens: 0, phase: "pretrain", phaseStep: step, phaseSteps: 61035, phaseFraction: step / 61035, totalSteps: 61035 });

describe("paper-scale configs", () => {
  it("ship one config per model size and the code ablation", () => {
    expect(files.sort()).toEqual(["code-ablation-410m.yaml", "pythia-160m.yaml", "pythia-1b.yaml", "pythia-410m.yaml", "pythia-70m.yaml"]);
  });
  for (const f of files) {
    it(`${f} validates and derives the study's numbers`, async () => {
      const c = await loadExperimentConfig(join(dir, f));
      const plan = planExperiment(c);
      expect(plan.tokensPerStep).toBe(1024 * 2048);
      expect(plan.totals.pretrainTokens).toBe(61035 * 1024 * 2048); // ≈ 128B tokens
      expect(plan.totals.pretrainTokens / 1e9).toBeCloseTo(128, 0);
      const lr = buildLrSchedule(plan.trunk.lr);
      expect(lr.at(time(20000))).toBeCloseTo(2.55e-4, 5);
      expect(lr.at(time(40000))).toBeCloseTo(9.7e-5, 6);
      expect(c.tokenizer).toEqual({ path: join(dir, "data/pythia/tokenizer.json") });
      if (f.startsWith("code-ablation")) {
        const grid = plan.branches.filter((b) => b.fromGrid);
        expect(grid).toHaveLength(4 * 5);
        expect(new Set(grid.map((b) => b.startStep))).toEqual(new Set([20000, 30000, 40000, 50000]));
        expect(plan.trunk.checkpointsAt).toEqual([20000, 30000, 40000, 50000]);
      } else {
        const sc = plan.branches.find((b) => b.name === "starcoder-20")!;
        expect(sc).toMatchObject({ startStep: 6000, stepsLeft: 55035, weight: 0.2 });
        expect(sc.specializedTokens).toBe(Math.round(55035 * 1024 * 2048 * 0.2));
        expect(plan.branches.find((b) => b.name === "math-12")).toMatchObject({ startStep: 20000, weight: 0.12 });
        expect(plan.branches.find((b) => b.name === "cpt-starcoder")).toMatchObject({ kind: "cpt", startStep: 40000, weight: 1 });
        expect(plan.sftRuns).toHaveLength(8 * 4 * 5 * 3);
      }
    });
  }
});
