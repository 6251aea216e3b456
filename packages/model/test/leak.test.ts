import * as tf from "@tensorflow/tfjs-core";
import { beforeAll, describe, expect, it } from "vitest";
import { createModel, getModelConfig } from "../src/index.js";
import { type BackendName, useBackend } from "./backends.js";
import { TestAdamW } from "./helpers.js";

const cfg = getModelConfig("tiny-1m", { nLayer: 2, dModel: 64, nHead: 4, seqLen: 32 });
const ids = Array.from({ length: 32 }, (_, i) => (i * 37 + 11) % 258);
const tgt = Array.from({ length: 32 }, (_, i) => (i * 53 + 7) % 258);

describe.each(["cpu", "wasm", "webgpu"] as BackendName[])("no leaks on %s", (backend) => {
  beforeAll(async () => {
    await useBackend(backend);
  });

  it("many forward/backward/update steps leave the tensor count where it started", async () => {
    const start = tf.memory().numTensors;
    const m = createModel(cfg, { seed: 9 });
    const opt = new TestAdamW({ lr: 1e-3, beta1: 0.9, beta2: 0.95, eps: 1e-8, weight_decay: 0.1 });
    const x = tf.tensor2d(ids, [2, 16], "int32");
    const y = tf.tensor2d(tgt, [2, 16], "int32");
    const mask = tf.ones([2, 16]) as tf.Tensor2D;
    const vars = m.variables();
    const counts: number[] = [];
    const losses: number[] = [];
    for (let step = 0; step < 8; step++) {
      const { value, grads } = tf.variableGrads(() => m.loss(x, y, mask), vars);
      losses.push((await value.data())[0]);
      opt.step(new Map(vars.map((v) => [v, grads[v.name]])));
      tf.dispose([value, ...Object.values(grads)]);
      const logits = m.forward(x);
      const per = m.perTokenLoss(x, y);
      const hs = m.hidden(x);
      tf.dispose([logits, per, ...hs]);
      counts.push(tf.memory().numTensors);
    }
    // after the first step (optimizer slots created) the count no longer changes
    expect(new Set(counts.slice(1)).size).toBe(1);
    expect(losses[7]).toBeLessThan(losses[0]); // and it trains
    opt.dispose();
    tf.dispose([x, y, mask]);
    m.dispose();
    expect(tf.memory().numTensors).toBe(start);
  });
});
