/**
 * Optimizer offload (AdamW `offload: true`): moments and the gradient accumulator in host memory.
 * Everything is compared bitwise with the device placement: the host update runs the fused
 * kernel's arithmetic, the host accumulator float32 additions in the device's order.
 */
import { initBackend } from "@midtrain/backend";
import { getModelConfig } from "@midtrain/model";
import { buildLrSchedule } from "@midtrain/schedulers";
import * as tf from "@tensorflow/tfjs-core";
import { beforeAll, describe, expect, it } from "vitest";
import {
  AdamW,
  computeGradients,
  computeGradientsOnHost,
  disposeGradients,
  estimateTrainingMemory,
  listCheckpoints,
  loadCheckpoint,
  MemorySink,
  MemoryStorage,
  type MicroBatch,
  planMicroBatches,
  resume,
  TrainerConfigError,
  trainPhase,
  WASM_HEAP_LIMIT_BYTES,
} from "../src/index.js";
import { bitDiff, cpu, mixerFor, paramValues, SEQ, sources, tinyModel } from "./helpers.js";

const LR = { type: "cosine", peak: 1e-2, min: 1e-3, warmup: 2, total: 12 };
const src = sources();
const generalMixer = () => mixerFor(src, { general: 1 }, { only: ["general"] });

function seeded(n: number, seed: number, scale = 1): Float32Array {
  let x = seed >>> 0 || 1;
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    x = (Math.imul(x, 1664525) + 1013904223) >>> 0;
    out[i] = ((x / 2 ** 32) * 2 - 1) * scale;
  }
  return out;
}

const SHAPES: Record<string, number[]> = { "layers.0.dense.weight": [37, 29], "layers.0.dense.bias": [29], "layers.0.input_layernorm.weight": [29] };

function params(): Map<string, tf.Variable> {
  return new Map(
    Object.entries(SHAPES).map(([n, s], i) => [
      n,
      tf.variable(
        tf.tensor(
          seeded(
            s.reduce((a, b) => a * b, 1),
            10 + i,
          ),
          s,
        ),
      ),
    ]),
  );
}

async function values(ps: Map<string, tf.Variable>): Promise<Map<string, Float32Array>> {
  const out = new Map<string, Float32Array>();
  for (const [k, v] of ps) out.set(k, ((await v.data()) as Float32Array).slice());
  return out;
}

function microBatches(n: number, rows: number, seed: number): MicroBatch[] {
  return Array.from({ length: n }, (_, k) => {
    const ids = seeded(rows * (SEQ + 1), seed + k).map((x) => Math.floor(Math.abs(x) * 250));
    const inputs = new Int32Array(rows * SEQ);
    const targets = new Int32Array(rows * SEQ);
    for (let r = 0; r < rows; r++) {
      for (let t = 0; t < SEQ; t++) {
        inputs[r * SEQ + t] = ids[r * (SEQ + 1) + t];
        targets[r * SEQ + t] = ids[r * (SEQ + 1) + t + 1];
      }
    }
    // Some masked positions, unevenly: the token weighting of the micro-batches matters.
    const mask = new Float32Array(rows * SEQ).map((_, i) => (i % (5 + k) === 0 ? 0 : 1));
    return { batchSize: rows, seqLen: SEQ, inputs, targets, mask };
  });
}

