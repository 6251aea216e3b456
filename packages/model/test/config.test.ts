import { describe, expect, it } from "vitest";
import { padVocab, validateConfig } from "../src/config.js";
import { countParams, flopsPerToken, getModelConfig, MODEL_PRESETS, ModelConfigError } from "../src/index.js";
import { paramSpecs } from "../src/params.js";

const numel = (s: number[]) => s.reduce((a, b) => a * b, 1);

describe("presets", () => {
  // Total parameter counts published in the Pythia paper (Biderman et al. 2023, Table 1),
  // which count both embeddings over the padded 50304-token vocabulary.
  it.each([
    ["pythia-70m", 70_426_624],
    ["pythia-160m", 162_322_944],
    ["pythia-410m", 405_334_016],
    ["pythia-1b", 1_011_781_632],
  ])("%s has the published parameter count", (name, published) => {
    expect(countParams(getModelConfig(name))).toBe(published);
  });

  it("pythia-14m and pythia-31m follow the same formula (12 d^2 + 13 d per layer + 2 V d + 2 d)", () => {
    expect(countParams(getModelConfig("pythia-14m"))).toBe(2 * 50304 * 128 + 6 * (12 * 128 ** 2 + 13 * 128) + 256);
    expect(countParams(getModelConfig("pythia-14m"))).toBe(14_067_712);
    expect(countParams(getModelConfig("pythia-31m"))).toBe(30_494_720);
  });

  it("countParams equals the sum of the parameter shapes for every preset", () => {
    for (const name of MODEL_PRESETS) {
      const cfg = getModelConfig(name);
      const total = paramSpecs(cfg).reduce((a, s) => a + numel(s.hfShape), 0);
      expect(countParams(cfg), name).toBe(total);
    }
  });

  it("published shapes", () => {
    const shape = (n: string) => {
      const c = getModelConfig(n);
      return [c.nLayer, c.dModel, c.nHead, c.paddedVocabSize, c.intermediateSize, c.seqLen];
    };
    expect(shape("pythia-14m")).toEqual([6, 128, 4, 50304, 512, 2048]);
    expect(shape("pythia-31m")).toEqual([6, 256, 8, 50304, 1024, 2048]);
    expect(shape("pythia-70m")).toEqual([6, 512, 8, 50304, 2048, 2048]);
    expect(shape("pythia-160m")).toEqual([12, 768, 12, 50304, 3072, 2048]);
    expect(shape("pythia-410m")).toEqual([24, 1024, 16, 50304, 4096, 2048]);
    expect(shape("pythia-1b")).toEqual([16, 2048, 8, 50304, 8192, 2048]);
    const c = getModelConfig("pythia-70m");
    expect([c.rotaryPct, c.rotaryBase, c.layerNormEps, c.parallelResidual]).toEqual([0.25, 10000, 1e-5, true]);
  });

  it("tiny presets are ~1M and ~4M parameters with the byte vocabulary padded to 384", () => {
    const t1 = getModelConfig("tiny-1m");
    const t4 = getModelConfig("tiny-4m");
    expect([t1.vocabSize, t1.paddedVocabSize]).toEqual([258, 384]);
    expect(countParams(t1)).toBe(891_648);
    expect(countParams(t4)).toBe(4_145_920);
    expect(countParams(getModelConfig("tiny-1m", { vocabSize: 1000 }))).toBe(891_648 + 2 * (1024 - 384) * 128);
  });

  it("overrides re-pad the vocabulary and keep the MLP at 4d", () => {
    const c = getModelConfig("tiny-1m", { vocabSize: 1000, dModel: 64 });
    expect(c.paddedVocabSize).toBe(1024);
    expect(c.intermediateSize).toBe(256);
    expect(padVocab(50254)).toBe(50304);
    expect(padVocab(256)).toBe(256);
  });

  it("unknown names suggest the closest preset", () => {
    expect(() => getModelConfig("pythia-70M")).toThrow(/did you mean 'pythia-70m'/);
    expect(() => getModelConfig("tiny1m")).toThrow(ModelConfigError);
    expect(() => getModelConfig("tiny1m")).toThrow(/did you mean 'tiny-1m'/);
    expect(() => getModelConfig("llama")).toThrow(/Known presets: pythia-14m/);
  });

  it("invalid configs say what to fix", () => {
    const base = getModelConfig("tiny-1m");
    expect(() => validateConfig({ ...base, nHead: 3 })).toThrow(/divisible by nHead/);
    expect(() => validateConfig({ ...base, paddedVocabSize: 100 })).toThrow(/>= vocabSize/);
    expect(() => validateConfig({ ...base, nLayer: 0 })).toThrow(/nLayer must be a positive integer/);
    // head size 32 * 0.1 = 3.2 -> 3 rotary dims: odd, cannot be paired
    expect(() => validateConfig({ ...base, rotaryPct: 0.1 })).toThrow(/must be even/);
  });
});

describe("flopsPerToken", () => {
  it("is 6 * (params - input embedding) + 12 * nLayer * d * seqLen", () => {
    const c = getModelConfig("pythia-70m");
    // hand computation: 6 * (70,426,624 - 50304 * 512) + 12 * 6 * 512 * 2048
    expect(flopsPerToken(c)).toBe(6 * 44_670_976 + 75_497_472);
    expect(flopsPerToken(c, 1024)).toBe(6 * 44_670_976 + 75_497_472 / 2);
  });
});
