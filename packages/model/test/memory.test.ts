/**
 * Memory options: the chunked (fused linear + cross-entropy) loss and per-block activation
 * recomputation give the plain path's values and gradients, on every backend, without leaks.
 * The reference is the plain path (full logits, every activation kept), which parity.test.ts
 * checks against PyTorch.
 */
import { type BackendName, initBackend, probeBackend, requiredBackends, type TF } from "@midtrain/backend";
import type * as tfc from "@tensorflow/tfjs-core";
import { describe, expect, it } from "vitest";
import {
  checkBufferLimits,
  createModel,
  type GPTNeoXModel,
  getModelConfig,
  LOSS_CHUNK_AUTO_BYTES,
  type LossOptions,
  ModelConfigError,
  ModelInputError,
  modelFromHfTensors,
  resolveLossChunkTokens,
} from "../src/index.js";
import { maxAbs, maxAbsDiff } from "./helpers.js";

const B = 3;
const T = 16;
const config = getModelConfig("tiny-1m", { nLayer: 2, dModel: 64, nHead: 4, seqLen: 32 });

/** Deterministic ids/targets in [0, 258) and an SFT-style mask: the first tokens of each row are a prompt (0). */
function batch(tf: TF) {
  const ids = Int32Array.from({ length: B * T }, (_, i) => (i * 37 + 11) % 258);
  const targets = Int32Array.from({ length: B * T }, (_, i) => (i * 53 + 5) % 258);
  const mask = Float32Array.from({ length: B * T }, (_, i) => (i % T < 3 + (Math.floor(i / T) % 2) * 4 ? 0 : 1));
  return {
    ids: tf.tensor2d(ids, [B, T], "int32") as tfc.Tensor2D,
    targets: tf.tensor2d(targets, [B, T], "int32") as tfc.Tensor2D,
    mask: tf.tensor2d(mask, [B, T]) as tfc.Tensor2D,
    /** Per-token weights that are not a mask (as a per-row normalization would give). */
    weights: tf.tensor2d(
      Float32Array.from({ length: B * T }, (_, i) => mask[i] * (0.25 + (i % 7) / 5)),
      [B, T],
    ) as tfc.Tensor2D,
  };
}

interface Result {
  loss: number;
  grads: Map<string, Float32Array>;
}

/** Loss value and every parameter gradient of `f`, read back; disposes what it made. */
async function lossAndGrads(tf: TF, model: GPTNeoXModel, f: () => tfc.Scalar): Promise<Result> {
  const { value, grads } = tf.variableGrads(f, model.variables());
  const out = new Map<string, Float32Array>();
  const byVar = new Map(model.variables().map((v, k) => [v.name, model.specs[k].name]));
  for (const [varName, g] of Object.entries(grads)) out.set(byVar.get(varName)!, (await g.data()) as Float32Array);
  const loss = (await value.data())[0];
  tf.dispose([value, ...Object.values(grads)]);
  return { loss, grads: out };
}

/** Largest gradient difference relative to the largest reference gradient, over all parameters. */
function gradError(a: Result, ref: Result): number {
  expect([...a.grads.keys()].sort()).toEqual([...ref.grads.keys()].sort());
  expect(ref.grads.size).toBe(config.nLayer * 12 + 4);
  let e = 0;
  for (const [name, g] of ref.grads) e = Math.max(e, maxAbsDiff(a.grads.get(name)!, g) / Math.max(maxAbs(g), 1e-12));
  return e;
}

/** The three loss forms the trainer uses: masked mean, weighted per-token sum (perRow path), plain mean. */
function objectives(tf: TF, model: GPTNeoXModel, b: ReturnType<typeof batch>, opts: LossOptions) {
  return {
    masked: () => model.loss(b.ids, b.targets, b.mask, opts),
    weighted: () => tf.sum(tf.mul(model.perTokenLoss(b.ids, b.targets, opts), b.weights)) as tfc.Scalar,
    mean: () => model.loss(b.ids, b.targets, undefined, opts),
  };
}

interface Case {
  name: string;
  backend: BackendName;
  nativeBlas?: boolean;
  /** Bounds on |Δloss| / loss and on the relative gradient error. */
  tol: { loss: number; grad: number };
}

const cases: Case[] = [
  { name: "cpu", backend: "cpu", tol: { loss: 1e-6, grad: 1e-5 } },
  { name: "wasm", backend: "wasm", nativeBlas: false, tol: { loss: 2e-6, grad: 2e-5 } },
  { name: "wasm + native kernels", backend: "wasm", nativeBlas: true, tol: { loss: 2e-6, grad: 2e-5 } },
  { name: "webgpu", backend: "webgpu", tol: { loss: 2e-5, grad: 1e-4 } },
];

