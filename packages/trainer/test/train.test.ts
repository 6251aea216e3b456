import type { Mixer } from "@midtrain/data";
import { UnknownSourceError } from "@midtrain/data";
import type { GPTNeoXModel } from "@midtrain/model";
import { buildLrSchedule, buildMixtureSchedule } from "@midtrain/schedulers";
import * as tf from "@tensorflow/tfjs-core";
import { beforeAll, describe, expect, it } from "vitest";
import {
  AdamW,
  CheckpointWriteError,
  listCheckpoints,
  loadCheckpoint,
  MemorySink,
  MemoryStorage,
  NonFiniteLossError,
  type ProgressEvent,
  readTrainerState,
  resume,
  TrainerConfigError,
  trainPhase,
} from "../src/index.js";
import { bitDiff, cpu, mixerFor, paramValues, sources, tinyModel, tok } from "./helpers.js";

const LR = { type: "cosine", peak: 1e-2, min: 1e-3, warmup: 2, total: 12 };
const src = sources();

beforeAll(async () => {
  await cpu();
});

function generalMixer(): Mixer {
  return mixerFor(src, { general: 1 }, { only: ["general"] });
}

/** A model whose loss (or only its gradient) is NaN on the calls `bad` picks. */
function faulty(model: GPTNeoXModel, bad: (call: number) => "loss" | "grad" | null): GPTNeoXModel {
  const nanGrad = tf.customGrad(((x: tf.Tensor) => ({ value: x.clone(), gradFunc: (dy: tf.Tensor) => tf.mul(dy, Number.NaN) })) as any);
  const w = Object.create(model) as GPTNeoXModel;
  let calls = 0;
  w.loss = (ids, targets, mask) => {
    const kind = bad(calls++);
    const l = model.loss(ids, targets, mask);
    if (kind === null) return l;
    const out = kind === "loss" ? tf.mul(l, Number.NaN) : (nanGrad(l) as tf.Tensor);
    l.dispose();
    return out as tf.Scalar;
  };
  return w;
}

