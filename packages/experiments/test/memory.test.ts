import { existsSync } from "node:fs";
import { mkdtemp } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { MemoryBudgetError } from "@midtrain/trainer";
import { afterEach, describe, expect, it, vi } from "vitest";
import { main } from "../src/cli.js";
import { loadExperimentConfig } from "../src/load.js";
import { describeMemoryPlan, fitConfigToMemory, memoryBudget, planMemory } from "../src/memory.js";

const paper = resolve(import.meta.dirname, "../../../examples/paper-scale");
const micro = resolve(import.meta.dirname, "../../../examples/micro-study/micro-study.yaml");

describe("memory plan of a config", () => {
  afterEach(() => vi.restoreAllMocks());

  for (const f of ["pythia-70m.yaml", "pythia-160m.yaml", "pythia-410m.yaml", "pythia-1b.yaml", "code-ablation-410m.yaml"]) {
    it(`${f}: the configured micro-batches fit an 80 GB GPU (2 GiB buffers on WebGPU) and keep 1,024 x 2,048 tokens per step`, async () => {
      const c = await loadExperimentConfig(join(paper, f));
      const budget = memoryBudget("webgpu", { memoryBytes: 80e9, limits: { maxStorageBufferBindingSize: 2 ** 31, maxBufferSize: 2 ** 31 } });
      const plan = planMemory(c, { backend: "webgpu", budget });
      const pre = plan.phases.find((p) => p.phase === "pretrain")!;
      expect(pre.batchSize * pre.seqLen).toBe(1024 * 2048);
      for (const p of plan.phases) {
        expect(p.error).toBeUndefined();
        expect(p.fitted).toMatchObject({ changed: false, gradAccum: p.gradAccum });
        expect(p.asConfigured.total).toBeLessThanOrEqual(80e9);
      }
      expect(fitConfigToMemory(c, plan)).toEqual(c);
    });
  }

  it("derives a larger gradAccum when the configured micro-batch does not fit, and prints it", async () => {
    const c = await loadExperimentConfig(join(paper, "pythia-70m.yaml"));
    const big = { ...c, pretrain: { ...c.pretrain, gradAccum: 1 } };
    const plan = planMemory(big, { backend: "cuda", budget: memoryBudget("cuda", { memoryBytes: 80e9 }) });
    const pre = plan.phases[0];
    expect(pre.fitted!.changed).toBe(true);
    expect(pre.fitted!.microBatch * pre.fitted!.gradAccum).toBe(1024);
    expect(fitConfigToMemory(big, plan).pretrain.gradAccum).toBe(pre.fitted!.gradAccum);
    expect(describeMemoryPlan(plan)).toMatch(new RegExp(`fits as gradAccum ${pre.fitted!.gradAccum} × micro-batch ${pre.fitted!.microBatch}`));
  });

  it("turns on optimizer offload for a phase that fits only that way (pythia-160m at 2,048 tokens on the 4 GiB wasm heap)", async () => {
    const c = await loadExperimentConfig(join(paper, "pythia-160m.yaml"));
    const recomputed = { ...c, model: { ...c.model, recompute: true } };
    const plan = planMemory(recomputed, { backend: "wasm", budget: memoryBudget("wasm", { freeBytes: 64e9 }) });
    for (const p of plan.phases) {
      expect(p.error).toBeUndefined();
      expect(p.fitted).toMatchObject({ offload: true, microBatch: 1 });
      expect(p.fitted!.estimate.total).toBeLessThanOrEqual(4294901760);
    }
    const fitted = fitConfigToMemory(recomputed, plan);
    expect(fitted.pretrain.optimizer.offload).toBe(true);
    expect(fitted.sft!.optimizer.offload).toBe(true);
    expect(fitted.pretrain.gradAccum).toBe(1024);
    expect(describeMemoryPlan(plan)).toMatch(/pretrain: .*\n {4}fits as gradAccum 1024 × micro-batch 1 with optimizer offload/);
    // Asked for in the config, offload is planned as configured (no change to report).
    const asked = { ...recomputed, pretrain: { ...recomputed.pretrain, gradAccum: 1024, optimizer: { ...recomputed.pretrain.optimizer, offload: true } } };
    const again = planMemory(asked, { backend: "wasm", budget: memoryBudget("wasm", { freeBytes: 64e9 }) });
    expect(again.phases[0].fitted).toMatchObject({ offload: true, changed: false });
    expect(describeMemoryPlan(again)).toMatch(/pretrain: .*\n {4}fits as configured/);
    // The 70m config fits the heap with the optimizer on the device: offload stays off.
    const small = await loadExperimentConfig(join(paper, "pythia-70m.yaml"));
    const smallPlan = planMemory(
      { ...small, model: { ...small.model, recompute: true } },
      { backend: "wasm", budget: memoryBudget("wasm", { freeBytes: 64e9 }) },
    );
    expect(smallPlan.phases[0].fitted!.offload).toBe(false);
  });

  it("the wasm budget is the 4 GiB heap at most; WebGPU bounds one tensor by the adapter's limit", () => {
    expect(memoryBudget("wasm", { freeBytes: 64e9 })!.bytes).toBe(4294901760);
    expect(memoryBudget("wasm", { freeBytes: 1e9 })!.bytes).toBe(1e9);
    expect(memoryBudget("webgpu", { limits: { maxStorageBufferBindingSize: 134217728, maxBufferSize: 268435456 } })).toMatchObject({
      maxTensorBytes: 134217728,
    });
    expect(memoryBudget("cuda", {})).toBeUndefined();
  });

  it("`midtrain run` with a budget nothing fits fails before training, naming what fits; `plan --memory` prints the split", async () => {
    const log = vi.spyOn(console, "log").mockImplementation(() => {});
    const dir = await mkdtemp(join(tmpdir(), "midtrain-mem-"));
    const out = join(dir, "out");
    const err = await main(["node", "midtrain", "run", micro, "--out", out, "--backend", "cpu", "--memory", "2MB"]).catch((e) => e);
    expect(err).toBeInstanceOf(MemoryBudgetError);
    expect((err as Error).message).toMatch(/^pretrain: .*needs .* more than the budget of 1\.91 MiB \(--memory 1\.91 MiB\)/);
    expect((err as Error).message).toMatch(/longest sequence that fits|largest micro-batch that fits|smaller model/);
    expect(existsSync(join(out, "plan.json"))).toBe(false);
    await main(["node", "midtrain", "plan", micro, "--backend", "cpu", "--memory", "80GB"]);
    const text = log.mock.calls.map((c) => c.join(" ")).join("\n");
    expect(text).toMatch(/memory \(cpu; budget: --memory 74\.5 GiB\):/);
    expect(text).toMatch(/pretrain: 16 × 64 tokens per step as configured/);
    const stderr = vi.spyOn(process.stderr, "write").mockImplementation(() => true);
    vi.spyOn(process, "exit").mockImplementation(((code: number) => {
      throw new Error(`exit ${code}`);
    }) as never);
    await expect(main(["node", "midtrain", "plan", micro, "--memory", "lots"])).rejects.toThrow(/exit 1/);
    expect(stderr.mock.calls.join("")).toMatch(/memory size 'lots' is not a size/);
  });
});