describe("AdamW with offload: true", () => {
  for (const backend of ["cpu", "wasm"] as const) {
    it(`on ${backend}: update equals the device update bitwise over 3 steps, moments too; no tensors left behind`, async () => {
      await initBackend({ prefer: backend, onNotice: () => {} });
      expect(tf.getBackend()).toBe(backend);
      const [pd, ph, pu] = [params(), params(), params()];
      const device = new AdamW({ weightDecay: 0.1 });
      const host = new AdamW({ weightDecay: 0.1, offload: true });
      const viaUpdate = new AdamW({ weightDecay: 0.1 }); // the device placement through update() with host gradients
      expect(host.offload).toBe(true);
      expect(host.config).toEqual(device.config); // the placement is not a hyper-parameter
      const before = tf.memory().numTensors;
      for (const [step, lr] of [1e-2, 3e-3, 1e-3].entries()) {
        const grads = new Map([...pd].map(([n, p], i) => [n, tf.tensor(seeded(p.size, 100 * step + i, 0.1), p.shape)]));
        device.apply(pd, grads, lr);
        // Host gradients as Float32Arrays (an accumulator's) and as tensors both work.
        const hostGrads = new Map<string, tf.Tensor | Float32Array>();
        for (const [n, g] of grads) hostGrads.set(n, step === 1 ? g : ((await g.data()) as Float32Array).slice());
        await host.update(ph, hostGrads, lr);
        const arrays = new Map<string, Float32Array>();
        for (const [n, g] of grads) arrays.set(n, ((await g.data()) as Float32Array).slice());
        await viaUpdate.update(pu, arrays, lr);
        tf.dispose([...grads.values()]);
      }
      expect(tf.memory().numTensors).toBe(before + 4 * pd.size); // the two device optimizers' moments only
      viaUpdate.dispose();
      const [a, b, c] = [await values(pd), await values(ph), await values(pu)];
      for (const [k, v] of a) expect(bitDiff(v, b.get(k)!) + bitDiff(v, c.get(k)!), k).toBe(0);
      const [sd, sh] = [await device.getState(), await host.getState()];
      expect(sh.step).toBe(3);
      for (const k of Object.keys(SHAPES)) {
        expect(bitDiff(sd.m[k], sh.m[k])).toBe(0);
        expect(bitDiff(sd.v[k], sh.v[k])).toBe(0);
      }
      expect(host.shapes()).toEqual(device.shapes());
      // getState returns copies: changing them does not change the optimizer.
      sh.m["layers.0.dense.bias"][0] = 123;
      expect((await host.getState()).m["layers.0.dense.bias"][0]).not.toBe(123);
      device.dispose();
      host.dispose();
      expect(tf.memory().numTensors).toBe(before);
      tf.dispose([...pd.values(), ...ph.values(), ...pu.values()]);
    });
  }

  it("refuses the synchronous apply, a non-boolean offload and a gradient of the wrong size, saying what to do", async () => {
    await cpu();
    const ps = params();
    const host = new AdamW({ offload: true });
    const g = new Map([["layers.0.dense.bias", tf.zeros([29])]]);
    expect(() => host.apply(ps, g, 1e-3)).toThrow(/await optimizer.update/);
    expect(() => new AdamW({ offload: "yes" as unknown as boolean })).toThrow(TrainerConfigError);
    await expect(host.update(ps, new Map([["layers.0.dense.bias", new Float32Array(3)]]), 1e-3)).rejects.toThrow(/3 values/);
    tf.dispose([...g.values(), ...ps.values()]);
  });
});

describe("gradient accumulation on the host", () => {
  beforeAll(cpu);

  it("computeGradientsOnHost equals computeGradients bitwise (3 token-weighted micro-batches, per-row losses) and leaks nothing", async () => {
    const model = tinyModel(5);
    const micro = microBatches(3, 2, 7);
    const before = tf.memory().numTensors;
    const d = computeGradients(model, micro, { perRow: true });
    const h = await computeGradientsOnHost(model, micro, { perRow: true });
    expect(h.lossTokens).toBe(d.lossTokens);
    expect(Object.is((await h.loss.data())[0], (await d.loss.data())[0])).toBe(true);
    expect(bitDiff((await h.rowLossSums!.data()) as Float32Array, (await d.rowLossSums!.data()) as Float32Array)).toBe(0);
    expect([...h.grads.keys()].sort()).toEqual([...d.grads.keys()].sort());
    for (const [k, t] of d.grads) expect(bitDiff((await t.data()) as Float32Array, h.grads.get(k)!), k).toBe(0);
    disposeGradients(d);
    disposeGradients(h);
    expect(tf.memory().numTensors).toBe(before);
    model.dispose();
  });
});

