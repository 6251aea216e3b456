#!/usr/bin/env node
// One benchmark run: one config on one backend, in its own process (so peak RSS belongs to it).
// Prints one JSON line prefixed with "RESULT " on stdout.
// Usage: node bench/run.mjs --config a --backend wasm [--steps 8] [--warmup 2] [--batch 8]
//        [--variant base|fused] [--profile] [--check-growth]
import { parseArgs } from "node:util";
import { benchTokens, CONFIGS } from "./configs.mjs";
import { BENCH_LR, benchOptimizer, startBench } from "./setup.mjs";

const { values: a } = parseArgs({
  options: {
    config: { type: "string", default: "a" },
    backend: { type: "string", default: "wasm" },
    steps: { type: "string", default: "8" },
    warmup: { type: "string", default: "2" },
    batch: { type: "string" },
    variant: { type: "string", default: "base" },
    profile: { type: "boolean", default: false },
    "check-growth": { type: "boolean", default: false },
    "max-seconds": { type: "string", default: "0" },
  },
});

const spec = CONFIGS[a.config];
if (!spec) throw new Error(`unknown config '${a.config}' (${Object.keys(CONFIGS).join(", ")})`);
const { tf, device, M, T: trainer } = await startBench(a.backend, a.variant);

const B = Number(a.batch ?? spec.batch);
const T = spec.seq;
const cfg = M.getModelConfig(spec.preset, spec.overrides);
const model = M.createModel(cfg, { seed: 0 });
// Memory options of the config (recomputation at the paper's shape), where the model has them.
if (spec.memory && typeof model.setMemoryOptions === "function") model.setMemoryOptions(spec.memory);
const opt = benchOptimizer(trainer);

// Fixed pseudo-random batch (LCG), all positions counted but through the masked loss path.
const idsArr = benchTokens(B * (T + 1), cfg.vocabSize);
const inputs = new Int32Array(B * T);
const targets = new Int32Array(B * T);
for (let r = 0; r < B; r++) {
  inputs.set(idsArr.subarray(r * (T + 1), r * (T + 1) + T), r * T);
  targets.set(idsArr.subarray(r * (T + 1) + 1, r * (T + 1) + T + 1), r * T);
}
const batch = { batchSize: B, seqLen: T, inputs, targets, mask: new Float32Array(B * T).fill(1) };

// One step as the trainer takes it: @midtrain/trainer's computeGradients (masked mean loss,
// token-weighted) and its AdamW.
async function step() {
  const { loss, grads } = trainer.computeGradients(model, [batch]);
  opt.apply(model.params, grads, BENCH_LR);
  trainer.disposeGradients(grads);
  const l = (await loss.data())[0];
  loss.dispose();
  return l;
}

const warmup = Number(a.warmup);
const steps = Number(a.steps);
const maxSeconds = Number(a["max-seconds"]);
const losses = [];
for (let i = 0; i < warmup; i++) losses.push(await step());
const afterWarm = { tensors: tf.memory().numTensors, bytes: tf.memory().numBytes, rss: process.memoryUsage().rss };

let profile;
let peakTensorBytes;
if (a.profile || !a["check-growth"]) {
  // One profiled step: peak bytes of live tensors during the step, and time per kernel.
  const info = await tf.profile(async () => {
    losses.push(await step());
  });
  peakTensorBytes = info.peakBytes + 0; // peak while the step ran (incl. params + moments)
  if (a.profile) {
    const byKernel = new Map();
    for (const k of info.kernels) {
      const ms = typeof k.kernelTimeMs === "number" ? k.kernelTimeMs : k.kernelTimeMs?.error ? 0 : 0;
      const e = byKernel.get(k.name) ?? { ms: 0, n: 0 };
      e.ms += ms;
      e.n++;
      byKernel.set(k.name, e);
    }
    profile = [...byKernel].map(([name, e]) => ({ name, ms: +e.ms.toFixed(2), n: e.n })).sort((x, y) => y.ms - x.ms);
  }
}

const times = [];
const cpuTimes = [];
const growth = [];
const t0 = performance.now();
for (let i = 0; i < steps; i++) {
  const t = performance.now();
  const c = process.cpuUsage();
  losses.push(await step());
  times.push(performance.now() - t);
  const dc = process.cpuUsage(c);
  cpuTimes.push((dc.user + dc.system) / 1000);
  if (a["check-growth"] && (i % Math.max(1, Math.floor(steps / 10)) === 0 || i === steps - 1)) {
    growth.push({ step: i + 1, tensors: tf.memory().numTensors, bytes: tf.memory().numBytes, rssMB: +(process.memoryUsage().rss / 2 ** 20).toFixed(1) });
  }
  if (a["check-growth"] && (i + 1) % 100 === 0) {
    const m = tf.memory();
    console.error(`[run] step ${i + 1}/${steps}: ${m.numTensors} tensors, ${m.numBytes} bytes, loss ${losses[losses.length - 1].toFixed(4)}`);
  }
  if (maxSeconds > 0 && (performance.now() - t0) / 1000 > maxSeconds) break;
}
const sorted = [...times].sort((x, y) => x - y);
const median = sorted[Math.floor(sorted.length / 2)];
const tokens = B * T;
const fpt = model.flopsPerToken(T);
const end = { tensors: tf.memory().numTensors, bytes: tf.memory().numBytes, rss: process.memoryUsage().rss };
const result = {
  config: a.config,
  label: spec.label,
  backend: a.backend,
  device: device.description,
  matmul: device.details?.matmul ?? null,
  blasThreads: device.details?.blasThreads ?? null,
  variant: a.variant,
  batch: B,
  seq: T,
  params: model.paramCount(),
  flopsPerToken: fpt,
  stepsTimed: times.length,
  medianStepMs: +median.toFixed(1),
  minStepMs: +sorted[0].toFixed(1),
  medianCpuMs: +[...cpuTimes].sort((x, y) => x - y)[Math.floor(cpuTimes.length / 2)].toFixed(1),
  tokensPerSec: +((tokens / median) * 1000).toFixed(1),
  gflops: +((tokens * fpt) / (median / 1000) / 1e9).toFixed(2),
  firstLoss: +losses[0].toFixed(4),
  lastLoss: +losses[losses.length - 1].toFixed(4),
  peakRssMB: +(process.resourceUsage().maxRSS / 1024).toFixed(1),
  peakTensorMB: peakTensorBytes === undefined ? null : +(peakTensorBytes / 2 ** 20).toFixed(1),
  tensorMBAtEnd: +(end.bytes / 2 ** 20).toFixed(1),
  growth: a["check-growth"]
    ? {
        steps: times.length,
        tensorsAfterWarmup: afterWarm.tensors,
        tensorsAtEnd: end.tensors,
        bytesAfterWarmup: afterWarm.bytes,
        bytesAtEnd: end.bytes,
        rssMBAfterWarmup: +(afterWarm.rss / 2 ** 20).toFixed(1),
        rssMBAtEnd: +(end.rss / 2 ** 20).toFixed(1),
        samples: growth,
      }
    : undefined,
  profile,
};
console.log(`RESULT ${JSON.stringify(result)}`);
opt.dispose();
model.dispose();
