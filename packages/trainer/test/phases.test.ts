/**
 * Pretrain → branch at step k with a new mixture (optimizer state and LR schedule continue) →
 * SFT with a fresh optimizer. Sizes are test-feasible on 2 cpu cores: a d 32, 2-layer model,
 * 36 pretraining steps of 4 × 16 tokens with the branch at k = 24 (not 2k steps; the code path
 * does not depend on the length).
 */
import { createMixer, packSft } from "@midtrain/data";
import { buildLrSchedule, buildMixtureSchedule } from "@midtrain/schedulers";
import { beforeAll, describe, expect, it } from "vitest";
import { AdamW, type AdamWState, branch, MemorySink, MemoryStorage, readTrainerState, startSft, type TrainRecord, trainPhase } from "../src/index.js";
import { bitDiff, cpu, mixerFor, paramValues, SEQ, sources, tinyModel, tok } from "./helpers.js";

const N = 36;
const K = 24;
const LR = { type: "cosine", peak: 1e-2, min: 1e-4, warmup: 4, total: N };
const src = sources();

let parentStorage: MemoryStorage;
let parentRecords: TrainRecord[];
let parentMomentsAtK: AdamWState;
let parentWeightsAtK: Map<string, Float32Array>;

beforeAll(async () => {
  await cpu();
  // Parent: general data only, 0 → K (checkpoint at K), then on to N with the same objects.
  const model = tinyModel(3);
  const optimizer = new AdamW({ weightDecay: 0.1 });
  const mixer = mixerFor(src, { general: 1 }, { only: ["general"] });
  const lr = buildLrSchedule(LR);
  parentStorage = new MemoryStorage("parent");
  const sink = new MemorySink();
  const common = { model, optimizer, mixer, lr, metrics: sink, mixture: { type: "static", weights: { general: 1 } } };
  const first = await trainPhase({
    ...common,
    phase: { name: "pretrain", steps: K, batchSize: 4 },
    checkpoint: { storage: parentStorage, at: [K], final: false },
  });
  expect(first.lastCheckpoint).toBe(`ckpt-${K}`);
  parentMomentsAtK = await optimizer.getState();
  parentWeightsAtK = await paramValues(model);
  await trainPhase({ ...common, time: first.time, phase: { name: "pretrain", steps: N, batchSize: 4 } });
  parentRecords = sink.of("train");
  model.dispose();
  optimizer.dispose();
});