for (const c of cases) {
  const probe = await probeBackend(c.backend, c.nativeBlas === undefined ? {} : { nativeBlas: c.nativeBlas });
  const required = c.backend === "webgpu" ? requiredBackends().includes("webgpu") : c.nativeBlas === true ? process.env.CI === "true" : true;
  if (!probe.ok && required) throw new Error(`required backend ${c.name} cannot start: ${probe.reason}`);
  const title = `memory options on ${c.name}`;
  describe.skipIf(!probe.ok)(probe.ok ? title : `${title} [skipped: ${c.name} cannot start here: ${probe.reason}]`, () => {
    const start = async () => {
      const r = await initBackend({ prefer: c.backend, ...(c.nativeBlas === undefined ? {} : { nativeBlas: c.nativeBlas }), onNotice: () => {} });
      if (r.backend !== c.backend) throw new Error(`asked for ${c.backend}, got ${r.backend}`);
      return r.tf;
    };

    it("the chunked loss equals the full-logits loss: values and every parameter gradient (masked, weighted, mean)", async () => {
      const tf = await start();
      const model = createModel(config, { seed: 3 });
      const b = batch(tf);
      try {
        for (const [form, ref] of Object.entries(objectives(tf, model, b, { lossChunkTokens: 0 }))) {
          const plain = await lossAndGrads(tf, model, ref);
          // 7 rows per chunk: 7 chunks, the last one short; B·T rows: one chunk through the fused op.
          for (const chunk of [7, B * T]) {
            const f = objectives(tf, model, b, { lossChunkTokens: chunk })[form as keyof ReturnType<typeof objectives>];
            const r = await lossAndGrads(tf, model, f);
            expect(Math.abs(r.loss - plain.loss) / Math.abs(plain.loss), `${form} loss, chunk ${chunk}`).toBeLessThan(c.tol.loss);
            expect(gradError(r, plain), `${form} gradients, chunk ${chunk}`).toBeLessThan(c.tol.grad);
          }
        }
        // Per-token values.
        const plainNll = model.perTokenLoss(b.ids, b.targets, { lossChunkTokens: 0 });
        const chunkNll = model.perTokenLoss(b.ids, b.targets, { lossChunkTokens: 5 });
        expect(maxAbsDiff(await chunkNll.data(), await plainNll.data())).toBeLessThan(c.tol.loss * 10);
        tf.dispose([plainNll, chunkNll]);
      } finally {
        tf.dispose(Object.values(b));
        model.dispose();
      }
    });

    it("recomputation per block gives the plain path's gradients, alone and with the chunked loss", async () => {
      const tf = await start();
      const model = createModel(config, { seed: 4 });
      const b = batch(tf);
      try {
        const plain = await lossAndGrads(tf, model, () => model.loss(b.ids, b.targets, b.mask, { lossChunkTokens: 0 }));
        model.setMemoryOptions({ recompute: true });
        const re = await lossAndGrads(tf, model, () => model.loss(b.ids, b.targets, b.mask, { lossChunkTokens: 0 }));
        const both = await lossAndGrads(tf, model, () => model.loss(b.ids, b.targets, b.mask, { lossChunkTokens: 10 }));
        // The recomputed forward is the same ops on the same inputs: the same loss (bit for bit on the CPU backends).
        if (c.backend === "webgpu") expect(Math.abs(re.loss - plain.loss) / plain.loss).toBeLessThan(c.tol.loss);
        else expect(re.loss).toBe(plain.loss);
        const e = gradError(re, plain);
        if (c.backend === "cpu") expect(e, "bit-identical gradients on cpu").toBe(0);
        expect(e).toBeLessThan(c.tol.grad);
        expect(Math.abs(both.loss - plain.loss) / plain.loss).toBeLessThan(c.tol.loss);
        expect(gradError(both, plain)).toBeLessThan(c.tol.grad);
        // parallelResidual false takes the other residual path through the recomputed block.
        const seq = createModel({ ...config, parallelResidual: false }, { seed: 4 });
        try {
          const p2 = await lossAndGrads(tf, seq, () => seq.loss(b.ids, b.targets, b.mask));
          seq.setMemoryOptions({ recompute: true });
          const r2 = await lossAndGrads(tf, seq, () => seq.loss(b.ids, b.targets, b.mask));
          expect(gradError(r2, p2)).toBeLessThan(c.tol.grad);
        } finally {
          seq.dispose();
        }
      } finally {
        tf.dispose(Object.values(b));
        model.dispose();
      }
    });

    it("no tensor leaks: training steps with recomputation and the chunked loss keep the tensor count", async () => {
      const tf = await start();
      const model = createModel(config, { seed: 5, recompute: true, lossChunkTokens: 9 });
      const b = batch(tf);
      try {
        const step = () => {
          const { value, grads } = tf.variableGrads(() => model.loss(b.ids, b.targets, b.mask), model.variables());
          tf.tidy(() => {
            for (const v of model.variables()) v.assign(tf.sub(v, tf.mul(grads[v.name], 1e-3)));
          });
          tf.dispose([value, ...Object.values(grads)]);
        };
        step();
        const after1 = tf.memory().numTensors;
        step();
        step();
        expect(tf.memory().numTensors).toBe(after1);
        // Evaluation without a tape (no saved tensors) also leaves nothing.
        const nll = model.perTokenLoss(b.ids, b.targets);
        nll.dispose();
        expect(tf.memory().numTensors).toBe(after1);
      } finally {
        tf.dispose(Object.values(b));
        model.dispose();
      }
    });
  });
}