describe("trainPhase with an offloaded optimizer", () => {
  beforeAll(cpu);
  const phase = { name: "pretrain", steps: 8, batchSize: 4, gradAccum: 2 };

  async function run(offload: boolean, clipNorm: number) {
    const model = tinyModel();
    const sink = new MemorySink();
    const optimizer = new AdamW({ offload });
    await trainPhase({ model, mixer: generalMixer(), lr: buildLrSchedule(LR), optimizer, phase: { ...phase, clipNorm }, metrics: sink });
    const out = { records: sink.of("train"), weights: await paramValues(model), state: await optimizer.getState() };
    model.dispose();
    optimizer.dispose();
    return out;
  }

  it("gives bitwise the device run's losses, weights and moments when nothing is clipped; the tensor count stays put", async () => {
    const before = tf.memory().numTensors;
    const [d, h] = [await run(false, 0), await run(true, 0)];
    expect(tf.memory().numTensors).toBe(before);
    expect(h.records.map((r) => r.loss)).toEqual(d.records.map((r) => r.loss));
    for (const [k, v] of d.weights) expect(bitDiff(v, h.weights.get(k)!), k).toBe(0);
    for (const k of Object.keys(d.state.m)) expect(bitDiff(d.state.m[k], h.state.m[k]) + bitDiff(d.state.v[k], h.state.v[k]), k).toBe(0);
    // The gradient norm: float64 over all squares on the host, float32 row partials on the device.
    h.records.forEach((r, i) => {
      expect(Math.abs(r.gradNorm - d.records[i].gradNorm) / d.records[i].gradNorm).toBeLessThan(1e-6);
    });
  });

  it("with clipping agrees to float32 rounding (the clip factor comes from the host's float64 norm)", async () => {
    const [d, h] = [await run(false, 0.5), await run(true, 0.5)];
    expect(d.records.every((r) => r.clipScale < 1)).toBe(true);
    h.records.forEach((r, i) => {
      expect(Math.abs(r.loss - d.records[i].loss) / d.records[i].loss).toBeLessThan(1e-5);
      expect(Math.abs(r.clipScale - d.records[i].clipScale) / d.records[i].clipScale).toBeLessThan(1e-6);
    });
    for (const [k, v] of d.weights) {
      const w = h.weights.get(k)!;
      let worst = 0;
      for (let i = 0; i < v.length; i++) worst = Math.max(worst, Math.abs(v[i] - w[i]));
      expect(worst, k).toBeLessThan(1e-5);
    }
  });

  it("a run stopped between checkpoints and resumed offloaded gives bitwise the uninterrupted run; checkpoints are the device's", async () => {
    const ref = await run(true, 1);
    const storage = new MemoryStorage();
    const crash = new Error("simulated crash");
    await expect(
      trainPhase({
        model: tinyModel(),
        mixer: generalMixer(),
        lr: buildLrSchedule(LR),
        optimizer: new AdamW({ offload: true }),
        phase: { ...phase, clipNorm: 1 },
        checkpoint: { storage, every: 3 },
        onProgress: (e) => {
          if (e.step === 5) throw crash;
        },
      }),
    ).rejects.toBe(crash);
    expect((await listCheckpoints(storage)).map((c) => c.id)).toEqual(["ckpt-3"]);
    // The checkpoint loads into either placement with the same moments.
    const asDevice = await loadCheckpoint(storage, "ckpt-3");
    const asHost = await loadCheckpoint(storage, "ckpt-3", { offloadOptimizer: true });
    expect(asDevice.optimizer!.offload).toBe(false);
    expect(asHost.optimizer!.offload).toBe(true);
    const [sd, sh] = [await asDevice.optimizer!.getState(), await asHost.optimizer!.getState()];
    for (const k of Object.keys(sd.m)) expect(bitDiff(sd.m[k], sh.m[k]) + bitDiff(sd.v[k], sh.v[k])).toBe(0);
    for (const l of [asDevice, asHost]) {
      l.model.dispose();
      l.optimizer!.dispose();
    }
    const before = tf.memory().numTensors;
    const mixer = generalMixer();
    const r = await resume({ storage, mixer, offloadOptimizer: true });
    expect(r.optimizer.offload).toBe(true);
    const sink = new MemorySink();
    await trainPhase({ ...r, mixer, lr: r.lr!, phase: r.phase, metrics: sink });
    const got = sink.of("train");
    expect(got.map((x) => x.step)).toEqual([4, 5, 6, 7, 8]);
    got.forEach((x, i) => {
      expect(Object.is(x.loss, ref.records[3 + i].loss)).toBe(true);
      expect(Object.is(x.gradNorm, ref.records[3 + i].gradNorm)).toBe(true);
    });
    const w = await paramValues(r.model);
    for (const [k, v] of ref.weights) expect(bitDiff(v, w.get(k)!), k).toBe(0);
    r.model.dispose();
    r.optimizer.dispose();
    expect(tf.memory().numTensors).toBe(before);
  });
});

describe("memory plan with offload", () => {
  const p160 = getModelConfig("pythia-160m");
  const base = { model: p160, seqLen: 2048, microBatch: 1, gradAccum: 3, backend: "wasm" as const, recompute: true, lossChunk: "auto" as const };

  it("moves the moments and the accumulator from the device's tensors to host memory", () => {
    const on = estimateTrainingMemory(base);
    const off = estimateTrainingMemory({ ...base, offload: true });
    const P = on.params / 4;
    expect(on.optimizer).toBe(8 * P);
    expect(on.grads).toBe(8 * P);
    expect(on.host).toBe(0);
    expect(off.optimizer).toBe(0);
    expect(off.grads).toBe(4 * P); // one micro-batch's gradients
    expect(Math.abs(off.total - (on.total - 12 * P))).toBeLessThan(1);
    expect(off.host).toBeGreaterThanOrEqual(12 * P);
    expect(Math.abs(off.process - (off.total + off.host + (on.process - on.total)))).toBeLessThan(1);
  });

  it("pythia-160m at 2,048 tokens fits the wasm heap only offloaded; allowOffload picks it, and the refusal names it", () => {
    const budget = { bytes: WASM_HEAP_LIMIT_BYTES, source: "the wasm heap" };
    expect(estimateTrainingMemory(base).total).toBeGreaterThan(budget.bytes);
    expect(estimateTrainingMemory({ ...base, offload: true }).total).toBeLessThan(budget.bytes);
    const input = { ...base, batchSize: 3, preferGradAccum: 3, budget };
    expect(() => planMicroBatches(input)).toThrow(/optimizer offload/);
    const plan = planMicroBatches({ ...input, allowOffload: true });
    expect(plan).toMatchObject({ microBatch: 1, gradAccum: 3, offload: true, changed: false });
    // What fits on the device stays on the device.
    expect(planMicroBatches({ ...input, seqLen: 256, allowOffload: true }).offload).toBe(false);
  });
});
