import { initBackend } from "@midtrain/backend";
import { createModel, getModelConfig, type ModelConfig } from "@midtrain/model";
import { describe, expect, it } from "vitest";
import { AdamW } from "../src/adamw.js";
import { computeGradients, disposeGradients } from "../src/grads.js";
import { trainPhase } from "../src/train.js";
import { cpu, mixerFor, SEQ, sources, tinyConfig, tinyModel } from "./helpers.js";
import {
  assertFitsMemory,
  estimateTrainingMemory,
  largestFitting,
  MemoryBudgetError,
  parseMemorySize,
  planMicroBatches,
  WASM_HEAP_LIMIT_BYTES,
} from "../src/memory.js";

function shape(d: number, L: number, H: number, V: number, T: number): ModelConfig {
  return getModelConfig("tiny-1m", { dModel: d, nLayer: L, nHead: H, vocabSize: V, seqLen: T });
}

/** Peak tensor bytes (tf.profile) of the second of two steps (AdamW moments exist by then), whole logits. */
async function measuredPeak(cfg: ModelConfig, B: number, accum: number, recompute = false, lossChunk = 0): Promise<number> {
  const { tf } = await initBackend({ prefer: "wasm", onNotice: () => {} });
  tf.env().set("CHECK_COMPUTATION_FOR_ERRORS", false);
  const model = createModel(cfg, { seed: 0, recompute, lossChunkTokens: lossChunk });
  const opt = new AdamW();
  const n = B * cfg.seqLen;
  const inputs = new Int32Array(n);
  const targets = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    inputs[i] = (i * 7919) % cfg.vocabSize;
    targets[i] = (i * 104729 + 3) % cfg.vocabSize;
  }
  const micro = Array.from({ length: accum }, () => ({ batchSize: B, seqLen: cfg.seqLen, inputs, targets, mask: new Float32Array(n).fill(1) }));
  const step = async () => {
    const g = computeGradients(model, micro);
    opt.apply(model.params, g.grads, 1e-4);
    disposeGradients(g);
  };
  try {
    const before = tf.memory().numTensors;
    await step();
    const info = await tf.profile(step);
    expect(tf.memory().numTensors).toBe(before + 2 * model.params.size); // the moments, nothing else
    return info.peakBytes;
  } finally {
    opt.dispose();
    model.dispose();
  }
}