describe("loss chunking options", () => {
  it('"auto" builds the full logits up to LOSS_CHUNK_AUTO_BYTES and chunks above, within a WebGPU buffer', () => {
    const V = 50304;
    const fit = Math.floor(LOSS_CHUNK_AUTO_BYTES / (4 * V));
    expect(resolveLossChunkTokens(fit, V)).toBe(0);
    expect(resolveLossChunkTokens(fit + 1, V)).toBe(fit);
    expect(resolveLossChunkTokens(2048, V, "auto")).toBe(fit);
    // A buffer limit below the budget bounds the chunk.
    const limits = { maxStorageBufferBindingSize: 16 * 1024 * 1024, maxBufferSize: 1 << 30 };
    expect(resolveLossChunkTokens(2048, V, "auto", limits)).toBe(Math.floor((16 * 1024 * 1024) / (4 * V)));
    expect(resolveLossChunkTokens(2048, V, 0)).toBe(0);
    expect(resolveLossChunkTokens(2048, V, 100)).toBe(100);
    expect(resolveLossChunkTokens(50, V, 100)).toBe(50);
    for (const bad of [-1, 1.5, "big", Number.NaN]) {
      expect(() => resolveLossChunkTokens(10, V, bad as number)).toThrow(ModelConfigError);
    }
  });

  it("invalid memory options are refused with the field named", async () => {
    await initBackend({ prefer: "cpu", onNotice: () => {} });
    expect(() => createModel(config, { recompute: "yes" as unknown as boolean })).toThrow(/options\.recompute must be a boolean/);
    expect(() => createModel(config, { lossChunkTokens: -3 })).toThrow(/options\.lossChunkTokens must be "auto", 0/);
    const m = createModel(config, { lossChunkTokens: 64 });
    try {
      expect(m.memoryOptions).toEqual({ recompute: false, lossChunkTokens: 64 });
      expect(() => m.setMemoryOptions({ lossChunkTokens: 2.5 })).toThrow(ModelConfigError);
      expect(m.memoryOptions.lossChunkTokens).toBe(64); // unchanged after a refused change
      expect(m.lossChunkTokensFor(48)).toBe(48);
      expect(m.lossChunkTokensFor(48, { lossChunkTokens: "auto" })).toBe(0);
      const copy = modelFromHfTensors(config, await m.toHfTensors(), { recompute: true });
      expect(copy.memoryOptions).toEqual({ recompute: true, lossChunkTokens: "auto" });
      copy.dispose();
      expect(() => modelFromHfTensors(config, new Map(), { lossChunkTokens: "many" as never })).toThrow(ModelConfigError);
    } finally {
      m.dispose();
    }
  });

  it("with the Pythia vocabulary the model chunks by default: a training step's peak tensor bytes are a fraction of the full-logits step's", async () => {
    const { tf } = await initBackend({ prefer: "wasm", nativeBlas: false, onNotice: () => {} });
    // Pythia vocabulary with a tiny trunk: 400 tokens × 50304 logits = 80 MB, over the auto budget.
    const big = getModelConfig("pythia-14m", { nLayer: 1, dModel: 16, nHead: 2, seqLen: 200 });
    const m = createModel(big, { seed: 0 });
    const ids = tf.tensor2d(
      Int32Array.from({ length: 2 * 200 }, (_, i) => (i * 7919) % 50000),
      [2, 200],
      "int32",
    ) as tfc.Tensor2D;
    try {
      const logitsBytes = 2 * 200 * big.paddedVocabSize * 4;
      expect(logitsBytes).toBeGreaterThan(LOSS_CHUNK_AUTO_BYTES);
      const chunk = m.lossChunkTokensFor(2 * 200);
      expect(chunk).toBe(Math.floor(LOSS_CHUNK_AUTO_BYTES / (4 * big.paddedVocabSize)));
      const step = async (opts: LossOptions) => {
        let loss = 0;
        const prof = await tf.profile(async () => {
          const { value, grads } = tf.variableGrads(() => m.loss(ids, ids, undefined, opts), m.variables());
          loss = (await value.data())[0];
          tf.dispose([value, ...Object.values(grads)]);
        });
        return { loss, peak: prof.peakBytes - prof.newBytes };
      };
      const auto = await step({});
      const plain = await step({ lossChunkTokens: 0 });
      expect(Math.abs(auto.loss - plain.loss)).toBeLessThan(1e-5);
      // A chunk's working set is about three [chunk, V] tensors; the full path holds several [400, V] ones.
      expect(auto.peak).toBeLessThan(4 * chunk * big.paddedVocabSize * 4 + (4 * logitsBytes) / 10);
      expect(auto.peak).toBeLessThan(plain.peak / 2);
      console.log(`peak tensor bytes of one step: auto chunks ${auto.peak}, full logits ${plain.peak}`);
    } finally {
      ids.dispose();
      m.dispose();
    }
  });
});