describe("branching at step k (midtraining)", () => {
  it("continues the optimizer moments, the LR schedule and the time; the data switches at k; lineage is recorded", async () => {
    expect(parentRecords.map((r) => r.step)).toEqual(Array.from({ length: N }, (_, i) => i + 1));
    const mixture = { type: "switch", before: { general: 1 }, after: { general: 0.5, code: 0.5 }, at: K };
    const mixer = mixerFor(src, buildMixtureSchedule(mixture, { sources: ["general", "code"] }));
    const b = await branch({ storage: parentStorage, checkpoint: `ckpt-${K}`, mixer });
    expect(b.fromCheckpoint).toBe(`ckpt-${K}`);
    expect(b.time).toMatchObject({ step: K, tokens: K * 4 * SEQ, phase: "pretrain" });
    // Optimizer moments and step count equal the parent's at k, bit for bit.
    const st = await b.optimizer.getState();
    expect(st.step).toBe(K);
    expect(Object.keys(st.m).sort()).toEqual(Object.keys(parentMomentsAtK.m).sort());
    for (const k of Object.keys(st.m)) {
      expect(bitDiff(st.m[k], parentMomentsAtK.m[k])).toBe(0);
      expect(bitDiff(st.v[k], parentMomentsAtK.v[k])).toBe(0);
    }
    for (const [k, v] of await paramValues(b.model)) expect(bitDiff(v, parentWeightsAtK.get(k)!)).toBe(0);
    // The general stream continues where the parent left it (no restart of the data).
    expect(b.continuedSources).toEqual(["general"]);
    expect(mixer.stats().general.sequences).toBe(K * 4);
    expect(mixer.stats().code.sequences).toBe(0);

    const storage = new MemoryStorage("branch");
    const sink = new MemorySink();
    const summary = await trainPhase({
      ...b,
      mixer,
      lr: buildLrSchedule(b.state.schedules.lr!),
      mixture,
      phase: { name: "midtrain", steps: N, batchSize: 4 },
      checkpoint: { storage },
      metrics: sink,
    });
    const recs = sink.of("train");
    expect(recs.map((r) => r.step)).toEqual(Array.from({ length: N - K }, (_, i) => K + 1 + i));
    // LR: the branch's first step uses the parent schedule's rate for step k+1, and so on (no re-warmup).
    expect(recs[0].lr).toBe(parentRecords[K].lr);
    expect(recs[0].lr).toBeGreaterThan(0);
    recs.forEach((r) => {
      expect(r.lr).toBe(parentRecords[r.step - 1].lr);
    });
    expect(recs[0].phase).toBe("midtrain");
    expect(recs[0].phaseStep).toBe(1);
    // Data: the parent never saw code; the branch does from its first steps on.
    expect(parentRecords.every((r) => !r.stepTokensBySource.code)).toBe(true);
    const codeRows = recs.reduce((n, r) => n + (r.stepTokensBySource.code ?? 0) / SEQ, 0);
    expect(codeRows).toBeGreaterThan(0.3 * (N - K) * 4);
    expect(codeRows).toBeLessThan(0.7 * (N - K) * 4);
    expect(recs[0].tokensBySource.general).toBeGreaterThan(K * 4 * SEQ); // cumulative from the parent
    // The losses differ from the parent's continuation (different data), so the branch really branched.
    expect(recs[0].loss).not.toBe(parentRecords[K].loss);
    // Lineage and time in the branch's checkpoint.
    const state = await readTrainerState(storage, summary.lastCheckpoint!);
    expect(state.lineage).toEqual({
      parent: { kind: "branch", checkpoint: `ckpt-${K}`, step: K, phase: "pretrain", location: "parent" },
      ancestors: [],
    });
    expect(state.time).toMatchObject({ step: N, phase: "midtrain", phaseStep: N - K, phaseSteps: N - K, phaseFraction: 1 });
    expect(state.phase).toMatchObject({ name: "midtrain", startStep: K, endStep: N });
    expect(state.schedules).toEqual({ lr: LR, mixture });

    // SFT from the branch's final weights: fresh optimizer, its own time and schedule.
    const sftSrc = packSft(
      Array.from({ length: 40 }, (_, i) => ({ prompt: `${i}+1=`, response: `${i + 1}` })),
      tok,
      { seqLen: SEQ },
    );
    const sftValid = packSft(
      Array.from({ length: 8 }, (_, i) => ({ prompt: `${i + 100}+1=`, response: `${i + 101}` })),
      tok,
      { seqLen: SEQ },
    );
    const sftMixer = createMixer({
      sources: { sft: sftSrc },
      validation: { sft: sftValid, general: src.valid.general },
      schedule: { sft: 1 },
      seed: 11,
    });
    const s = await startSft({ storage, checkpoint: summary.lastCheckpoint!, optimizer: { weightDecay: 0 } });
    expect(s.optimizer.step).toBe(0);
    expect(s.optimizer.names()).toEqual([]);
    expect(s.time).toMatchObject({ step: 0, tokens: 0, phase: "sft" });
    for (const [k, v] of await paramValues(s.model)) expect(bitDiff(v, (await paramValues(b.model)).get(k)!)).toBe(0);
    const sftLr = { type: "cosine", peak: 5e-3, min: 0, warmup: 1, total: 6 };
    const sftSink = new MemorySink();
    const sftStorage = new MemoryStorage("sft");
    const sft = await trainPhase({
      ...s,
      mixer: sftMixer,
      lr: buildLrSchedule(sftLr),
      phase: { name: "sft", steps: 6, batchSize: 4 },
      evalSets: ["sft", "general"],
      tokenizer: tok,
      checkpoint: { storage: sftStorage },
      metrics: sftSink,
    });
    expect(sftSink.of("train").map((r) => r.step)).toEqual([1, 2, 3, 4, 5, 6]);
    expect(sftSink.of("train")[1].lr).toBe(5e-3); // its own schedule: warmup 1, peak at step 1
    expect(s.optimizer.step).toBe(6);
    expect(Object.keys(sft.evals).sort()).toEqual(["general", "sft"]);
    expect(sft.evals.sft.tokens).toBeLessThan(sft.evals.sft.sequences * SEQ); // prompts are masked
    expect(sft.evals.general.bitsPerByte).toBeGreaterThan(0);
    const sftState = await readTrainerState(sftStorage, sft.lastCheckpoint!);
    expect(sftState.lineage.parent).toEqual({ kind: "sft", checkpoint: `ckpt-${N}`, step: N, phase: "midtrain", location: "branch" });
    expect(sftState.lineage.ancestors).toEqual([state.lineage.parent]);
    b.model.dispose();
    s.model.dispose();
  });

  it("continued pretraining (weight 1) draws only the specialised source after k", async () => {
    const mixture = { type: "midtraining", general: "general", specialized: "code", weight: 1, start: K };
    const mixer = mixerFor(src, buildMixtureSchedule(mixture, { sources: ["general", "code"] }));
    const b = await branch({ storage: parentStorage, checkpoint: `ckpt-${K}`, mixer });
    const sink = new MemorySink();
    await trainPhase({ ...b, mixer, lr: buildLrSchedule(LR), phase: { name: "cpt", steps: K + 3, batchSize: 4 }, metrics: sink });
    const recs = sink.of("train");
    expect(recs).toHaveLength(3);
    recs.forEach((r) => {
      expect(r.stepTokensBySource).toEqual({ code: 4 * SEQ });
    });
    expect(recs[0].lr).toBe(parentRecords[K].lr);
    b.model.dispose();
  });
});
