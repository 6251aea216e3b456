#!/usr/bin/env node
// Data-parallel training step on worker_threads (bench prototype of the "both cores" route):
// N replicas of the model (same seed → same weights), each computes the gradient of its share
// of the batch on its own tfjs-backend-wasm instance; the gradients are averaged through a
// SharedArrayBuffer (weighted by loss tokens, so the result equals the full-batch gradient), and
// every replica applies the same AdamW update to the same averaged gradient, so the replicas stay
// identical without sending weights around. Prints one "RESULT " JSON line like run.mjs.
// Usage: node bench/dp.mjs --config a --workers 2 [--steps 6] [--warmup 2] [--variant base]
import { resolve } from "node:path";
import { parseArgs } from "node:util";
import { isMainThread, parentPort, Worker, workerData } from "node:worker_threads";
import { benchTokens, CONFIGS } from "./configs.mjs";

const root = resolve(import.meta.dirname, "..");

if (isMainThread) {
  const { values: a } = parseArgs({
    options: {
      config: { type: "string", default: "a" },
      workers: { type: "string", default: "2" },
      steps: { type: "string", default: "6" },
      warmup: { type: "string", default: "2" },
      batch: { type: "string" },
      variant: { type: "string", default: "base" },
      "check-growth": { type: "boolean", default: false },
    },
  });
  const spec = CONFIGS[a.config];
  const W = Number(a.workers);
  const B = Number(a.batch ?? spec.batch);
  const T = spec.seq;
  if (B % W !== 0) throw new Error(`batch ${B} does not split over ${W} workers`);
  const M = await import(resolve(root, "packages/model/dist/index.js"));
  const cfg = M.getModelConfig(spec.preset, spec.overrides);
  const nParams = M.countParams(cfg);
  // One gradient slot per worker, plus one float for its loss-token count.
  const shared = new SharedArrayBuffer(4 * W * (nParams + 1));
  const idsArr = benchTokens(B * (T + 1), cfg.vocabSize);
  const workers = [];
  for (let w = 0; w < W; w++) {
    const rows = B / W;
    const inputs = new Int32Array(rows * T);
    const targets = new Int32Array(rows * T);
    for (let r = 0; r < rows; r++) {
      const src = (w * rows + r) * (T + 1);
      inputs.set(idsArr.subarray(src, src + T), r * T);
      targets.set(idsArr.subarray(src + 1, src + T + 1), r * T);
    }
    workers.push(
      new Worker(new URL(import.meta.url), { workerData: { w, W, config: a.config, rows, T, inputs, targets, shared, nParams, variant: a.variant } }),
    );
  }
  const waiting = new Map();
  const call = (w, msg) =>
    new Promise((res, rej) => {
      waiting.set(w, { res, rej });
      workers[w].postMessage(msg);
    });
  workers.forEach((wk, w) => {
    wk.on("message", (m) => waiting.get(w)?.res(m));
    wk.on("error", (e) => waiting.get(w)?.rej(e));
  });
  await Promise.all(workers.map((_, w) => call(w, { cmd: "init" })));
  const step = async () => {
    const r = await Promise.all(workers.map((_, w) => call(w, { cmd: "grad" })));
    const tok = r.reduce((x, y) => x + y.tokens, 0);
    const loss = r.reduce((x, y) => x + y.loss * y.tokens, 0) / tok;
    const done = await Promise.all(workers.map((_, w) => call(w, { cmd: "apply" })));
    return { loss, mem: done[0] };
  };
  const losses = [];
  for (let i = 0; i < Number(a.warmup); i++) losses.push((await step()).loss);
  const first = await step();
  losses.push(first.loss);
  const times = [];
  const cpuTimes = [];
  let last = first;
  for (let i = 0; i < Number(a.steps); i++) {
    const t = performance.now();
    const c = process.cpuUsage();
    last = await step();
    losses.push(last.loss);
    times.push(performance.now() - t);
    const dc = process.cpuUsage(c);
    cpuTimes.push((dc.user + dc.system) / 1000);
  }
  const sorted = [...times].sort((x, y) => x - y);
  const median = sorted[Math.floor(sorted.length / 2)];
  const fpt = M.flopsPerToken(cfg, T);
  console.log(
    `RESULT ${JSON.stringify({
      config: a.config,
      label: spec.label,
      backend: "wasm",
      device: `${W} worker_threads x WebAssembly`,
      variant: `dp${W}${a.variant === "base" ? "" : `,${a.variant}`}`,
      batch: B,
      seq: T,
      params: nParams,
      flopsPerToken: fpt,
      stepsTimed: times.length,
      medianStepMs: +median.toFixed(1),
      minStepMs: +sorted[0].toFixed(1),
      medianCpuMs: +[...cpuTimes].sort((x, y) => x - y)[Math.floor(cpuTimes.length / 2)].toFixed(1),
      tokensPerSec: +(((B * T) / median) * 1000).toFixed(1),
      gflops: +((B * T * fpt) / (median / 1000) / 1e9).toFixed(2),
      firstLoss: +losses[0].toFixed(4),
      lastLoss: +losses[losses.length - 1].toFixed(4),
      peakRssMB: +(process.resourceUsage().maxRSS / 1024).toFixed(1),
      peakTensorMB: null,
      tensorMBAtEnd: +(last.mem.bytes / 2 ** 20).toFixed(1),
      growth: {
        tensorsAfterWarmup: first.mem.tensors,
        tensorsAtEnd: last.mem.tensors,
        bytesAfterWarmup: first.mem.bytes,
        bytesAtEnd: last.mem.bytes,
        steps: times.length,
      },
    })}`,
  );
  for (const wk of workers) await wk.terminate();
} else {
  const { w, W, config, rows, T, inputs, targets, shared, nParams, variant } = workerData;
  const { BENCH_LR, benchOptimizer, startBench } = await import("./setup.mjs");
  // The replicas share the cores: each runs a native BLAS (when it loads) on one thread,
  // unless the variant says otherwise.
  const { tf, M, T: trainer } = await startBench("wasm", variant, { blasThreads: 1 });
  const spec = CONFIGS[config];
  const cfg = M.getModelConfig(spec.preset, spec.overrides);
  const model = M.createModel(cfg, { seed: 0 });
  const opt = benchOptimizer(trainer);
  const names = [...model.params.keys()];
  const offsets = new Map();
  let off = 0;
  for (const n of names) {
    offsets.set(n, off);
    off += model.params.get(n).size;
  }
  if (off !== nParams) throw new Error(`param count mismatch ${off} vs ${nParams}`);
  const slot = (k) => new Float32Array(shared, 4 * k * (nParams + 1), nParams + 1);
  const mine = slot(w);
  const batch = { batchSize: rows, seqLen: T, inputs, targets, mask: new Float32Array(rows * T).fill(1) };
  const tokens = rows * T; // mask sum (all ones here)
  parentPort.on("message", async (m) => {
    if (m.cmd === "init") return parentPort.postMessage({ ok: true });
    if (m.cmd === "grad") {
      const { loss: value, grads } = trainer.computeGradients(model, [batch]);
      for (const [name, g] of grads) mine.set(await g.data(), offsets.get(name));
      mine[nParams] = tokens;
      trainer.disposeGradients(grads);
      const loss = (await value.data())[0];
      value.dispose();
      return parentPort.postMessage({ loss, tokens });
    }
    if (m.cmd === "apply") {
      // Token-weighted average of every replica's gradient, the same on every replica.
      const slots = Array.from({ length: W }, (_, k) => slot(k));
      const total = slots.reduce((x, sl) => x + sl[nParams], 0);
      const avg = new Float32Array(nParams);
      for (const sl of slots) {
        const wgt = sl[nParams] / total;
        for (let i = 0; i < nParams; i++) avg[i] += wgt * sl[i];
      }
      const named = new Map(
        names.map((n) => [n, tf.tensor(avg.subarray(offsets.get(n), offsets.get(n) + model.params.get(n).size), model.params.get(n).shape)]),
      );
      opt.apply(model.params, named, BENCH_LR);
      tf.dispose([...named.values()]);
      return parentPort.postMessage({ tensors: tf.memory().numTensors, bytes: tf.memory().numBytes });
    }
  });
}