describe("WebGPU buffer limits (pure check, any backend)", () => {
  const limits = { maxStorageBufferBindingSize: 128 * 1024 * 1024, maxBufferSize: 256 * 1024 * 1024 };
  it("names the tensor, the limit and the fix", () => {
    const p160 = getModelConfig("pythia-160m");
    expect(() => checkBufferLimits(p160, { batch: 1, seqLen: 128, lossChunkTokens: 64, call: "loss" }, limits)).toThrow(
      /parameter 'gpt_neox\.embed_in\.weight' \[50304, 768\] needs 154533888 bytes, more than this WebGPU device allows for one buffer \(maxStorageBufferBindingSize 134217728\); this model cannot run on this adapter/,
    );
    const p70 = getModelConfig("pythia-70m");
    expect(() => checkBufferLimits(p70, { batch: 2, seqLen: 2048, lossChunkTokens: 300, call: "loss" }, limits)).toThrow(
      /the attention scores \[batch·nHead, T, T\] \[16, 2048, 2048\] .*use a smaller micro-batch: at most 1 sequences of 2048 tokens/,
    );
    expect(() => checkBufferLimits(p70, { batch: 1, seqLen: 2048, lossChunkTokens: 0, call: "loss" }, limits)).toThrow(
      /the logits \[batch·T, paddedVocabSize\] \[2048, 50304\] .*use at most 667 tokens per micro-batch .*lossChunkTokens "auto"/,
    );
    expect(() => checkBufferLimits(p70, { batch: 1, seqLen: 2048, lossChunkTokens: 1000, call: "loss" }, limits)).toThrow(
      /one loss chunk's logits .*set lossChunkTokens to at most 667/,
    );
    expect(() => checkBufferLimits(p70, { batch: 1, seqLen: 2048, lossChunkTokens: 0, call: "forward" }, limits)).toThrow(/per forward\(\) call/);
    expect(() => checkBufferLimits(p70, { batch: 1, seqLen: 2048, lossChunkTokens: 0, call: "hidden" }, limits)).not.toThrow();
    // Fits: pythia-70m at 2,048 tokens with the auto chunk.
    const chunk = resolveLossChunkTokens(2048, p70.paddedVocabSize, "auto", limits);
    expect(() => checkBufferLimits(p70, { batch: 1, seqLen: 2048, lossChunkTokens: chunk, call: "loss" }, limits)).not.toThrow();
    // maxBufferSize is named when it is the smaller limit.
    expect(() =>
      checkBufferLimits(p70, { batch: 1, seqLen: 2048, lossChunkTokens: 64, call: "loss" }, { maxStorageBufferBindingSize: 1 << 30, maxBufferSize: 64 << 20 }),
    ).toThrow(/\(maxBufferSize 67108864\)/);
    expect(() => checkBufferLimits(p160, { batch: 1, seqLen: 8, lossChunkTokens: 0, call: "loss" }, limits)).toThrow(ModelInputError);
  });
});