describe("trainPhase", () => {
  it("logs metrics, evaluates, emits progress, checkpoints with keep-last-N and `at`, keeps the tensor count stable", async () => {
    const model = tinyModel();
    const mixer = generalMixer();
    const optimizer = new AdamW();
    const lr = buildLrSchedule(LR);
    const storage = new MemoryStorage();
    const sink = new MemorySink();
    const progress: ProgressEvent[] = [];
    const counts: number[] = [];
    const summary = await trainPhase({
      model,
      mixer,
      lr,
      optimizer,
      phase: { name: "pretrain", steps: 8, batchSize: 4, gradAccum: 2, clipNorm: 1 },
      evalEvery: 4,
      evalSets: ["general", "code"],
      evalBatchSize: 8,
      tokenizer: tok,
      checkpoint: { storage, every: 2, keepLast: 2, at: [3] },
      metrics: sink,
      onProgress: (e) => {
        progress.push(e);
        counts.push(tf.memory().numTensors);
      },
    });
    const train = sink.of("train");
    expect(train.map((r) => r.step)).toEqual([1, 2, 3, 4, 5, 6, 7, 8]);
    train.forEach((r) => {
      expect(r.tokens).toBe(r.step * 4 * 16);
      expect(r.lr).toBe(
        lr.at({ step: r.step - 1, tokens: (r.step - 1) * 64, phase: "pretrain", phaseStep: r.step - 1, phaseSteps: 8, phaseFraction: (r.step - 1) / 8 }),
      );
      expect(r.gradNorm).toBeGreaterThan(0);
      expect(r.tokensPerSec).toBeGreaterThan(0);
      expect(r.stepTokensBySource).toEqual({ general: 64 });
      expect(r.tokensBySource.general).toBe(r.step * 64);
    });
    expect(train[0].lr).toBe(0); // warmup from 0, the rate at step 0
    expect(train[7].loss).toBeLessThan(train[0].loss);
    const evals = sink.of("eval");
    expect(evals.map((e) => `${e.step}:${e.set}`)).toEqual(["4:general", "4:code", "8:general", "8:code"]);
    expect(evals[2].bitsPerByte).toBeGreaterThan(0);
    expect(summary.evals.general.loss).toBe(evals[2].loss);
    // Checkpoints: every 2 plus step 3; only the newest 2 survive, step 3 is kept.
    expect(sink.of("checkpoint").map((c) => c.id)).toEqual(["ckpt-2", "ckpt-3", "ckpt-4", "ckpt-6", "ckpt-8"]);
    expect((await listCheckpoints(storage)).map((c) => c.id)).toEqual(["ckpt-3", "ckpt-6", "ckpt-8"]);
    expect(summary.lastCheckpoint).toBe("ckpt-8");
    expect(summary.stopped).toBe("completed");
    const state = await readTrainerState(storage, "ckpt-8");
    expect(state.step).toBe(8);
    expect(state.time).toEqual(summary.time);
    expect(state.time).toMatchObject({ step: 8, tokens: 512, phase: "pretrain", phaseStep: 8, phaseSteps: 8, phaseFraction: 1 });
    expect(state.mixer).toEqual(mixer.getState());
    expect(state.schedules.lr).toEqual(LR);
    expect(state.optimizer.step).toBe(8);
    expect(state.phase).toEqual({ name: "pretrain", startStep: 0, endStep: 8, batchSize: 4, gradAccum: 2, clipNorm: 1 });
    for (const f of ["model.safetensors", "config.json", "optimizer.safetensors", "trainer.json"]) {
      expect((await storage.read("ckpt-8", f)).length).toBeGreaterThan(0);
    }
    // Progress: one event per step, ETA reaches 0, evals attached at eval steps.
    expect(progress.map((p) => p.step)).toEqual([1, 2, 3, 4, 5, 6, 7, 8]);
    expect(progress[7].etaSeconds).toBe(0);
    expect(progress[3].evals?.general.loss).toBe(evals[0].loss);
    // Tensor count is the same after every step (moments exist from step 1 on).
    expect(new Set(counts).size).toBe(1);
    // The checkpoint restores the exact weights and moments.
    const loaded = await loadCheckpoint(storage, "ckpt-8");
    const [a, b] = [await paramValues(model), await paramValues(loaded.model)];
    for (const [k, v] of a) expect(bitDiff(v, b.get(k)!)).toBe(0);
    const [sa, sb] = [await optimizer.getState(), await loaded.optimizer!.getState()];
    expect(sb.step).toBe(8);
    for (const k of Object.keys(sa.m)) {
      expect(bitDiff(sa.m[k], sb.m[k])).toBe(0);
      expect(bitDiff(sa.v[k], sb.v[k])).toBe(0);
    }
    loaded.model.dispose();
    loaded.optimizer!.dispose();
    model.dispose();
    optimizer.dispose();
  });

  it("rejects inconsistent options with errors that say what to fix", async () => {
    const model = tinyModel();
    const base = { model, mixer: generalMixer(), lr: buildLrSchedule(LR), optimizer: new AdamW() };
    await expect(trainPhase({ ...base, phase: { name: "p", steps: 2, batchSize: 3, gradAccum: 2 } })).rejects.toThrow(/not divisible by gradAccum 2/);
    await expect(trainPhase({ ...base, phase: { name: "p", steps: 2, batchSize: 2 }, evalSets: ["nope"] })).rejects.toThrow(UnknownSourceError);
    await expect(trainPhase({ ...base, lr: { at: () => Number.NaN }, phase: { name: "p", steps: 2, batchSize: 2 } })).rejects.toThrow(TrainerConfigError);
    await expect(
      trainPhase({
        ...base,
        phase: { name: "p", steps: 1, batchSize: 2 },
        time: { step: 5, tokens: 0, phase: "p", phaseStep: 5, phaseSteps: 5, phaseFraction: 1 },
      }),
    ).rejects.toThrow(/before the start time/);
    model.dispose();
  });
});

