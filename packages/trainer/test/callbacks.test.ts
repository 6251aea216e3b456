import type { Mixer } from "@midtrain/data";
import { buildLrSchedule } from "@midtrain/schedulers";
import * as tf from "@tensorflow/tfjs-core";
import { beforeAll, describe, expect, it } from "vitest";
import {
  ADAMW_DEFAULTS,
  AdamW,
  listCheckpoints,
  MemorySink,
  MemoryStorage,
  type MetricsRecord,
  readTrainerState,
  resume,
  type StepInfo,
  TRAINING_DEFAULTS,
  type TrainerCallback,
  TrainerConfigError,
  trainPhase,
} from "../src/index.js";
import { bitDiff, cpu, mixerFor, paramValues, sources, tinyModel } from "./helpers.js";

const LR = { type: "cosine", peak: 1e-2, min: 1e-3, warmup: 2, total: 12 };
const src = sources();
const generalMixer = (): Mixer => mixerFor(src, { general: 1 }, { only: ["general"] });

beforeAll(async () => {
  await cpu();
});

describe("user callbacks", () => {
  it("observe every step, every record, evaluations and checkpoints, after the built-in callbacks, awaited in order", async () => {
    const model = tinyModel();
    const storage = new MemoryStorage();
    const sink = new MemorySink();
    const log: string[] = [];
    const steps: StepInfo[] = [];
    const records: MetricsRecord[] = [];
    const counts: number[] = [];
    let seenCheckpointAtStep4: string | undefined;
    const observer: TrainerCallback = {
      name: "observer",
      onStart: (ctx) => {
        log.push(`start ${ctx.time.step} ${ctx.spec.name}`);
      },
      preStep: (ctx) => {
        log.push(`pre ${ctx.time.step}`);
      },
      // Async: the next callback must not run before this one has finished.
      postStep: async (ctx, s) => {
        await new Promise((r) => setTimeout(r, 2));
        steps.push(s);
        counts.push(tf.memory().numTensors);
        if (s.step === 4) seenCheckpointAtStep4 = ctx.summary.lastCheckpoint;
        log.push(`post ${s.step}`);
      },
      onRecord: (_ctx, r) => {
        records.push(r);
      },
      onEvaluate: (ctx, results) => {
        log.push(`eval ${ctx.time.step} ${Object.keys(results).join(",")}`);
      },
      postCheckpoint: (_ctx, id) => {
        log.push(`checkpoint ${id}`);
      },
      onEnd: (ctx, summary) => {
        log.push(`end ${ctx.time.step} ${summary.stopped} ${ctx.stepsDone}`);
      },
    };
    const second: TrainerCallback = { postStep: (_ctx, s) => void log.push(`second ${s.step}`) };
    const summary = await trainPhase({
      model,
      mixer: generalMixer(),
      lr: buildLrSchedule(LR),
      optimizer: new AdamW(),
      phase: { name: "pretrain", steps: 6, batchSize: 4, gradAccum: 2 },
      evalEvery: 3,
      evalSets: ["general"],
      checkpoint: { storage, every: 4 },
      metrics: sink,
      logEvery: 2,
      callbacks: [observer, second],
    });
    // Every applied step, with what the step did.
    expect(steps.map((s) => s.step)).toEqual([1, 2, 3, 4, 5, 6]);
    steps.forEach((s, i) => {
      expect(s.drawTime.step).toBe(i);
      expect(s.batches).toHaveLength(2);
      expect(s.stepTokensBySource).toEqual({ general: 64 });
      expect(s.gradNorm).toBeGreaterThan(0);
      expect(s.clipScale).toBeGreaterThan(0);
      expect(s.clipScale).toBeLessThanOrEqual(1);
      expect(s.tokensPerSec).toBeGreaterThan(0);
      expect(s.rowLossSums).toBeUndefined(); // nobody asked for per-row losses
    });
    expect(new Set(counts).size).toBe(1);
    // The callback sees every train record; the sink only every 2nd step (and the last).
    const trainSeen = records.filter((r) => r.type === "train");
    expect(trainSeen.map((r) => r.step)).toEqual([1, 2, 3, 4, 5, 6]);
    trainSeen.forEach((r, i) => {
      expect(r.type === "train" && r.loss).toBe(steps[i].loss);
    });
    expect(sink.of("train").map((r) => r.step)).toEqual([2, 4, 6]);
    expect(records.filter((r) => r.type !== "train")).toEqual(sink.records.filter((r) => r.type !== "train"));
    expect(records.at(-1)).toMatchObject({ type: "stop", reason: "completed", lastCheckpoint: "ckpt-6" });
    // Built-ins ran first: the checkpoint of step 4 existed when the user's postStep of step 4 ran.
    expect(seenCheckpointAtStep4).toBe("ckpt-4");
    expect(log).toEqual([
      "start 0 pretrain",
      "pre 0",
      "post 1",
      "second 1",
      "pre 1",
      "post 2",
      "second 2",
      "pre 2",
      "eval 3 general",
      "post 3",
      "second 3",
      "pre 3",
      "checkpoint ckpt-4",
      "post 4",
      "second 4",
      "pre 4",
      "post 5",
      "second 5",
      "pre 5",
      "eval 6 general",
      "checkpoint ckpt-6",
      "post 6",
      "second 6",
      "end 6 completed 6",
    ]);
    expect(summary.stopped).toBe("completed");
    model.dispose();
  });

  it("can stop training cleanly: a checkpoint at the step it stopped after, a stop record, and an exact resume", async () => {
    const phase = { name: "pretrain", steps: 8, batchSize: 4, gradAccum: 2 };
    const refModel = tinyModel();
    const refSink = new MemorySink();
    await trainPhase({ model: refModel, mixer: generalMixer(), lr: buildLrSchedule(LR), optimizer: new AdamW(), phase, metrics: refSink });
    const ref = refSink.of("train");

    const storage = new MemoryStorage();
    const sink = new MemorySink();
    const model = tinyModel();
    const mixer = generalMixer();
    const stopAt3: TrainerCallback = {
      postStep: (ctx, s) => {
        if (s.step === 3) ctx.requestStop("loss target reached");
        if (s.step === 3) ctx.requestStop("a second reason is ignored");
      },
    };
    const summary = await trainPhase({
      model,
      mixer,
      lr: buildLrSchedule(LR),
      optimizer: new AdamW(),
      phase,
      checkpoint: { storage, every: 10 },
      evalSets: ["general"],
      metrics: sink,
      callbacks: [stopAt3],
    });
    expect(summary.stopped).toBe("aborted");
    expect(summary.stopReason).toBe("loss target reached");
    expect(summary.time.step).toBe(3);
    expect(summary.checkpoints).toEqual(["ckpt-3"]);
    expect(sink.of("train").map((r) => r.step)).toEqual([1, 2, 3]);
    expect(sink.of("eval")).toEqual([]); // no end-of-phase evaluation for a stopped phase
    expect(sink.records.at(-1)).toEqual({ type: "stop", phase: "pretrain", step: 3, reason: "aborted", lastCheckpoint: "ckpt-3" });
    expect(mixer.stats().general.sequences).toBe(3 * 4); // no batch drawn after the stop
    expect((await readTrainerState(storage, "ckpt-3")).step).toBe(3);
    // The stop is clean: resuming gives the uninterrupted run's losses and weights, bit for bit.
    const again = generalMixer();
    const r = await resume({ storage, mixer: again });
    const rest = new MemorySink();
    await trainPhase({ ...r, mixer: again, lr: r.lr!, phase: r.phase, metrics: rest });
    rest.of("train").forEach((x, i) => {
      expect(x.step).toBe(ref[3 + i].step);
      expect(Object.is(x.loss, ref[3 + i].loss)).toBe(true);
    });
    expect(rest.of("train")).toHaveLength(5);
    const [a, b] = [await paramValues(refModel), await paramValues(r.model)];
    for (const [k, v] of a) expect(bitDiff(v, b.get(k)!)).toBe(0);
    refModel.dispose();
    model.dispose();
    r.model.dispose();
  });

  it("a stop requested before the first step trains nothing and writes no checkpoint", async () => {
    const storage = new MemoryStorage();
    const model = tinyModel();
    const mixer = generalMixer();
    const summary = await trainPhase({
      model,
      mixer,
      lr: buildLrSchedule(LR),
      optimizer: new AdamW(),
      phase: { name: "p", steps: 5, batchSize: 2 },
      checkpoint: { storage },
      callbacks: [{ onStart: (ctx) => ctx.requestStop("nothing to do") }],
    });
    expect(summary).toMatchObject({ stopped: "aborted", stopReason: "nothing to do", checkpoints: [] });
    expect(summary.time.step).toBe(0);
    expect(mixer.stats().general.sequences).toBe(0);
    expect(await listCheckpoints(storage)).toEqual([]);
    model.dispose();
  });

  it("a callback that throws ends the phase with its error", async () => {
    const model = tinyModel();
    const boom = new Error("logger is down");
    await expect(
      trainPhase({
        model,
        mixer: generalMixer(),
        lr: buildLrSchedule(LR),
        optimizer: new AdamW(),
        phase: { name: "p", steps: 5, batchSize: 2 },
        callbacks: [{ postStep: async (_ctx, s) => (s.step === 2 ? Promise.reject(boom) : undefined) }],
      }),
    ).rejects.toBe(boom);
    model.dispose();
  });
});

