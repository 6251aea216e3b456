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
  // Small config for quick checks (growth runs on slow backends).
  tiny: {
    label: "tiny-1m (byte vocab, d128, 4L)",
    preset: "tiny-1m",
    overrides: {},
    seq: 128,
    batch: 8,
  },
};