describe("exact resume (in process)", () => {
  it("a run stopped between checkpoints and resumed from the last one gives bitwise-equal losses and weights", async () => {
    const phase = { name: "pretrain", steps: 10, batchSize: 4, gradAccum: 2 };
    // Uninterrupted reference.
    const refModel = tinyModel();
    const refSink = new MemorySink();
    await trainPhase({ model: refModel, mixer: generalMixer(), lr: buildLrSchedule(LR), optimizer: new AdamW(), phase, metrics: refSink });
    const ref = refSink.of("train").map((r) => r.loss);
    // Interrupted: checkpoints every 4, dies at step 6 (after ckpt-4, before ckpt-8).
    const storage = new MemoryStorage();
    const crash = new Error("simulated crash");
    await expect(
      trainPhase({
        model: tinyModel(),
        mixer: generalMixer(),
        lr: buildLrSchedule(LR),
        optimizer: new AdamW(),
        phase,
        checkpoint: { storage, every: 4 },
        onProgress: (e) => {
          if (e.step === 6) throw crash;
        },
      }),
    ).rejects.toBe(crash);
    expect((await listCheckpoints(storage)).map((c) => c.id)).toEqual(["ckpt-4"]);
    // Resume: everything but the mixer's sources and seed comes from the checkpoint.
    const mixer = generalMixer();
    const r = await resume({ storage, mixer });
    expect(r.fromCheckpoint).toBe("ckpt-4");
    expect(r.time.step).toBe(4);
    const sink = new MemorySink();
    await trainPhase({ ...r, mixer, lr: r.lr!, phase: r.phase, metrics: sink });
    const got = sink.of("train");
    expect(got.map((x) => x.step)).toEqual([5, 6, 7, 8, 9, 10]);
    got.forEach((x, i) => {
      expect(Object.is(x.loss, ref[4 + i])).toBe(true);
    });
    const [a, b] = [await paramValues(refModel), await paramValues(r.model)];
    for (const [k, v] of a) expect(bitDiff(v, b.get(k)!)).toBe(0);
    // Control: without the mixer state the same weights see other data, so the comparison can fail.
    const r2 = await resume({ storage, mixer: generalMixer() });
    const sink2 = new MemorySink();
    await trainPhase({ ...r2, mixer: generalMixer(), lr: r2.lr!, phase: { ...r2.phase, steps: 6 }, metrics: sink2 });
    expect(sink2.of("train")[0].loss).not.toBe(ref[4]);
    refModel.dispose();
    r.model.dispose();
    r2.model.dispose();
  });
});

describe("stateful mixture schedules", () => {
  it("feed per-source step losses to the schedule (DoReMi-style) and resume it exactly from its saved state", async () => {
    const cfg = { type: "doremi", stepSize: 0.5 };
    const mk = () => {
      const schedule = buildMixtureSchedule(cfg, { sources: ["general", "code"] });
      return { schedule, mixer: mixerFor(src, schedule) };
    };
    const phase = { name: "pretrain", steps: 8, batchSize: 4, gradAccum: 2 };
    const ref = mk();
    const updates: { step: number; lossBySource: Record<string, number> }[] = [];
    const update = ref.schedule.update!.bind(ref.schedule);
    ref.schedule.update = (f) => {
      updates.push({ step: f.time.step, lossBySource: f.lossBySource });
      update(f);
    };
    const refSink = new MemorySink();
    const refModel = tinyModel();
    const counts: number[] = [];
    await trainPhase({
      model: refModel,
      mixer: ref.mixer,
      lr: buildLrSchedule(LR),
      optimizer: new AdamW(),
      phase,
      metrics: refSink,
      mixtureFeedback: ref.schedule,
      onProgress: () => counts.push(tf.memory().numTensors),
    });
    expect(new Set(counts).size).toBe(1); // the per-row sums are freed too
    const train = refSink.of("train");
    expect(updates.map((u) => u.step)).toEqual([0, 1, 2, 3, 4, 5, 6, 7]); // the time each batch was drawn at
    updates.forEach((u, i) => {
      // The per-source losses, weighted by their tokens, give back the step's loss.
      const tokens = train[i].stepTokensBySource;
      expect(Object.keys(u.lossBySource).sort()).toEqual(Object.keys(tokens).sort());
      let num = 0;
      let den = 0;
      for (const [k, l] of Object.entries(u.lossBySource)) {
        num += l * tokens[k];
        den += tokens[k];
      }
      expect(Math.abs(num / den - train[i].loss)).toBeLessThan(1e-5);
    });
    const w = ref.mixer.weightsAt({ step: 8, tokens: 0, phase: "pretrain", phaseStep: 8, phaseSteps: 8, phaseFraction: 1 });
    expect(Math.abs(w.general - 0.5)).toBeGreaterThan(1e-3); // the feedback moved the weights

    const storage = new MemoryStorage();
    const crash = new Error("crash");
    const first = mk();
    await expect(
      trainPhase({
        model: tinyModel(),
        mixer: first.mixer,
        lr: buildLrSchedule(LR),
        optimizer: new AdamW(),
        phase,
        mixtureFeedback: first.schedule,
        checkpoint: { storage, every: 4 },
        onProgress: (e) => {
          if (e.step === 6) throw crash;
        },
      }),
    ).rejects.toBe(crash);
    expect((await readTrainerState(storage, "ckpt-4")).mixer?.schedule).toMatchObject({ type: "doremi", updates: 4 });
    const again = mk();
    const r = await resume({ storage, mixer: again.mixer });
    const sink = new MemorySink();
    await trainPhase({ ...r, mixer: again.mixer, lr: r.lr!, phase: r.phase, metrics: sink, mixtureFeedback: again.schedule });
    const got = sink.of("train");
    expect(got.map((x) => x.step)).toEqual([5, 6, 7, 8]);
    got.forEach((x, i) => {
      expect(Object.is(x.loss, train[4 + i].loss)).toBe(true);
      expect(x.stepTokensBySource).toEqual(train[4 + i].stepTokensBySource);
    });
    expect(again.schedule.getState!()).toEqual(ref.schedule.getState!());
    refModel.dispose();
    r.model.dispose();
  });
});

