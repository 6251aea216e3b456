import { existsSync, readFileSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { initBackend } from "@midtrain/backend";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parseExperimentConfig } from "../src/config.js";
import { nodeEnv, writeReport } from "../src/node.js";
import { formatResultsTable } from "../src/report/index.js";
import { runExperiment } from "../src/runner.js";

// A shrunken micro study: every phase and branch kind, seconds on a CPU.
const config = parseExperimentConfig({
  name: "smoke",
  seed: 3,
  backend: "wasm",
  model: { preset: "tiny-1m", overrides: { dModel: 16, nLayer: 1, nHead: 2, seqLen: 192 } },
  data: {
    seqLen: 16,
    general: "general",
    maxValidationSequences: 8,
    sources: { general: { corpus: "general", maxDocuments: 20 }, code: { corpus: "code", maxDocuments: 20 } },
    sft: { code: { corpus: "sft-code", maxDocuments: 60 } },
  },
  pretrain: { steps: 12, batchSize: 4, lr: { type: "cosine", peak: 0.003, min: 0.0003, warmup: { fraction: 0.1 } }, evalEvery: 6 },
  branches: [
    { name: "baseline", kind: "baseline" },
    { name: "mid", kind: "midtrain", source: "code", weight: 0.5, start: 0.5 },
    { name: "cpt", kind: "cpt", source: "code", start: { step: 9 } },
  ],
  sft: { domains: ["code"], steps: 4, batchSize: 4, seqLen: 192, lrGrid: [0.001, 0.003], seeds: [1] },
});

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "midtrain-smoke-"));
  await initBackend({ prefer: "wasm" });
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe("experiment smoke run", () => {
  it("runs pretrain, three branches and SFT end to end and writes the report", async () => {
    const { tf } = await initBackend({ prefer: "wasm" });
    const before = tf.memory().numTensors;
    const jobsRun: string[] = [];
    const results = await runExperiment(config, { env: nodeEnv(dir), onJob: (e, j) => e === "done" && jobsRun.push(j.id) });
    expect(tf.memory().numTensors).toBe(before);
    // The trunk is cut at the branch points (steps 6 and 9), so branches start early.
    expect(jobsRun).toEqual(expect.arrayContaining(["trunk@p3:6", "trunk@p3:9", "trunk@p3:12", "branch@p3/mid", "branch@p3/cpt"]));
    expect(jobsRun).toHaveLength(3 + 2 + 3 * 2);
    expect(results.rows.map((r) => r.branch)).toEqual(["baseline", "mid", "cpt"]);
    for (const r of results.rows) {
      expect(r.sftDomain).toBe("code");
      expect(Number.isFinite(r.sftLoss.mean)).toBe(true);
      expect(Number.isFinite(r.generalLossAfterSft.mean)).toBe(true);
      expect(r.sftLoss.n).toBe(1);
    }
    expect(results.rows[0].relImprovement).toBe(0);
    expect(results.curves.map((c) => c.phase)).toEqual(expect.arrayContaining(["pretrain", "branch", "sft"]));
    const trunk = results.curves.find((c) => c.phase === "pretrain")!;
    expect(trunk.points.at(-1)?.step).toBe(12);
    expect(trunk.points.some((p) => p.valLoss?.general !== undefined)).toBe(true);

    const files = await writeReport(dir, results);
    const html = readFileSync(files.html, "utf8");
    for (const b of ["baseline", "mid", "cpt"]) expect(html).toContain(b);
    const csv = readFileSync(files.csv, "utf8").trim().split("\n");
    expect(csv).toHaveLength(1 + 3);
    expect(formatResultsTable(results)).toMatch(/cpt/);
    // The findings come out of the same run: one pretraining seed gives estimates without intervals, and no grid means no timing finding.
    const gain = results.findings!.find((f) => f.id === "midtrain-vs-baseline:mid:code")!;
    const [base, mid] = results.rows;
    expect(gain.interval!.estimate).toBeCloseTo(base.sftLoss.mean - mid.sftLoss.mean, 12);
    expect(gain.verdict).toBe("inconclusive");
    expect(results.findings!.find((f) => f.kind === "timing-over-weight")!.verdict).toBe("not measured");
    expect(html).toContain("<h2>Findings</h2>");
    // CKA per layer (embedding + 1 block): each branch vs the baseline before SFT, and each selected SFT run vs its start.
    const cka = results.cka!;
    expect(cka.branchVsBaseline.map((e) => e.branch).sort()).toEqual(["cpt", "mid"]);
    expect(cka.sftVsStart.map((e) => e.branch).sort()).toEqual(["baseline", "cpt", "mid"]);
    for (const e of [...cka.branchVsBaseline, ...cka.sftVsStart]) {
      expect(e.perLayer).toHaveLength(2);
      for (const v of e.perLayer) expect(v).toBeGreaterThan(0);
      // Training changed the model, so the blocks' representations are not identical (the embedding layer may be close to 1).
      expect(e.perLayer[1]).toBeLessThan(1);
    }
    for (const e of cka.sftVsStart) expect(e.lr).toBe(results.rows.find((r) => r.branch === e.branch)!.bestLr![0]);
    expect(html).toContain("Representation similarity (linear CKA)");

    // A second run finds every job done and redoes nothing.
    const again: string[] = [];
    await runExperiment(config, { env: nodeEnv(dir), onJob: (e, j) => e === "start" && again.push(j.id) });
    expect(again).toEqual([]);
  });

  it("an interrupted run resumes from its checkpoint instead of starting over", async () => {
    const dir2 = await mkdtemp(join(tmpdir(), "midtrain-resume-"));
    try {
      const controller = new AbortController();
      const first = await runExperiment(config, {
        env: nodeEnv(dir2),
        signal: controller.signal,
        onProgress: (p) => {
          if (p.job === "trunk@p3:6" && p.step === 4) controller.abort();
        },
      }).catch((e) => e);
      expect(first).toBeInstanceOf(Error);
      expect(String(first.message)).toMatch(/interrupted at step 4/);
      expect(existsSync(join(dir2, "p3/trunk/checkpoints/ckpt-4"))).toBe(true);
      const results = await runExperiment(config, { env: nodeEnv(dir2) });
      expect(results.rows).toHaveLength(3);
      const steps = readFileSync(join(dir2, "p3/trunk/metrics.jsonl"), "utf8")
        .trim()
        .split("\n")
        .map((l) => JSON.parse(l))
        .filter((r) => r.type === "train")
        .map((r) => r.step);
      // Steps 1-4 ran once before the interruption; the rerun continued at 5.
      expect(steps).toEqual(Array.from({ length: 12 }, (_, i) => i + 1));
    } finally {
      await rm(dir2, { recursive: true, force: true });
    }
  });

  it("an epochs-based SFT length trains ceil(epochs × examples / batch) steps per set and says so in the results", async () => {
    const dir3 = await mkdtemp(join(tmpdir(), "midtrain-epochs-"));
    try {
      const { steps: _, ...sft } = config.sft!;
      const byEpochs = parseExperimentConfig({ ...config, branches: [{ name: "baseline", kind: "baseline" }], sft: { ...sft, lrGrid: [0.003], epochs: 0.5 } });
      const results = await runExperiment(byEpochs, { env: nodeEnv(dir3) });
      // data.sft.code reads at most 60 training documents (maxDocuments; an example whose prompt fills the context is dropped).
      const note = results.notes?.find((n) => n.startsWith("SFT length: 0.5 epoch(s) over each set's training examples in batches of 4: code "));
      const [, examples, steps] = note?.match(/code (\d+) examples → (\d+) steps$/) ?? [];
      expect(Number(examples)).toBeGreaterThan(50);
      expect(Number(examples)).toBeLessThanOrEqual(60);
      expect(Number(steps)).toBe(Math.ceil((0.5 * Number(examples)) / 4));
      const sftCurve = results.curves.find((c) => c.phase === "sft")!;
      expect(sftCurve.points.filter((p) => p.trainLoss !== undefined).at(-1)?.step).toBe(Number(steps));
    } finally {
      await rm(dir3, { recursive: true, force: true });
    }
  });

  it("optimizer offload (pretraining and SFT) trains the same models as the optimizer on the device", async () => {
    const offDir = await mkdtemp(join(tmpdir(), "midtrain-offload-"));
    try {
      const offloaded = parseExperimentConfig({
        ...config,
        pretrain: { ...config.pretrain, optimizer: { ...config.pretrain.optimizer, offload: true } },
        sft: { ...config.sft!, optimizer: { ...config.sft!.optimizer, offload: true } },
      });
      const { tf } = await initBackend({ prefer: "wasm" });
      const before = tf.memory().numTensors;
      const results = await runExperiment(offloaded, { env: nodeEnv(offDir) });
      expect(tf.memory().numTensors).toBe(before);
      // Same seeds, same split, the same update arithmetic: every reported loss equals the run
      // above to float32 rounding (measured: at most 6e-8 relative; the global gradient norm
      // sums host gradients in another order, so the clip factor can differ in its last bit).
      const reference = JSON.parse(readFileSync(join(dir, "results.json"), "utf8")) as typeof results;
      const losses = (r: typeof results) => r.rows.flatMap((x) => [x.sftLoss.mean, x.generalLossAfterSft.mean, x.generalLossBeforeSft!.mean]);
      expect(results.rows.map((r) => r.branch)).toEqual(reference.rows.map((r) => r.branch));
      const [mine, theirs] = [losses(results), losses(reference)];
      for (const [i, v] of mine.entries()) expect(Math.abs(v - theirs[i]) / theirs[i]).toBeLessThan(1e-6);
    } finally {
      await rm(offDir, { recursive: true, force: true });
    }
  });

  it("refuses to reuse a run folder for a different config", async () => {
    const other = { ...config, pretrain: { ...config.pretrain, steps: 13 } };
    await expect(runExperiment(other, { env: nodeEnv(dir) })).rejects.toThrow(/different config/);
    expect(existsSync(join(dir, "plan.json"))).toBe(true);
  });
});
