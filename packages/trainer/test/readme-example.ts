import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { initBackend } from "@midtrain/backend";
import { byteTokenizer, createMixer, packPretrain, packSft } from "@midtrain/data";
import { createModel, getModelConfig } from "@midtrain/model";
import { buildLrSchedule, buildMixtureSchedule } from "@midtrain/schedulers";
import { AdamW, branch, resume, startSft, type TrainerCallback, trainPhase } from "@midtrain/trainer";
import { FsStorage, installSignalHandlers, JsonlSink } from "@midtrain/trainer/node";

await initBackend({ prefer: "cpu" });
const tok = byteTokenizer();
const seqLen = 16;
const text = (words: string, n: number) => Array.from({ length: n }, (_, i) => `${words} ${i} `.repeat(6));
const general = packPretrain(text("the cat sat on the mat", 200), tok, { seqLen });
const code = packPretrain(text("def f(x): return x + 1", 100), tok, { seqLen });
const validation = { general: packPretrain(text("a dog ran far", 10), tok, { seqLen, keepTail: true }) };
const out = mkdtempSync(join(tmpdir(), "midtrain-example-"));
const { signal, dispose } = installSignalHandlers(); // SIGINT/SIGTERM: checkpoint, then return

// A callback of your own: print every 10th step.
const printer: TrainerCallback = {
  postStep(ctx, s) {
    if (s.step % 10 === 0) console.log(`${ctx.spec.name} step ${s.step}: loss ${s.loss.toFixed(3)}, ${Math.round(s.tokensPerSec)} tok/s`);
  },
};

// 1. Pretrain to step 40 on general data; keep the branch point, step 24.
const pretrainMixer = () => createMixer({ sources: { general }, validation, schedule: { general: 1 }, seed: 1 });
const pretrain = new FsStorage(join(out, "pretrain"));
const log = new JsonlSink(join(out, "pretrain.jsonl"));
const pre = await trainPhase({
  model: createModel(getModelConfig("tiny-1m", { nLayer: 2, dModel: 32, nHead: 2, seqLen, intermediateSize: 128 }), { seed: 0 }),
  optimizer: new AdamW(), // TRAINING_DEFAULTS.adamw: betas 0.9/0.95, eps 1e-8, weight decay 0.1
  mixer: pretrainMixer(),
  lr: buildLrSchedule({ type: "cosine", peak: 1e-2, min: 1e-4, warmup: 4, total: 40 }),
  phase: { name: "pretrain", steps: 40, batchSize: 4, gradAccum: 2 }, // clipNorm: 1 by default
  evalEvery: 20,
  evalSets: ["general"],
  tokenizer: tok,
  checkpoint: { storage: pretrain, every: 10, keepLast: 2, at: [24] },
  metrics: log,
  logEvery: 5, // a train record every 5 steps; eval, checkpoint and stop records always
  callbacks: [printer],
  signal,
});
await log.close();

// 2. Midtrain: branch at 24 with 20% code. Weights, AdamW moments, LR schedule and time continue.
const mixture = { type: "midtraining", general: "general", specialized: "code", weight: 0.2, start: 24 };
const mixer = createMixer({
  sources: { general, code },
  validation,
  schedule: buildMixtureSchedule(mixture, { sources: ["general", "code"] }),
  seed: 1,
});
const b = await branch({ storage: pretrain, checkpoint: "ckpt-24", mixer });
const midtrain = new FsStorage(join(out, "midtrain-code-20"));
const mid = await trainPhase({
  ...b,
  mixer,
  mixture,
  lr: buildLrSchedule(b.state.schedules.lr!),
  phase: { name: "midtrain", steps: 40, batchSize: 4 },
  checkpoint: { storage: midtrain },
  callbacks: [printer],
  signal,
});

// 3. SFT from the branch's final weights: fresh AdamW, its own schedule, time from 0.
const sft = packSft(
  Array.from({ length: 40 }, (_, i) => ({ prompt: `${i}+1=`, response: `${i + 1}` })),
  tok,
  { seqLen },
);
const s = await startSft({ storage: midtrain, checkpoint: mid.lastCheckpoint! });
const done = await trainPhase({
  ...s,
  mixer: createMixer({ sources: { sft }, validation: { sft, ...validation }, schedule: { sft: 1 }, seed: 2 }),
  lr: buildLrSchedule({ type: "cosine", peak: 3e-3, min: 0, warmup: 1, total: 10 }),
  phase: { name: "sft", steps: 10, batchSize: 4 },
  evalSets: ["sft", "general"],
  signal,
});
console.log(`after SFT: sft loss ${done.evals.sft.loss.toFixed(3)}, general loss ${done.evals.general.loss.toFixed(3)}`);

// 4. Resume: the newest intact checkpoint (corrupt newer ones are skipped and listed), the mixer's
//    state restored into a mixer built like the original. Trains on if the phase was stopped
//    (Ctrl-C above); here it had finished, so nothing is left to do.
const again = pretrainMixer();
const r = await resume({ storage: pretrain, mixer: again });
const rest = await trainPhase({ ...r, mixer: again, lr: r.lr!, phase: r.phase, checkpoint: { storage: pretrain } });
console.log(`pretrain ${pre.stopped} at ${pre.time.step}; resumed from ${r.fromCheckpoint}, now at step ${rest.time.step}`);
dispose();
