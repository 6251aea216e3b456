/**
 * WebGPU gradients with a vocabulary of thousands and a chunked loss, against the cpu backend.
 * tfjs-backend-webgpu 4.22 runs `dlogits @ Wᵀ` of a loss chunk with few rows (inner dimension =
 * the vocabulary, 2,000 or more) through its split-K matmul, which read the transposed W wrongly:
 * every gradient below the output layer was off (pythia-14m at 512 tokens: the last chunk's 14
 * rows; 0.8% in gradient norm, single values up to 100%). @midtrain/backend guards those
 * products. Without the guard this test's gradients differ from cpu by order 1; with it, by
 * ~1e-6. The parity test's fixture (vocabulary 384) never takes that path.
 */
import * as tf from "@tensorflow/tfjs-core";
import { probeBackend, requiredBackends } from "@midtrain/backend";
import { describe, expect, it } from "vitest";
import { createModel, getModelConfig, modelFromSafetensors, modelToSafetensors, toHfConfig } from "../src/index.js";
import { type BackendName, useBackend } from "./backends.js";

const gpu = await probeBackend("webgpu");
if (!gpu.ok && requiredBackends().includes("webgpu")) throw new Error(`required backend webgpu cannot start: ${gpu.reason}`);
const skip = gpu.ok ? undefined : `webgpu cannot start here: ${gpu.reason}`;
const title = "webgpu gradients with a 4,096-token vocabulary and a chunked loss match cpu";

describe("wide output layer on webgpu", () => {
  it.skipIf(skip !== undefined)(skip === undefined ? title : `${title} [skipped: ${skip}]`, async () => {
    const T = 32;
    // d 64: a loss chunk of 12 (or the last, 8) rows gives a [12, 64] output from a 4,096-long inner dimension.
    const config = getModelConfig("tiny-1m", { nLayer: 1, dModel: 64, nHead: 4, seqLen: T, vocabSize: 4096 });
    await useBackend("cpu");
    const seedModel = createModel(config, { seed: 5 });
    const bytes = await modelToSafetensors(seedModel);
    seedModel.dispose();
    const hfConfig = toHfConfig(config);
    const ids = Int32Array.from({ length: T }, (_, i) => (i * 2654435761) % 4096);
    const targets = Int32Array.from({ length: T }, (_, i) => (i * 40503 + 7) % 4096);
    const grads = async (backend: BackendName) => {
      await useBackend(backend);
      const before = tf.memory().numTensors;
      const model = modelFromSafetensors(hfConfig, bytes, { lossChunkTokens: 12 }); // chunks of 12, 12, 8 rows
      const x = tf.tensor2d(ids, [1, T], "int32");
      const y = tf.tensor2d(targets, [1, T], "int32");
      const m = tf.ones([1, T]) as tf.Tensor2D;
      const { value, grads: g } = tf.variableGrads(() => model.loss(x, y, m), model.variables());
      const out = new Map<string, Float32Array>();
      for (const [name, v] of model.params) out.set(name, (await g[v.name].data()) as Float32Array);
      const loss = (await value.data())[0];
      tf.dispose([value, x, y, m, ...Object.values(g)]);
      model.dispose();
      expect(tf.memory().numTensors).toBe(before);
      return { loss, out };
    };
    const ref = await grads("cpu");
    const got = await grads("webgpu");
    expect(Math.abs(got.loss - ref.loss)).toBeLessThan(5e-5);
    let worst = 0;
    let worstName = "";
    for (const [name, r] of ref.out) {
      const w = got.out.get(name)!;
      let d = 0;
      let s = 0;
      for (let i = 0; i < r.length; i++) {
        d = Math.max(d, Math.abs(w[i] - r[i]));
        s = Math.max(s, Math.abs(r[i]));
      }
      if (d / s > worst) [worst, worstName] = [d / s, name];
    }
    console.log(
      `[webgpu] vocabulary 4096, loss chunks 12: loss diff ${Math.abs(got.loss - ref.loss).toExponential(2)}, worst gradient ${worstName} rel ${worst.toExponential(2)}`,
    );
    expect(worst).toBeLessThan(1e-4);
  });
});
