import { mkdtemp, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { describe, expect, it } from "vitest";
import { type ExperimentConfigInput, parseExperimentConfig } from "../src/config.js";
import { ConfigError } from "../src/errors.js";
import { loadExperimentConfig } from "../src/load.js";
import { describePlan, planExperiment } from "../src/plan.js";

const base = (): ExperimentConfigInput => ({
  name: "t",
  model: { preset: "tiny-1m" },
  data: {
    seqLen: 32,
    general: "general",
    sources: { general: { corpus: "general" }, code: { corpus: "code" } },
    sft: { code: { corpus: "sft-code" } },
  },
  pretrain: { steps: 100, batchSize: 4, lr: { type: "cosine", peak: 1e-3, warmup: { fraction: 0.1 } } },
  branches: [
    { name: "mid", kind: "midtrain", source: "code", weight: 0.2, start: 0.3 },
    { name: "cpt", kind: "cpt", source: "code", start: { step: 80 } },
  ],
  sft: { domains: ["code"], steps: 10, batchSize: 4, lrGrid: [1e-3, 3e-3], seeds: [1, 2] },
});

function issuesOf(raw: unknown): Array<{ path: string; message: string }> {
  try {
    parseExperimentConfig(raw);
  } catch (e) {
    expect(e).toBeInstanceOf(ConfigError);
    return (e as ConfigError).issues;
  }
  throw new Error("config unexpectedly valid");
}

describe("experiment config validation", () => {
  it("accepts a valid config and fills defaults", () => {
    const c = parseExperimentConfig(base());
    expect(c.pretrain.optimizer).toEqual({ beta1: 0.9, beta2: 0.95, eps: 1e-8, weightDecay: 0.1, clipNorm: 1 });
    expect(c.backend).toBe("auto");
    expect(c.tokenizer).toBe("byte");
  });
  it("points at the bad field", () => {
    const c = base() as any;
    c.pretrain.steps = -5;
    expect(issuesOf(c)).toEqual([expect.objectContaining({ path: "pretrain.steps" })]);
  });
  it("rejects unknown keys (typos) with their location", () => {
    const c = base() as any;
    c.pretrain.stpes = 10;
    const issues = issuesOf(c);
    expect(issues[0].path).toBe("pretrain");
    expect(issues[0].message).toMatch(/stpes/);
  });
  it("rejects a branch naming an unknown source and lists the known ones", () => {
    const c = base() as any;
    c.branches[0].source = "cdoe";
    expect(issuesOf(c)).toEqual([{ path: "branches[0].source", message: "unknown source 'cdoe' (data.sources has: general, code)" }]);
  });
  it("an SFT set's `matches` must name a known source", () => {
    const c = base() as any;
    c.data.sft.code.matches = "cdoe";
    expect(issuesOf(c)).toEqual([{ path: "data.sft.code.matches", message: "unknown source 'cdoe' (data.sources has: general, code)" }]);
    c.data.sft.code.matches = "code";
    expect(parseExperimentConfig(c).data.sft.code.matches).toBe("code");
  });
  it("requires weight for midtrain, forbids other weights for cpt, and forbids start on the baseline", () => {
    const c = base() as any;
    delete c.branches[0].weight;
    c.branches[1].weight = 0.5;
    c.branches.push({ name: "b", kind: "baseline", start: 0.5 });
    const paths = issuesOf(c).map((i) => i.path);
    expect(paths).toEqual(expect.arrayContaining(["branches[0].weight", "branches[1].weight", "branches[2].start"]));
  });
  it("rejects a start step past the end, duplicate names, unknown SFT domains", () => {
    const c = base() as any;
    c.branches[1].start = { step: 100 };
    c.branches.push({ ...c.branches[0] });
    c.sft.domains = ["math"];
    const paths = issuesOf(c).map((i) => i.path);
    expect(paths).toEqual(expect.arrayContaining(["branches[1].start.step", "branches[2].name", "sft.domains[0]"]));
  });
  it("requires exactly one of corpus or path", () => {
    const c = base() as any;
    c.data.sources.code = { corpus: "code", path: "x.jsonl" };
    expect(issuesOf(c)[0].path).toBe("data.sources.code");
  });
  it("loads YAML from a file, resolving relative paths, and reports unreadable or malformed files", async () => {
    const dir = await mkdtemp(join(tmpdir(), "midtrain-config-"));
    const file = join(dir, "exp.yaml");
    await writeFile(
      file,
      `name: y\nmodel: { preset: tiny-1m }\ndata:\n  seqLen: 16\n  general: g\n  sources:\n    g: { path: data/g.txt }\npretrain: { steps: 5, batchSize: 2, lr: { type: constant, value: 0.001 } }\n`,
    );
    const c = await loadExperimentConfig(file);
    expect(c.data.sources.g.path).toBe(resolve(dir, "data/g.txt"));
    await writeFile(file, "name: [unclosed\n");
    await expect(loadExperimentConfig(file)).rejects.toThrow(/not valid YAML/);
    await expect(loadExperimentConfig(join(dir, "missing.yaml"))).rejects.toThrow(/cannot read the file \(ENOENT\)/);
  });
  it("the shipped micro-study config validates", async () => {
    const c = await loadExperimentConfig(resolve(import.meta.dirname, "../../../examples/micro-study/micro-study.yaml"));
    expect(c.name).toBe("micro-study");
  });
});

describe("experiment plan", () => {
  it("derives start steps, steps left and specialised tokens", () => {
    const plan = planExperiment(parseExperimentConfig(base()));
    const [baseline, mid, cpt] = plan.branches;
    expect(plan.tokensPerStep).toBe(4 * 32);
    expect(baseline).toMatchObject({ name: "baseline", kind: "baseline", startStep: 100, stepsLeft: 0, weight: 0, specializedTokens: 0 });
    expect(mid).toMatchObject({ startStep: 30, stepsLeft: 70, weight: 0.2, specializedTokens: Math.round(70 * 128 * 0.2) });
    expect(cpt).toMatchObject({ startStep: 80, stepsLeft: 20, weight: 1, specializedTokens: 20 * 128 });
    expect(mid.mixture).toEqual({ type: "midtraining", general: "general", specialized: "code", weight: 0.2, start: 30, unit: "steps" });
    expect(plan.trunk.checkpointsAt).toEqual([30, 80]);
    // The config's LR as written: its run length comes from the training time the runner passes.
    expect(plan.trunk.lr).not.toHaveProperty("total");
    const lr = plan.registry.buildLr(plan.trunk.lr, { unit: "steps" });
    const at = (step: number) => lr.at({ step, tokens: 0, phase: "pretrain", phaseStep: step, phaseSteps: 100, phaseFraction: step / 100, totalSteps: 100 });
    expect(at(10)).toBeCloseTo(1e-3, 12); // end of the warmup
    expect(at(55)).toBeCloseTo(5e-4, 12); // half way through the cosine to 0
    expect(at(100)).toBe(0);
    expect(plan.sftRuns).toHaveLength(3 * 1 * 2 * 2);
    expect(plan.totals.trainingSteps).toBe(100 + 70 + 20 + 12 * 10);
    expect(describePlan(plan)).toMatch(/mid: midtrain code 20% from step 30 \(30%\), 70 steps/);
  });
  it("adds the baseline when the config has none, and expands the ablation grid", () => {
    const c = base() as any;
    c.branches = [];
    c.ablation = { source: "code", starts: [0.2, 0.6], weights: [0.1, 0.5] };
    const plan = planExperiment(parseExperimentConfig(c));
    expect(plan.branches.map((b) => b.name)).toEqual(["baseline", "grid-code-s0p2-w0p1", "grid-code-s0p2-w0p5", "grid-code-s0p6-w0p1", "grid-code-s0p6-w0p5"]);
    expect(plan.branches.filter((b) => b.fromGrid).map((b) => [b.startStep, b.weight])).toEqual([
      [20, 0.1],
      [20, 0.5],
      [60, 0.1],
      [60, 0.5],
    ]);
    expect(plan.trunk.checkpointsAt).toEqual([20, 60]);
  });
  it("reuses an explicit midtrain branch that is a grid cell, and fine-tunes the grid's rows on its matching domain only", () => {
    const c = base() as any;
    c.data.sources.math = { corpus: "math" };
    c.data.sft.math = { corpus: "sft-math" };
    c.sft.domains = ["code", "math"];
    c.ablation = { source: "code", starts: [0.3, 0.6], weights: [0.2, 0.5] };
    const plan = planExperiment(parseExperimentConfig(c));
    // `mid` (code 20% from 30%) is the grid's (0.3, 0.2) cell: three grid rows are added, not four.
    expect(plan.branches.map((b) => b.name)).toEqual(["baseline", "mid", "cpt", "grid-code-s0p3-w0p5", "grid-code-s0p6-w0p2", "grid-code-s0p6-w0p5"]);
    expect(plan.branches.filter((b) => b.inGrid).map((b) => b.name)).toEqual(["mid", "grid-code-s0p3-w0p5", "grid-code-s0p6-w0p2", "grid-code-s0p6-w0p5"]);
    expect(plan.branches.find((b) => b.name === "mid")!.fromGrid).toBe(false);
    const domainsOf = (branch: string) => [...new Set(plan.sftRuns.filter((r) => r.branch === branch).map((r) => r.domain))];
    expect(domainsOf("mid")).toEqual(["code", "math"]);
    expect(domainsOf("grid-code-s0p6-w0p5")).toEqual(["code"]);
    // 3 explicit branches × 2 domains + 3 grid rows × 1 domain, each × 2 LRs × 2 seeds.
    expect(plan.sftRuns).toHaveLength((3 * 2 + 3) * 2 * 2);
    c.ablation.sftDomains = ["math"];
    const explicit = planExperiment(parseExperimentConfig(c));
    expect([...new Set(explicit.sftRuns.filter((r) => r.branch === "grid-code-s0p6-w0p5").map((r) => r.domain))]).toEqual(["math"]);
    c.ablation.sftDomains = ["qa"];
    expect(issuesOf(c)).toEqual([{ path: "ablation.sftDomains[0]", message: "'qa' is not in sft.domains (code, math)" }]);
  });
  it("derives SFT steps from epochs once the set sizes are known, and needs exactly one of steps or epochs", () => {
    const c = base() as any;
    delete c.sft.steps;
    c.sft.epochs = 2;
    const config = parseExperimentConfig(c);
    const unknown = planExperiment(config);
    expect(unknown.sftSteps("code")).toBeUndefined();
    expect(describePlan(unknown)).toMatch(/2 epoch\(s\) over each set's training examples/);
    expect(describePlan(unknown)).toMatch(/plus SFT \(known when the SFT sets are loaded\)/);
    // 2 epochs of 101 examples in batches of 4: ceil(202 / 4) = 51 steps.
    const known = planExperiment(config, undefined, { sftExamples: { code: 101 } });
    expect(known.sftSteps("code")).toBe(51);
    expect(known.totals.trainingSteps).toBe(100 + 70 + 20 + known.sftRuns.length * 51);
    c.sft.steps = 10;
    expect(issuesOf(c)).toEqual([{ path: "sft", message: "give exactly one of `steps` (per SFT run) or `epochs` (over each SFT set)" }]);
    delete c.sft.steps;
    delete c.sft.epochs;
    expect(issuesOf(c)).toEqual([{ path: "sft", message: "give exactly one of `steps` (per SFT run) or `epochs` (over each SFT set)" }]);
  });
});
