import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { PackedSource } from "@midtrain/data";
import { describe, expect, it } from "vitest";
import { parseExperimentConfig } from "../src/config.js";
import { nodeEnv } from "../src/node.js";
import { heldOutSets, sequenceHash, splitHeldOut } from "../src/heldout.js";

function hashes(src: PackedSource): number[] {
  const T = src.seqLen;
  const out: number[] = [];
  const inputs = new Int32Array(T);
  const targets = new Int32Array(T);
  const mask = new Float32Array(T);
  for (let i = 0; i < src.numSequences; i++) {
    inputs.fill(0);
    targets.fill(0);
    mask.fill(0);
    src.write(i, inputs, targets, mask, 0);
    out.push(sequenceHash(inputs, targets, mask));
  }
  return out;
}

const config = parseExperimentConfig({
  name: "heldout",
  model: { preset: "tiny-1m", overrides: { seqLen: 256 } },
  data: {
    seqLen: 32,
    general: "general",
    maxValidationSequences: 24,
    sources: { general: { corpus: "general", maxDocuments: 200 }, code: { corpus: "code", maxDocuments: 40 } },
    sft: { code: { corpus: "sft-code", maxDocuments: 300 } },
  },
  pretrain: { steps: 10, batchSize: 2, lr: { type: "constant", value: 0.001 } },
  branches: [{ name: "b", kind: "baseline" }],
  sft: { domains: ["code"], steps: 2, batchSize: 2, seqLen: 192, lrGrid: [0.001], seeds: [1] },
});

describe("validation and test halves of the held-out data", () => {
  it("never share a sequence with each other or with training (content hashes), for pretraining sources and SFT sets", async () => {
    const dir = await mkdtemp(join(tmpdir(), "midtrain-heldout-"));
    const data = await nodeEnv(dir).loadData(config);
    await rm(dir, { recursive: true, force: true });
    const held = heldOutSets(config, data);
    for (const [name, built, h] of [
      ["general", data.sources.general, held.sources.general],
      ["code", data.sources.code, held.sources.code],
      ["sft-code", data.sft.code, held.sft.code],
    ] as const) {
      const train = new Set(hashes(built.train));
      const valid = hashes(h.valid);
      const test = hashes(h.test);
      expect(valid.length, name).toBeGreaterThan(0);
      expect(test.length, name).toBeGreaterThan(0);
      expect(valid.length, name).toBeLessThanOrEqual(24);
      expect(test.length, name).toBeLessThanOrEqual(24);
      expect(
        valid.filter((x) => train.has(x)),
        `${name}: validation vs train`,
      ).toEqual([]);
      expect(
        test.filter((x) => train.has(x)),
        `${name}: test vs train`,
      ).toEqual([]);
      const v = new Set(valid);
      expect(
        test.filter((x) => v.has(x)),
        `${name}: test vs validation`,
      ).toEqual([]);
    }
    // Cached per data object: every job of a run sees the same halves.
    expect(heldOutSets(config, data)).toBe(held);
  });

  it("depends only on content: the same sequences in another order split the same way", () => {
    const seqs = Array.from({ length: 40 }, (_, i) => Int32Array.from({ length: 8 }, (_, j) => (i * 31 + j * 7) % 251));
    const src = (order: number[]): PackedSource => ({
      kind: "pretrain",
      seqLen: 8,
      numSequences: order.length,
      numTokens: order.length * 8,
      numDocuments: order.length,
      numBytes: order.length * 8,
      write: (index, inputs, targets, mask) => {
        inputs.set(seqs[order[index]]);
        targets.set(seqs[order[index]]);
        mask.fill(1);
        return 8;
      },
    });
    const forward = Array.from({ length: 40 }, (_, i) => i);
    const a = splitHeldOut(src(forward), 40, "a");
    const b = splitHeldOut(src([...forward].reverse()), 40, "b");
    expect(new Set(hashes(a.test))).toEqual(new Set(hashes(b.test)));
    expect(a.test.numSequences + a.valid.numSequences).toBe(40);
    expect(() => splitHeldOut(src([0]), 4, "tiny source")).toThrow(/tiny source has 1 held-out sequence/);
  });
});
