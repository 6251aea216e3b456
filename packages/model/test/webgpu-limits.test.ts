import { initBackend, probeBackend, requiredBackends } from "@midtrain/backend";
import { describe, expect, it } from "vitest";
import { createModel, getModelConfig, ModelInputError } from "../src/index.js";

// Required under CI; elsewhere, without a GPU or Mesa, skipped with the reason in the title.
const probe = await probeBackend("webgpu");
if (!probe.ok && requiredBackends().includes("webgpu")) throw new Error(`required backend webgpu cannot start: ${probe.reason}`);
const title = "webgpu buffer limits";

describe.skipIf(!probe.ok)(probe.ok ? title : `${title} [skipped: webgpu cannot start here: ${probe.reason}]`, () => {
  it("refuses logits larger than one storage buffer instead of training on zeros", async () => {
    const { tf, device } = await initBackend({ prefer: "webgpu" });
    const limit = device.limits!.maxStorageBufferBindingSize;
    // Pythia vocabulary (50304 padded) with a tiny trunk: [rows, 50304] floats exceed the limit.
    const config = getModelConfig("pythia-14m", { nLayer: 1, dModel: 16, nHead: 2, seqLen: 64 });
    const model = createModel(config, { seed: 1 });
    const rows = Math.floor(limit / (config.paddedVocabSize * 4)) + 64;
    const B = Math.ceil(rows / 64);
    const ids = tf.zeros([B, 64], "int32") as import("@tensorflow/tfjs-core").Tensor2D;
    try {
      expect(() => model.loss(ids, ids)).toThrow(ModelInputError);
      expect(() => model.loss(ids, ids)).toThrow(/use at most \d+ tokens per micro-batch/);
      // A batch under the limit is accepted.
      const small = tf.zeros([1, 64], "int32") as import("@tensorflow/tfjs-core").Tensor2D;
      const loss = model.loss(small, small);
      expect((await loss.data())[0]).toBeGreaterThan(5); // ≈ ln(50304) at init, not 0
      tf.dispose([small, loss]);
    } finally {
      ids.dispose();
      model.dispose();
    }
  });
});
