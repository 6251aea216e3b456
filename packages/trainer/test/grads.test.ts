import * as tf from "@tensorflow/tfjs-core";
import { beforeAll, describe, expect, it } from "vitest";
import { clipGradients, globalNorm } from "../src/grads.js";
import { computeGradients, disposeGradients, evaluate, type MicroBatch } from "../src/index.js";
import { cpu, mixerFor, SEQ, sources, tinyModel, tok } from "./helpers.js";

beforeAll(async () => {
  await cpu();
});

function rows(b: MicroBatch, from: number, to: number): MicroBatch {
  const T = b.seqLen;
  return {
    batchSize: to - from,
    seqLen: T,
    inputs: b.inputs.slice(from * T, to * T),
    targets: b.targets.slice(from * T, to * T),
    mask: b.mask.slice(from * T, to * T),
  };
}

async function maxDiff(a: Map<string, tf.Tensor>, b: Map<string, tf.Tensor>): Promise<number> {
  let m = 0;
  for (const [k, t] of a) {
    const x = await t.data();
    const y = await b.get(k)!.data();
    for (let i = 0; i < x.length; i++) m = Math.max(m, Math.abs(x[i] - y[i]));
  }
  return m;
}

describe("gradient accumulation", () => {
  it("2 micro-batches of B/2 give the gradient of one batch of B within 1e-6, also with uneven masks", async () => {
    const model = tinyModel();
    const mixer = mixerFor(sources(), { general: 1 }, { only: ["general"] });
    const batch = mixer.nextBatch(4, { step: 0, tokens: 0, phase: "p", phaseStep: 0, phaseSteps: 1, phaseFraction: 0 });
    // Uneven masks: the first half keeps 5 of its 32 targets, the second half all 32.
    batch.mask.fill(1);
    batch.mask.fill(0, 5, 2 * SEQ);
    const full = computeGradients(model, [batch]);
    const acc = computeGradients(model, [rows(batch, 0, 2), rows(batch, 2, 4)]);
    expect(full.grads.size).toBe(model.params.size);
    expect(acc.grads.size).toBe(model.params.size);
    const lf = (await full.loss.data())[0];
    const la = (await acc.loss.data())[0];
    expect(Math.abs(lf - la)).toBeLessThan(1e-6);
    expect(await maxDiff(full.grads, acc.grads)).toBeLessThan(1e-6);
    // Control: the plain mean of the two micro-batch gradients is not the batch gradient here.
    const a = computeGradients(model, [rows(batch, 0, 2)]);
    const b = computeGradients(model, [rows(batch, 2, 4)]);
    const naive = new Map([...a.grads].map(([k, g]) => [k, tf.div(tf.add(g, b.grads.get(k)!), 2)]));
    expect(await maxDiff(full.grads, naive)).toBeGreaterThan(1e-4);
    [full, acc, a, b].forEach(disposeGradients);
    disposeGradients(naive);
    model.dispose();
  });

  it("clips to the global norm like clip_grad_norm_ and reports the pre-clip norm", async () => {
    const grads = new Map<string, tf.Tensor>([
      ["a", tf.tensor1d([3, 0])],
      ["b", tf.tensor1d([0, 4])],
    ]);
    const norm = await globalNorm(grads);
    expect(norm).toBeCloseTo(5, 6);
    expect(clipGradients(grads, norm, 10)).toBe(1); // under the threshold: unchanged
    expect(Array.from(await grads.get("a")!.data())).toEqual([3, 0]);
    const scale = clipGradients(grads, norm, 1);
    expect(scale).toBeCloseTo(1 / (5 + 1e-6), 9);
    expect(await globalNorm(grads)).toBeCloseTo(1, 5);
    expect((await grads.get("b")!.data())[1]).toBeCloseTo(0.8, 6);
    disposeGradients(grads);
  });
});

describe("evaluate", () => {
  it("is the token-weighted mean CE over every validation sequence, with bytes for bits per byte", async () => {
    const model = tinyModel();
    const s = sources();
    const mixer = mixerFor(s, { general: 1 }, { only: ["general"] });
    const r3 = await evaluate(model, mixer.evalBatches("general", 3), { tokenizer: tok });
    const r64 = await evaluate(model, mixer.evalBatches("general", 64));
    expect(r3.sequences).toBe(s.valid.general.numSequences);
    expect(r64.sequences).toBe(s.valid.general.numSequences);
    // Independent reference: per-token losses of the whole set at once, masked sum / mask sum.
    let sum = 0;
    let count = 0;
    let bytes = 0;
    for (const b of mixer.evalBatches("general", 1000)) {
      const nll = tf.tidy(() => model.perTokenLoss(tf.tensor2d(b.inputs, [b.batchSize, SEQ], "int32"), tf.tensor2d(b.targets, [b.batchSize, SEQ], "int32")));
      const v = await nll.data();
      nll.dispose();
      for (let i = 0; i < v.length; i++) {
        sum += v[i] * b.mask[i];
        count += b.mask[i];
        if (b.mask[i] > 0) bytes += tok.tokenBytes(b.targets[i]);
      }
    }
    expect(r3.tokens).toBe(count);
    expect(Math.abs(r3.loss - sum / count)).toBeLessThan(1e-5);
    expect(Math.abs(r64.loss - r3.loss)).toBeLessThan(1e-5); // independent of the batch size
    expect(r3.bytes).toBe(bytes);
    expect(r3.bitsPerByte!).toBeCloseTo(r3.lossSum / (Math.LN2 * bytes), 9);
    // The padded tail of the validation set is masked: fewer loss tokens than positions.
    expect(count).toBeLessThan(r3.sequences * SEQ);
    model.dispose();
  });
});