describe("logEvery", () => {
  it("writes train records every N global steps and at the phase's last step; other records always", async () => {
    const model = tinyModel();
    const optimizer = new AdamW();
    const mixer = generalMixer();
    const storage = new MemoryStorage();
    const sink = new MemorySink();
    const first = await trainPhase({
      model,
      mixer,
      optimizer,
      lr: buildLrSchedule(LR),
      phase: { name: "p", steps: 7, batchSize: 2 },
      evalEvery: 5,
      evalSets: ["general"],
      checkpoint: { storage, every: 2 },
      metrics: sink,
      logEvery: 3,
    });
    expect(sink.of("train").map((r) => r.step)).toEqual([3, 6, 7]);
    expect(sink.of("eval").map((r) => r.step)).toEqual([5, 7]);
    expect(sink.of("checkpoint").map((r) => r.step)).toEqual([2, 4, 6, 7]);
    expect(sink.of("stop")).toHaveLength(1);
    // The step count is global: a phase continuing at step 7 logs 9 and its last step 10.
    const more = new MemorySink();
    await trainPhase({
      model,
      mixer,
      optimizer,
      lr: buildLrSchedule(LR),
      time: first.time,
      phase: { name: "p", steps: 10, batchSize: 2 },
      metrics: more,
      logEvery: 3,
    });
    expect(more.of("train").map((r) => r.step)).toEqual([9, 10]);
    // The records that are written are the same as with logEvery 1.
    const all = new MemorySink();
    await trainPhase({
      model: tinyModel(),
      mixer: generalMixer(),
      optimizer: new AdamW(),
      lr: buildLrSchedule(LR),
      phase: { name: "p", steps: 7, batchSize: 2 },
      metrics: all,
    });
    expect(all.of("train").map((r) => r.step)).toEqual([1, 2, 3, 4, 5, 6, 7]);
    for (const r of sink.of("train")) expect(all.of("train")[r.step - 1].loss).toBe(r.loss);
    await expect(
      trainPhase({ model, mixer, optimizer, lr: buildLrSchedule(LR), phase: { name: "p", steps: 12, batchSize: 2 }, time: first.time, logEvery: 0 }),
    ).rejects.toThrow(TrainerConfigError);
    model.dispose();
  });
});