describe("faults", () => {
  it("a NaN loss is not applied, is reported, and training goes on", async () => {
    const model = tinyModel();
    const optimizer = new AdamW();
    const sink = new MemorySink();
    // Calls are one per micro-batch: call 2 is the first (only) micro-batch of the 3rd attempt.
    const m = faulty(model, (c) => (c === 2 ? "loss" : null));
    const summary = await trainPhase({
      model: m,
      mixer: generalMixer(),
      lr: buildLrSchedule(LR),
      optimizer,
      phase: { name: "p", steps: 4, batchSize: 2 },
      metrics: sink,
    });
    const skips = sink.of("skip");
    expect(skips).toEqual([{ type: "skip", phase: "p", step: 3, loss: null, gradNorm: null, reason: "loss is NaN", inARow: 1 }]);
    expect(sink.of("train").map((r) => r.step)).toEqual([1, 2, 3, 4]);
    expect(summary.skippedSteps).toBe(1);
    expect(optimizer.step).toBe(4);
    for (const v of (await paramValues(model)).values()) expect(v.every(Number.isFinite)).toBe(true);
    model.dispose();
  });

  it("a NaN gradient with a finite loss is caught too; after N in a row the run stops and keeps the last good checkpoint", async () => {
    const model = tinyModel();
    const storage = new MemoryStorage();
    const sink = new MemorySink();
    const m = faulty(model, (c) => (c >= 3 ? "grad" : null));
    const err = await trainPhase({
      model: m,
      mixer: generalMixer(),
      lr: buildLrSchedule(LR),
      optimizer: new AdamW(),
      phase: { name: "p", steps: 10, batchSize: 2 },
      checkpoint: { storage, every: 2, keepLast: 1 },
      metrics: sink,
      maxNonFinite: 3,
    }).catch((e) => e);
    expect(err).toBeInstanceOf(NonFiniteLossError);
    expect(err.lastCheckpoint).toBe("ckpt-2");
    expect(err.inARow).toBe(3);
    expect(err.message).toMatch(/3 optimizer steps in a row.*gradient norm is NaN.*'ckpt-2'/s);
    expect(sink.of("skip").map((s) => [s.step, s.loss !== null, s.gradNorm])).toEqual([
      [4, true, null],
      [4, true, null],
      [4, true, null],
    ]);
    expect(sink.records.at(-1)).toMatchObject({ type: "stop", reason: "non-finite", lastCheckpoint: "ckpt-2" });
    expect((await listCheckpoints(storage)).map((c) => c.id)).toEqual(["ckpt-2"]);
    const state = await readTrainerState(storage, "ckpt-2");
    expect(state.step).toBe(2);
    model.dispose();
  });

  it("a failing checkpoint write fails the phase after its record, and the run resumes from the previous checkpoint", async () => {
    class Flaky extends MemoryStorage {
      failFrom = Number.POSITIVE_INFINITY;
      override async write(name: string, files: Record<string, Uint8Array>): Promise<void> {
        if (Number(name.slice(5)) >= this.failFrom) throw new Error("ENOSPC: no space left on device");
        return super.write(name, files);
      }
    }
    const storage = new Flaky();
    storage.failFrom = 4;
    const model = tinyModel();
    const sink = new MemorySink();
    const phase = { name: "p", steps: 5, batchSize: 2 };
    const err = await trainPhase({
      model,
      mixer: generalMixer(),
      lr: buildLrSchedule(LR),
      optimizer: new AdamW(),
      phase,
      checkpoint: { storage, every: 2, keepLast: 1 },
      metrics: sink,
    }).catch((e) => e);
    expect(err).toBeInstanceOf(CheckpointWriteError);
    expect(err.message).toMatch(/could not write checkpoint 'ckpt-4'.*ENOSPC.*previous checkpoints are intact/);
    // The record is written before the error; training stopped at step 4 (no step 5, no stop record).
    expect(sink.of("checkpoint-error")).toEqual([{ type: "checkpoint-error", phase: "p", step: 4, id: "ckpt-4", error: err.message }]);
    expect(sink.of("train").map((r) => r.step)).toEqual([1, 2, 3, 4]);
    expect(sink.records.at(-1)?.type).toBe("checkpoint-error");
    expect((await listCheckpoints(storage)).map((c) => c.id)).toEqual(["ckpt-2"]);
    // Resumable: once the storage works again, the run continues from ckpt-2.
    storage.failFrom = Number.POSITIVE_INFINITY;
    const mixer = generalMixer();
    const r = await resume({ storage, mixer });
    expect(r.fromCheckpoint).toBe("ckpt-2");
    const done = await trainPhase({ ...r, mixer, lr: r.lr!, phase: r.phase, checkpoint: { storage, every: 2, keepLast: 1 } });
    expect(done.stopped).toBe("completed");
    expect(done.checkpoints).toEqual(["ckpt-4", "ckpt-5"]);
    r.model.dispose();
    model.dispose();
  });

  it("with checkpoint.onError 'continue' a failing write is recorded and training goes on", async () => {
    class Full extends MemoryStorage {
      override async write(name: string, files: Record<string, Uint8Array>): Promise<void> {
        if (name !== "ckpt-2") throw new Error("ENOSPC: no space left on device");
        return super.write(name, files);
      }
    }
    const storage = new Full();
    const model = tinyModel();
    const sink = new MemorySink();
    const summary = await trainPhase({
      model,
      mixer: generalMixer(),
      lr: buildLrSchedule(LR),
      optimizer: new AdamW(),
      phase: { name: "p", steps: 5, batchSize: 2 },
      checkpoint: { storage, every: 2, keepLast: 1, onError: "continue" },
      metrics: sink,
    });
    expect(summary.stopped).toBe("completed");
    expect(summary.checkpoints).toEqual(["ckpt-2"]);
    expect(summary.lastCheckpoint).toBe("ckpt-2");
    expect(summary.checkpointErrors).toHaveLength(2); // step 4 and the final step 5
    expect(summary.checkpointErrors[0]).toMatch(/could not write checkpoint 'ckpt-4'.*ENOSPC/);
    expect(sink.of("checkpoint-error").map((e) => e.step)).toEqual([4, 5]);
    expect(sink.of("train").map((r) => r.step)).toEqual([1, 2, 3, 4, 5]);
    expect((await listCheckpoints(storage)).map((c) => c.id)).toEqual(["ckpt-2"]);
    const loaded = await loadCheckpoint(storage);
    expect(loaded.state.step).toBe(2);
    loaded.model.dispose();
    model.dispose();
    // A typo in the option is refused before training.
    const other = tinyModel();
    await expect(
      trainPhase({
        model: other,
        mixer: generalMixer(),
        lr: buildLrSchedule(LR),
        optimizer: new AdamW(),
        phase: { name: "p", steps: 1, batchSize: 2 },
        checkpoint: { storage, onError: "ignore" as "continue" },
      }),
    ).rejects.toThrow(/checkpoint.onError must be "throw" or "continue"/);
    other.dispose();
  });

  it("an aborted signal stops after the current step with a checkpoint", async () => {
    const model = tinyModel();
    const storage = new MemoryStorage();
    const controller = new AbortController();
    const summary = await trainPhase({
      model,
      mixer: generalMixer(),
      lr: buildLrSchedule(LR),
      optimizer: new AdamW(),
      phase: { name: "p", steps: 50, batchSize: 2 },
      checkpoint: { storage, every: 10 },
      signal: controller.signal,
      onProgress: (e) => {
        if (e.step === 3) controller.abort();
      },
    });
    expect(summary.stopped).toBe("aborted");
    expect(summary.time.step).toBe(3);
    expect(summary.lastCheckpoint).toBe("ckpt-3");
    expect((await readTrainerState(storage, "ckpt-3")).step).toBe(3);
    model.dispose();
  });
});