describe("memory plan", () => {
  // Shapes the coefficients were not fitted on (different widths, heads, vocabularies, lengths).
  const cases: Array<[string, ModelConfig, number, number, boolean, number]> = [
    ["d96 3L 3H V1000 T96 B3 accum 2", shape(96, 3, 3, 1000, 96), 3, 2, false, 0],
    ["d192 2L 6H V512 T160 B2", shape(192, 2, 6, 512, 160), 2, 1, false, 0],
    ["d64 4L 2H V2000 T192 B1 accum 3", shape(64, 4, 2, 2000, 192), 1, 3, false, 0],
    ["d96 3L 3H V1000 T96 B3, recomputation", shape(96, 3, 3, 1000, 96), 3, 1, true, 0],
    ["d64 2L 2H V12000 T128 B2, loss in chunks of 48 tokens", shape(64, 2, 2, 12000, 128), 2, 1, false, 48],
  ];
  for (const [name, cfg, B, accum, recompute, lossChunk] of cases) {
    it(`estimates the measured peak tensor bytes on wasm within 20%: ${name}`, async () => {
      const measured = await measuredPeak(cfg, B, accum, recompute, lossChunk);
      const est = estimateTrainingMemory({ model: cfg, seqLen: cfg.seqLen, microBatch: B, gradAccum: accum, backend: "wasm", recompute, lossChunk });
      expect(Math.abs(est.total - measured) / measured).toBeLessThan(0.2);
    }, 60_000);
  }

  it("counts the parts: moments are 2x the parameters, accumulation adds a second gradient set, T² attention scores", () => {
    const cfg = getModelConfig("pythia-70m");
    const a = estimateTrainingMemory({ model: cfg, seqLen: 512, microBatch: 1, backend: "cpu", lossChunk: 0 });
    const b = estimateTrainingMemory({ model: cfg, seqLen: 512, microBatch: 1, gradAccum: 4, backend: "cpu", lossChunk: 0 });
    expect(a.optimizer).toBe(2 * a.params);
    expect(a.grads).toBe(a.params);
    expect(b.grads).toBe(2 * a.params);
    expect(a.params).toBe(4 * 70426624);
    const long = estimateTrainingMemory({ model: cfg, seqLen: 1024, microBatch: 1, backend: "cpu", lossChunk: 0 });
    const two = estimateTrainingMemory({ model: cfg, seqLen: 512, microBatch: 2, backend: "cpu", lossChunk: 0 });
    expect(long.activations).toBeGreaterThan(two.activations); // same tokens, 2x the scores
    const rc = estimateTrainingMemory({ model: cfg, seqLen: 1024, microBatch: 1, backend: "cpu", recompute: true, lossChunk: 0 });
    expect(rc.activations).toBeLessThan(long.activations / 3);
    const chunked = estimateTrainingMemory({ model: cfg, seqLen: 1024, microBatch: 1, backend: "cpu", lossChunk: 128 });
    expect(chunked.loss).toBeLessThan(long.loss / 4);
    expect(chunked.largestTensor.bytes).toBeLessThan(long.largestTensor.bytes);
    const auto = estimateTrainingMemory({ model: cfg, seqLen: 1024, microBatch: 1, backend: "cpu" });
    expect(auto.loss).toBeLessThan(long.loss);
  });

  it("derives micro-batch and accumulation that fit, keeping the sequences per step", () => {
    const cfg = getModelConfig("pythia-70m");
    const base = { model: cfg, seqLen: 2048, backend: "cuda" as const, batchSize: 1024, recompute: false };
    const plan = planMicroBatches({ ...base, budget: { bytes: 80e9 }, preferGradAccum: 1 });
    expect(plan.microBatch * plan.gradAccum).toBe(1024);
    expect(plan.changed).toBe(true);
    expect(plan.estimate.total).toBeLessThanOrEqual(80e9);
    // The next larger micro-batch (dividing 1024) would not fit.
    const bigger = estimateTrainingMemory({ ...base, microBatch: plan.microBatch * 2, gradAccum: plan.gradAccum / 2 });
    expect(bigger.total).toBeGreaterThan(80e9);
    // A split that fits is kept.
    const kept = planMicroBatches({ ...base, budget: { bytes: 80e9 }, preferGradAccum: plan.gradAccum * 2 });
    expect(kept).toMatchObject({ microBatch: plan.microBatch / 2, gradAccum: plan.gradAccum * 2, changed: false });
    // A per-tensor limit (WebGPU) lowers the micro-batch further.
    const limited = planMicroBatches({ ...base, budget: { bytes: 80e9, maxTensorBytes: 2 ** 30 }, lossChunk: 0 });
    expect(limited.estimate.largestTensor.bytes).toBeLessThanOrEqual(2 ** 30);
    expect(limited.microBatch).toBeLessThan(plan.microBatch);
  });

  it("refuses a step that cannot fit, naming the largest micro-batch and sequence length that do", () => {
    const cfg = getModelConfig("pythia-160m");
    const input = { model: cfg, seqLen: 2048, microBatch: 4, backend: "wasm" as const };
    const budget = { bytes: WASM_HEAP_LIMIT_BYTES, source: "the wasm heap" };
    let err: unknown;
    try {
      assertFitsMemory(input, budget);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(MemoryBudgetError);
    const e = err as MemoryBudgetError;
    const best = largestFitting(input, budget);
    expect(e.largestMicroBatch).toBe(best.microBatch);
    expect(e.largestSeqLen).toBe(best.seqLen);
    expect(e.message).toContain("the wasm heap");
    if (best.seqLen > 0) {
      expect(estimateTrainingMemory({ ...input, microBatch: 1, seqLen: best.seqLen }).total).toBeLessThanOrEqual(budget.bytes);
      expect(estimateTrainingMemory({ ...input, microBatch: 1, seqLen: best.seqLen + 1 }).total).toBeGreaterThan(budget.bytes);
      expect(e.message).toContain(`${best.seqLen} tokens`);
    }
    expect(() => planMicroBatches({ ...input, batchSize: 8, budget: { bytes: 1e8 } })).toThrow(MemoryBudgetError);
    expect(() => estimateTrainingMemory({ ...input, seqLen: 4096 })).toThrow(/longer than the model's context \(2048\)/);
    expect(() => estimateTrainingMemory({ ...input, microBatch: 0 })).toThrow(/microBatch must be a positive integer/);
  });

  it("parses memory sizes", () => {
    expect(parseMemorySize("80GB")).toBe(80e9);
    expect(parseMemorySize("80 GiB")).toBe(80 * 2 ** 30);
    expect(parseMemorySize("512mb")).toBe(512e6);
    expect(parseMemorySize("1234")).toBe(1234);
    expect(() => parseMemorySize("lots")).toThrow(/not a size/);
    expect(() => parseMemorySize("0GB")).toThrow(/above zero/);
  });

  it("a plan-derived split (micro-batches x gradAccum) trains to the same weights as one big batch per step", async () => {
    const tf = await cpu();
    const cfg = tinyConfig();
    const batchSize = 8;
    const one = estimateTrainingMemory({ model: cfg, seqLen: SEQ, microBatch: batchSize, backend: "cpu" });
    // A budget just under the whole batch: the plan has to split it.
    const plan = planMicroBatches({ model: cfg, seqLen: SEQ, backend: "cpu", batchSize, budget: { bytes: one.total - 1 } });
    expect(plan.gradAccum).toBeGreaterThan(1);
    expect(plan.microBatch * plan.gradAccum).toBe(batchSize);
    const run = async (gradAccum: number) => {
      const model = tinyModel(3);
      const optimizer = new AdamW();
      await trainPhase({
        model,
        optimizer,
        mixer: mixerFor(sources(), { general: 1 }, { only: ["general"] }),
        lr: { at: () => 1e-3 },
        phase: { name: "p", steps: 3, batchSize, gradAccum, clipNorm: 1 },
        evalAtEnd: false,
      });
      const w = new Map(await Promise.all([...model.params].map(async ([k, v]) => [k, (await v.data()) as Float32Array] as const)));
      optimizer.dispose();
      model.dispose();
      return w;
    };
    const before = tf.memory().numTensors;
    const init = tinyModel(3);
    const start = new Map(await Promise.all([...init.params].map(async ([k, v]) => [k, (await v.data()) as Float32Array] as const)));
    init.dispose();
    const big = await run(1);
    const split = await run(plan.gradAccum);
    let maxDiff = 0;
    let moved = 0;
    for (const [k, a] of big) {
      const b = split.get(k)!;
      const s0 = start.get(k)!;
      for (let i = 0; i < a.length; i++) {
        maxDiff = Math.max(maxDiff, Math.abs(a[i] - b[i]));
        moved = Math.max(moved, Math.abs(a[i] - s0[i]));
      }
    }
    // Three AdamW steps of lr 1e-3 move weights by up to ~3e-3; the two runs differ by float32 rounding only.
    expect(moved).toBeGreaterThan(2e-3);
    expect(maxDiff).toBeLessThan(5e-5);
    expect(tf.memory().numTensors).toBe(before);
  }, 60_000);
});
