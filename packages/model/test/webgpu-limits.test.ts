import { initBackend, probeBackend, requiredBackends } from "@midtrain/backend";
import { describe, expect, it } from "vitest";
import { createModel, getModelConfig, ModelInputError } from "../src/index.js";

// Required under CI; elsewhere, without a GPU or Mesa, skipped with the reason in the title.
const probe = await probeBackend("webgpu");
if (!probe.ok && requiredBackends().includes("webgpu")) throw new Error(`required backend webgpu cannot start: ${probe.reason}`);
const title = "webgpu buffer limits";

describe.skipIf(!probe.ok)(probe.ok ? title : `${title} [skipped: webgpu cannot start here: ${probe.reason}]`, () => {
  it("refuses logits larger than one storage buffer instead of training on zeros, and chunks the loss to fit by default", async () => {
    const { tf, device } = await initBackend({ prefer: "webgpu" });
    const limit = device.limits!.maxStorageBufferBindingSize;
    // Pythia vocabulary (50304 padded) with a tiny trunk: [rows, 50304] floats exceed the limit.
    const config = getModelConfig("pythia-14m", { nLayer: 1, dModel: 16, nHead: 2, seqLen: 64 });
    const model = createModel(config, { seed: 1 });
    const rows = Math.floor(limit / (config.paddedVocabSize * 4)) + 64;
    const B = Math.ceil(rows / 64);
    const ids = tf.zeros([B, 64], "int32") as import("@tensorflow/tfjs-core").Tensor2D;
    try {
      // The full logits are refused with the tensor, the limit and the fix...
      expect(() => model.loss(ids, ids, undefined, { lossChunkTokens: 0 })).toThrow(ModelInputError);
      expect(() => model.loss(ids, ids, undefined, { lossChunkTokens: 0 })).toThrow(
        new RegExp(`the logits \\[batch·T, paddedVocabSize\\] .*maxStorageBufferBindingSize ${limit}.*use at most \\d+ tokens per micro-batch`),
      );
      expect(() => model.forward(ids)).toThrow(/use at most \d+ tokens per forward\(\) call/);
      // ...a loss chunk over the limit names lossChunkTokens...
      expect(() => model.loss(ids, ids, undefined, { lossChunkTokens: rows })).toThrow(/set lossChunkTokens to at most \d+/);
      // ...and by default the loss runs in chunks that fit: a real loss, not the zeros of an oversized binding.
      expect(model.lossChunkTokensFor(B * 64)).toBeGreaterThan(0);
      expect(model.lossChunkTokensFor(B * 64) * config.paddedVocabSize * 4).toBeLessThanOrEqual(limit);
      const chunked = model.loss(ids, ids);
      const v = (await chunked.data())[0];
      expect(Math.abs(v - Math.log(config.paddedVocabSize))).toBeLessThan(0.5); // ≈ ln(50304) at init
      chunked.dispose();
      // A batch under the limit is accepted whole.
      const small = tf.zeros([1, 64], "int32") as import("@tensorflow/tfjs-core").Tensor2D;
      const loss = model.loss(small, small, undefined, { lossChunkTokens: 0 });
      expect((await loss.data())[0]).toBeGreaterThan(5); // ≈ ln(50304) at init, not 0
      tf.dispose([small, loss]);
    } finally {
      ids.dispose();
      model.dispose();
    }
  });
});
