// The README example, runnable: pnpm build && node packages/trainer/scripts/example.mjs
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { initBackend } from "@midtrain/backend";
import { byteTokenizer, createMixer, packPretrain, packSft } from "@midtrain/data";
import { createModel, getModelConfig } from "@midtrain/model";
import { buildLrSchedule, buildMixtureSchedule } from "@midtrain/schedulers";
import { AdamW, branch, startSft, trainPhase } from "@midtrain/trainer";
import { FsStorage, installSignalHandlers, JsonlSink } from "@midtrain/trainer/node";

await initBackend({ prefer: "cpu" });
const tok = byteTokenizer();
const seqLen = 16;
const text = (w, n) => Array.from({ length: n }, (_, i) => `${w} ${i} `.repeat(6));
const general = packPretrain(text("the cat sat", 200), tok, { seqLen });
const code = packPretrain(text("def f(x): return x", 100), tok, { seqLen });
const valid = { general: packPretrain(text("a dog ran", 10), tok, { seqLen, keepTail: true }) };
const out = mkdtempSync(join(tmpdir(), "midtrain-example-"));
const { signal } = installSignalHandlers(); // Ctrl-C: checkpoint, then return
const log = new JsonlSink(join(out, "pretrain.jsonl"));

// 1. Pretrain 0 → 40 on general data; keep the branch point (step 24).
const lrConfig = { type: "cosine", peak: 1e-2, min: 1e-4, warmup: 4, total: 40 };
const model = createModel(getModelConfig("tiny-1m", { nLayer: 2, dModel: 32, nHead: 2, seqLen, intermediateSize: 128 }), { seed: 0 });
const pre = await trainPhase({
  model,
  optimizer: new AdamW({ beta1: 0.9, beta2: 0.95, weightDecay: 0.1 }),
  mixer: createMixer({ sources: { general }, validation: valid, schedule: { general: 1 }, seed: 1 }),
  lr: buildLrSchedule(lrConfig),
  phase: { name: "pretrain", steps: 40, batchSize: 4, gradAccum: 2, clipNorm: 1 },
  evalEvery: 20,
  evalSets: ["general"],
  tokenizer: tok,
  checkpoint: { storage: new FsStorage(join(out, "pretrain")), every: 10, keepLast: 2, at: [24] },
  metrics: log,
  onProgress: (e) =>
    e.step % 10 === 0 && console.log(`step ${e.step} loss ${e.loss.toFixed(3)} ${Math.round(e.tokensPerSec)} tok/s eta ${e.etaSeconds.toFixed(0)}s`),
  signal,
});

await log.close();

// 2. Midtrain: branch at 24 with 20% code; optimizer state, LR schedule and time continue.
const mixture = { type: "midtraining", general: "general", specialized: "code", weight: 0.2, start: 24 };
const mixer = createMixer({
  sources: { general, code },
  validation: valid,
  schedule: buildMixtureSchedule(mixture, { sources: ["general", "code"] }),
  seed: 1,
});
const b = await branch({ storage: new FsStorage(join(out, "pretrain")), checkpoint: "ckpt-24", mixer });
const mid = await trainPhase({
  ...b,
  mixer,
  mixture,
  lr: buildLrSchedule(b.state.schedules.lr),
  phase: { name: "midtrain", steps: 40, batchSize: 4 },
  checkpoint: { storage: new FsStorage(join(out, "midtrain-code-20")) },
  signal,
});

// 3. SFT from the branch's final weights: fresh optimizer, own schedule, own time.
const sft = packSft(
  Array.from({ length: 40 }, (_, i) => ({ prompt: `${i}+1=`, response: `${i + 1}` })),
  tok,
  { seqLen },
);
const s = await startSft({ storage: new FsStorage(join(out, "midtrain-code-20")), checkpoint: mid.lastCheckpoint });
const done = await trainPhase({
  ...s,
  mixer: createMixer({ sources: { sft }, validation: { sft, ...valid }, schedule: { sft: 1 }, seed: 2 }),
  lr: buildLrSchedule({ type: "cosine", peak: 3e-3, warmup: 1, total: 10 }),
  phase: { name: "sft", steps: 10, batchSize: 4 },
  evalSets: ["sft", "general"],
  checkpoint: { storage: new FsStorage(join(out, "sft")) },
  signal,
});
console.log(pre.lastCheckpoint, mid.lastCheckpoint, done.lastCheckpoint, done.evals.sft.loss.toFixed(3), done.evals.general.loss.toFixed(3));
