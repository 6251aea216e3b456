import { initBackend } from "@midtrain/backend";
import * as tf from "@tensorflow/tfjs-core";
import { describe, expect, it } from "vitest";
import { globalNorm, squaredNormParts, sumFloat64 } from "../src/grads.js";

describe("global gradient norm at the paper's sizes", () => {
  it("stays float64-accurate over tens of millions of squares (a 50k x 512 embedding) on wasm", async () => {
    await initBackend({ prefer: "wasm" });
    const rows = 50304;
    const cols = 512;
    const data = new Float32Array(rows * cols);
    let seed = 12345;
    for (let i = 0; i < data.length; i++) {
      seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
      data[i] = (seed / 2 ** 32 - 0.5) * 1e-3;
    }
    const bias = Float32Array.from({ length: 512 }, (_, i) => (i % 7) * 1e-4);
    let exact = 0;
    for (let i = 0; i < data.length; i++) exact += data[i] * data[i];
    for (let i = 0; i < bias.length; i++) exact += bias[i] * bias[i];
    const grads = new Map<string, tf.Tensor>([
      ["embed", tf.tensor2d(data, [rows, cols])],
      ["bias", tf.tensor1d(bias)],
      ["scalar", tf.scalar(0)],
    ]);
    const before = tf.memory().numTensors;
    const norm = await globalNorm(grads);
    expect(tf.memory().numTensors).toBe(before);
    expect(Math.abs(norm - Math.sqrt(exact)) / Math.sqrt(exact)).toBeLessThan(1e-6);
    const parts = squaredNormParts(grads);
    expect(parts.shape).toEqual([rows + 1 + 1]);
    parts.dispose();
    for (const g of grads.values()) g.dispose();
  });

  it("sumFloat64 compensates: a million small terms after a large one", () => {
    const xs = new Float64Array(1 + 1e6).fill(1e-10);
    xs[0] = 1;
    expect(sumFloat64(xs)).toBe(1 + 1e-4);
    expect(sumFloat64([])).toBe(0);
  });
});