describe("TRAINING_DEFAULTS", () => {
  it("is frozen and is what trainPhase and AdamW use when an option is left out", async () => {
    expect(Object.isFrozen(TRAINING_DEFAULTS)).toBe(true);
    expect(Object.isFrozen(TRAINING_DEFAULTS.adamw)).toBe(true);
    expect(Object.isFrozen(TRAINING_DEFAULTS.adamw.noDecay)).toBe(true);
    expect(TRAINING_DEFAULTS.adamw).toBe(ADAMW_DEFAULTS);
    expect(TRAINING_DEFAULTS).toMatchObject({ clipNorm: 1, gradAccum: 1, maxNonFinite: 5, logEvery: 1, evalAtEnd: true, checkpointOnError: "throw" });
    const model = tinyModel();
    const optimizer = new AdamW();
    expect(optimizer.config).toEqual(ADAMW_DEFAULTS);
    const storage = new MemoryStorage();
    await trainPhase({
      model,
      mixer: generalMixer(),
      optimizer,
      lr: buildLrSchedule(LR),
      phase: { name: "p", steps: 1, batchSize: 2 },
      checkpoint: { storage },
    });
    const state = await readTrainerState(storage, "ckpt-1");
    expect(state.phase).toMatchObject({ gradAccum: TRAINING_DEFAULTS.gradAccum, clipNorm: TRAINING_DEFAULTS.clipNorm });
    model.dispose();
  });
});
