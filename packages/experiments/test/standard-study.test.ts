import { readFileSync } from "node:fs";
import { mkdtemp } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { afterEach, describe, expect, it, vi } from "vitest";
import { main } from "../src/cli.js";
import { loadExperimentConfig } from "../src/load.js";
import { planExperiment } from "../src/plan.js";

const dir = resolve(import.meta.dirname, "../../../examples/standard-study");

describe("the standard study (examples/standard-study)", () => {
  afterEach(() => vi.restoreAllMocks());

  it("plans three pretraining seeds, a 3 × 2 code grid that reuses the midtrain branch, and epochs-based SFT", async () => {
    const config = await loadExperimentConfig(join(dir, "standard.yaml"));
    expect(config.pretrainSeeds).toHaveLength(3);
    const plan = planExperiment(config, undefined, { sftExamples: { code: 256, math: 256 } });
    const grid = plan.branches.filter((b) => b.inGrid);
    expect(grid).toHaveLength(6);
    expect(new Set(grid.map((b) => b.startStep)).size).toBe(3);
    expect(new Set(grid.map((b) => b.weight)).size).toBe(2);
    expect(grid.some((b) => b.name === "midtrain-code-20")).toBe(true);
    // Two epochs of 256 examples in batches of 16.
    expect(plan.sftSteps("code")).toBe(32);
    expect(plan.sftSteps("math")).toBe(32);
    // The grid's own rows fine-tune on code only.
    for (const b of grid.filter((x) => x.fromGrid))
      expect(new Set(plan.sftRuns.filter((r) => r.branch === b.name).map((r) => r.domain))).toEqual(new Set(["code"]));
  });

  it("ships the tokenizer `midtrain tokenizer train` makes from the shipped corpora (the command in the config's header)", async () => {
    vi.spyOn(console, "error").mockImplementation(() => {});
    vi.spyOn(console, "log").mockImplementation(() => {});
    const header = readFileSync(join(dir, "standard.yaml"), "utf8");
    const command = header.match(/midtrain (tokenizer train [^\n]*)\\\n#\s+([^\n]*)/);
    expect(command, "the config's header names the command").toBeTruthy();
    const args = `${command![1]} ${command![2]}`.split(/\s+/).filter(Boolean);
    const out = join(await mkdtemp(join(tmpdir(), "midtrain-std-tok-")), "tokenizer.json");
    args[args.indexOf("-o") + 1] = out;
    await main(["node", "midtrain", ...args]);
    expect(readFileSync(out, "utf8")).toBe(readFileSync(join(dir, "tokenizer.json"), "utf8"));
  });
});
