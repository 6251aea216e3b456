/**
 * The branch scenario at its stated length: 2,000 pretraining steps of a very small
 * model on wasm, a branch at k = 1,400 with a switch mixture. Checks what must carry over
 * (optimizer moments, LR schedule, data cursor) and that the data switches exactly at k.
 */
import { initBackend } from "@midtrain/backend";
import { createModel, getModelConfig } from "@midtrain/model";
import { buildLrSchedule, buildMixtureSchedule } from "@midtrain/schedulers";
import { describe, expect, it } from "vitest";
import { AdamW, branch, MemorySink, MemoryStorage, trainPhase } from "../src/index.js";
import { bitDiff, mixerFor, SEQ, sources } from "./helpers.js";

const N = 2000;
const K = 1400;
const B = 2;
const LR = { type: "cosine", peak: 3e-3, min: 1e-4, warmup: { fraction: 0.1 }, total: N };

describe("branch after 2,000-step pretraining", () => {
  it("continues moments and LR from k and switches the data at k", async () => {
    const { tf } = await initBackend({ prefer: "wasm" });
    const before = tf.memory().numTensors;
    const src = sources();
    const config = getModelConfig("tiny-1m", { nLayer: 1, dModel: 16, nHead: 2, seqLen: SEQ, intermediateSize: 32 });
    const model = createModel(config, { seed: 5 });
    const optimizer = new AdamW();
    const parentMixer = mixerFor(src, { general: 1 }, { only: ["general"] });
    const storage = new MemoryStorage("parent-2k");
    const sink = new MemorySink();
    const common = { model, optimizer, mixer: parentMixer, lr: buildLrSchedule(LR), metrics: sink, mixture: { type: "static", weights: { general: 1 } } };
    const first = await trainPhase({ ...common, phase: { name: "pretrain", steps: K, batchSize: B }, checkpoint: { storage, at: [K], final: false } });
    const momentsAtK = await optimizer.getState();
    await trainPhase({ ...common, time: first.time, phase: { name: "pretrain", steps: N, batchSize: B } });
    const parent = sink.of("train");
    expect(parent).toHaveLength(N);
    expect(parent.at(-1)!.loss).toBeLessThan(parent[0].loss - 1); // it learned
    model.dispose();
    optimizer.dispose();

    const mixture = { type: "switch", before: { general: 1 }, after: { general: 0.8, code: 0.2 }, at: K };
    const mixer = mixerFor(src, buildMixtureSchedule(mixture, { sources: ["general", "code"] }));
    const b = await branch({ storage, checkpoint: `ckpt-${K}`, mixer });
    const st = await b.optimizer.getState();
    expect(st.step).toBe(K);
    for (const name of Object.keys(st.m)) {
      expect(bitDiff(st.m[name], momentsAtK.m[name])).toBe(0);
      expect(bitDiff(st.v[name], momentsAtK.v[name])).toBe(0);
    }
    expect(mixer.stats().general.sequences).toBe(K * B); // the general stream continues
    const bsink = new MemorySink();
    await trainPhase({ ...b, mixer, lr: buildLrSchedule(b.state.schedules.lr!), mixture, phase: { name: "midtrain", steps: N, batchSize: B }, metrics: bsink });
    const recs = bsink.of("train");
    expect(recs.map((r) => r.step)).toEqual(Array.from({ length: N - K }, (_, i) => K + 1 + i));
    for (const r of recs) expect(r.lr).toBe(parent[r.step - 1].lr); // no re-warmup, same schedule
    expect(parent.every((r) => !r.stepTokensBySource.code)).toBe(true);
    const codeRows = recs.reduce((n, r) => n + (r.stepTokensBySource.code ?? 0) / SEQ, 0);
    const rows = (N - K) * B;
    // 20% code from k on: binomial(1200, 0.2) → mean 240, sd ≈ 13.9; 5 sd bounds.
    expect(codeRows).toBeGreaterThan(rows * 0.2 - 5 * Math.sqrt(rows * 0.2 * 0.8));
    expect(codeRows).toBeLessThan(rows * 0.2 + 5 * Math.sqrt(rows * 0.2 * 0.8));
    b.model.dispose();
    b.optimizer.dispose();
    expect(tf.memory().numTensors).toBe(before);
  }, 300_000);
});
