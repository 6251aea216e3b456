import { describe, expect, it } from "vitest";
import { type BranchOutcome, type SftOutcome, aggregateResults } from "../src/aggregate.js";
import { parseExperimentConfig } from "../src/config.js";
import { planExperiment } from "../src/plan.js";

const plan = planExperiment(
  parseExperimentConfig({
    name: "agg",
    model: { preset: "tiny-1m" },
    data: { seqLen: 8, general: "g", sources: { g: { corpus: "general" }, c: { corpus: "code" } }, sft: { c: { corpus: "sft-code" } } },
    pretrain: { steps: 10, batchSize: 2, lr: { type: "constant", value: 0.001 } },
    branches: [{ name: "mid", kind: "midtrain", source: "c", weight: 0.5, start: 0.5 }],
    sft: { domains: ["c"], steps: 2, batchSize: 2, lrGrid: [0.1, 0.2], seeds: [1, 2] },
  }),
);

const o = (branch: string, lr: number, seed: number, sftLoss: number, generalLoss: number): SftOutcome => ({
  branch,
  domain: "c",
  lr,
  seed,
  pretrainSeed: 1,
  sftLoss,
  generalLoss,
});

describe("aggregateResults", () => {
  it("picks the best LR per seed by SFT loss, then averages over seeds", () => {
    const sft = [
      o("baseline", 0.1, 1, 2.0, 5.0),
      o("baseline", 0.2, 1, 1.8, 5.4), // best for seed 1
      o("baseline", 0.1, 2, 1.6, 5.2), // best for seed 2
      o("baseline", 0.2, 2, 1.9, 5.0),
      o("mid", 0.1, 1, 1.5, 4.8),
      o("mid", 0.2, 1, 1.7, 4.0),
      o("mid", 0.1, 2, 1.3, 4.6),
      o("mid", 0.2, 2, 1.4, 4.1),
    ];
    const before: BranchOutcome[] = [
      { branch: "baseline", pretrainSeed: 1, generalLoss: 4.5 },
      { branch: "mid", pretrainSeed: 1, generalLoss: 4.4 },
    ];
    const rows = aggregateResults(plan.branches, sft, before, { mid: { c: 0.07 } });
    expect(rows.map((r) => r.branch)).toEqual(["baseline", "mid"]);
    const [base, mid] = rows;
    expect(base.bestLr).toEqual([0.2, 0.1]);
    expect(base.sftLoss.mean).toBeCloseTo(1.7, 12);
    expect(base.sftLoss.std).toBeCloseTo(Math.sqrt(0.02), 12); // values 1.8, 1.6
    expect(base.generalLossAfterSft.mean).toBeCloseTo(5.3, 12); // 5.4, 5.2 from the selected runs
    expect(mid.bestLr).toEqual([0.1, 0.1]);
    expect(mid.sftLoss.mean).toBeCloseTo(1.4, 12);
    expect(mid.relImprovement).toBeCloseTo((1.7 - 1.4) / 1.7, 12);
    expect(mid.forgettingVsBaseline).toBeCloseTo(4.7 - 5.3, 12);
    expect(mid.generalLossBeforeSft?.mean).toBe(4.4);
    expect(mid.proximityAdvantage).toBe(0.07);
    expect(mid).toMatchObject({ kind: "midtrain", specialized: "c", weight: 0.5, startStep: 5, startFraction: 0.5 });
    expect(base.relImprovement).toBe(0);
  });
});

describe("selection on validation, reporting on test", () => {
  it("the LR is chosen by validation loss only, and the reported losses are the chosen runs' test losses", () => {
    // Validation prefers lr 0.1; test would prefer lr 0.2. A selection that looked at test would pick 0.2.
    const t = (lr: number, seed: number, val: number, test: number, genTest: number): SftOutcome => ({
      ...o("baseline", lr, seed, val, 9),
      testLoss: test,
      generalTestLoss: genTest,
    });
    const sft = [t(0.1, 1, 1.0, 2.5, 5.0), t(0.2, 1, 1.2, 1.5, 4.0), t(0.1, 2, 1.1, 2.7, 5.2), t(0.2, 2, 1.3, 1.4, 4.1)];
    const before: BranchOutcome[] = [{ branch: "baseline", pretrainSeed: 1, generalLoss: 4.5, generalTestLoss: 4.6 }];
    const [base] = aggregateResults(plan.branches, sft, before);
    expect(base.bestLr).toEqual([0.1, 0.1]);
    expect(base.sftValLoss!.values).toEqual([1.0, 1.1]);
    expect(base.sftLoss.values).toEqual([2.5, 2.7]);
    expect(base.generalLossAfterSft.values).toEqual([5.0, 5.2]);
    expect(base.generalLossBeforeSft!.values).toEqual([4.6]);
  });
});
