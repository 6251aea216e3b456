import { describe, expect, it } from "vitest";
import { didYouMean, suggest } from "../src/index.js";
import { editDistance } from "../src/suggest.js";

describe("editDistance (optimal string alignment)", () => {
  it("counts insertions, deletions, substitutions and adjacent swaps as one edit each", () => {
    expect(editDistance("", "abc")).toBe(3);
    expect(editDistance("abc", "")).toBe(3);
    expect(editDistance("cosine", "cosine")).toBe(0);
    expect(editDistance("cosin", "cosine")).toBe(1);
    expect(editDistance("wsam", "wasm")).toBe(1);
    expect(editDistance("kitten", "sitting")).toBe(3);
    expect(editDistance("ca", "abc")).toBe(3);
  });
});

describe("suggest and didYouMean", () => {
  const presets = ["pythia-14m", "pythia-70m", "pythia-160m", "tiny-1m", "tiny-4m"];
  it("puts the closest names first and leaves out names that are not close", () => {
    expect(suggest("tiny1m", presets)).toEqual(["tiny-1m", "tiny-4m"]);
    expect(suggest("wds", ["constant", "cosine", "wsd"])).toEqual(["wsd"]);
    expect(suggest("tpu-pod-v5", ["cuda", "webgpu", "wasm", "cpu"])).toEqual([]);
  });
  it("a name equal but for case is the only suggestion", () => {
    expect(suggest("PYTHIA-70M", presets)).toEqual(["pythia-70m"]);
  });
  it("accepts a prefix of three characters or more", () => {
    expect(suggest("tri", ["triangular", "cosine"])).toEqual(["triangular"]);
  });
  it("caps the list at max", () => {
    expect(suggest("pythia-1m", presets, 1)).toEqual(["pythia-14m"]);
  });
  it("phrases zero, one and several suggestions", () => {
    expect(didYouMean([])).toBe("");
    expect(didYouMean(["code"])).toBe(" — did you mean 'code'?");
    expect(didYouMean(["a", "b", "c"])).toBe(" — did you mean 'a', 'b' or 'c'?");
  });
});
