// Reference configs of issue 9. `preset` + overrides go to @midtrain/model's getModelConfig.
export const CONFIGS = {
  a: {
    label: "(a) vocab 4096, d256, 4L, 4H",
    preset: "tiny-4m",
    overrides: { vocabSize: 4096, dModel: 256, nLayer: 4, nHead: 4, seqLen: 128 },
    seq: 128,
    batch: 8,
  },
  b: {
    label: "(b) Pythia-14m shape (6L, d128, 4H, vocab 50304)",
    preset: "pythia-14m",
    overrides: { seqLen: 128 },
    seq: 128,
    batch: 8,
  },
  // The paper's shape (issue 16): Pythia-70m / -160m at 2,048 tokens, one sequence per step.
  // `memory` goes to the model's setMemoryOptions: on wasm the plain path's activations do not
  // fit the 4 GiB heap, so blocks are recomputed in the backward pass (PyTorch needs no such option).
  p70: {
    label: "(p70) Pythia-70m shape (6L, d512, 8H, vocab 50304, seq 2048)",
    preset: "pythia-70m",
    overrides: {},
    seq: 2048,
    batch: 1,
    memory: { recompute: true },
  },
  p160: {
    label: "(p160) Pythia-160m shape (12L, d768, 12H, vocab 50304, seq 2048)",
    preset: "pythia-160m",
    overrides: {},
    seq: 2048,
    batch: 1,
    memory: { recompute: true },
  },
  // Small config for quick checks (growth runs on slow backends).
  tiny: {
    label: "tiny-1m (byte vocab, d128, 4L)",
    preset: "tiny-1m",
    overrides: {},
    seq: 128,
    batch: 8,
  },
};

/**
 * The bench's token batch: B rows of T+1 ids from a 32-bit LCG (upper bits, so consecutive ids
 * are not trivially predictable). bench/torch_ref.py draws the same ids, so the loss columns of
 * both sides are comparable.
 */
export function benchTokens(n, vocab) {
  let s = 12345;
  const out = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1103515245) + 12345) >>> 0;
    out[i] = (s >>> 8) % vocab;
  }
  return out;
}
