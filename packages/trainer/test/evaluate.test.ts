import * as tf from "@tensorflow/tfjs-core";
import { beforeAll, describe, expect, it } from "vitest";
import { evaluate, type MicroBatch, type TrainableModel } from "../src/index.js";
import { cpu } from "./helpers.js";

/** A stand-in model whose per-token loss is a fixed table: value[row][col] = losses[row * T + col]. */
function tableModel(losses: number[], T: number): TrainableModel {
  return {
    params: new Map(),
    config: { seqLen: T },
    loss: () => tf.scalar(0),
    perTokenLoss: (ids) => tf.tensor2d(losses.slice(0, ids.shape[0] * T), [ids.shape[0], T]),
  };
}

const batch = (mask: number[], targets: number[]): MicroBatch => ({
  batchSize: 1,
  seqLen: mask.length,
  inputs: new Int32Array(mask.length),
  targets: Int32Array.from(targets),
  mask: Float32Array.from(mask),
});

/** Each target id counts as `id` bytes. */
const tokenizer = { tokenBytes: (id: number) => id };

describe("evaluate (sums through @midtrain/metrics' LossAccumulator)", () => {
  beforeAll(async () => {
    await cpu();
  });

  it("weights by loss tokens across batches and counts the bytes of counted targets only", async () => {
    const before = tf.memory().numTensors;
    const r = await evaluate(tableModel([2, 4, 8], 3), [batch([1, 1, 0], [1, 2, 3]), batch([0, 1, 1], [1, 2, 3])], { tokenizer });
    // Masked sums 6 and 12 over 2 + 2 tokens; bytes 1 + 2 and 2 + 3.
    expect(r).toEqual({ loss: 18 / 4, lossSum: 18, tokens: 4, sequences: 2, bytes: 8, bitsPerByte: 18 / (Math.LN2 * 8) });
    expect(tf.memory().numTensors).toBe(before);
  });

  it("gives NaN, not an error, when no token carries loss", async () => {
    const r = await evaluate(tableModel([1, 1], 2), [batch([0, 0], [1, 1])], { tokenizer });
    expect(r.tokens).toBe(0);
    expect(r.loss).toBeNaN();
    expect(r.bitsPerByte).toBeNaN();
  });

  it("reports a diverged model's loss as NaN or Infinity instead of throwing", async () => {
    const nan = await evaluate(tableModel([1, Number.NaN], 2), [batch([1, 1], [1, 1]), batch([1, 0], [1, 1])], { tokenizer });
    expect(nan.lossSum).toBeNaN();
    expect(nan.loss).toBeNaN();
    expect(nan.bitsPerByte).toBeNaN();
    expect(nan.tokens).toBe(3);
    const inf = await evaluate(tableModel([1, Number.POSITIVE_INFINITY], 2), [batch([1, 1], [1, 1])]);
    expect(inf.loss).toBe(Number.POSITIVE_INFINITY);
    expect(inf.bitsPerByte).toBeUndefined();
  });
});
