#!/usr/bin/env node
// `pnpm verify:paper-shape`: training steps at the paper's shape (2,048-token sequences, the
// 50,304-wide output layer) checked against PyTorch. For each model: seeded random weights are
// written as model.safetensors (HF names); this project (wasm with the native kernels, or
// WebGPU through Dawn) and bench/torch_ref.py both load that file, draw the same token ids
// (bench/configs.mjs benchTokens), and take the same AdamW steps, each over several accumulated
// micro-batches. Prints each step's loss and global gradient norm on both sides, the measured
// peak memory (tensor bytes from tf.profile, process max RSS) next to the memory plan's
// estimate, and fails (exit 1) when a figure is outside the tolerance. Run it under
// `flock /tmp/cpu.lock` on a shared machine: it keeps the CPUs busy for minutes.
//
//   pnpm verify:paper-shape                                      # 70m and 160m on wasm, 14m on WebGPU
//   pnpm verify:paper-shape --runs wasm:pythia-70m --accum 3 --steps 2
//   pnpm verify:paper-shape --runs wasm:pythia-14m --seq 256      # a quick check
//   pnpm verify:paper-shape --record docs/paper-shape.md          # also write the report
import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { parseArgs } from "node:util";

const root = resolve(import.meta.dirname, "..");
const dist = (pkg, entry = "index") => resolve(root, `packages/${pkg}/dist/${entry}.js`);

// Both sides compute in float32 (`--reference float64` runs PyTorch in float64 instead); they
// may differ by float32 rounding, accumulated over sums of 2,048 × 50,304 logits and AdamW
// steps. Gradient norms are summed in float64 on both sides.
export const TOLERANCE = { lossRel: 1e-5, gradNormRel: 1e-4 };

const { values: a } = parseArgs({
  options: {
    runs: { type: "string", default: "wasm:pythia-70m,wasm:pythia-160m,webgpu:pythia-14m" },
    seq: { type: "string", default: "2048" },
    batch: { type: "string", default: "1" },
    accum: { type: "string", default: "3" },
    steps: { type: "string", default: "2" },
    "webgpu-accum": { type: "string", default: "2" },
    "webgpu-steps": { type: "string", default: "1" },
    lr: { type: "string", default: "1e-4" },
    recompute: { type: "string", default: "auto" },
    offload: { type: "string", default: "auto" },
    python: { type: "string", default: "/usr/bin/python3" },
    reference: { type: "string", default: "float32" },
    dir: { type: "string", default: join(tmpdir(), "midtrain-paper-shape") },
    record: { type: "string" },
    child: { type: "string" },
    help: { type: "boolean", short: "h", default: false },
  },
});

if (a.help) {
  console.log(
    "usage: pnpm verify:paper-shape [--runs wasm:pythia-70m,wasm:pythia-160m,webgpu:pythia-14m] [--seq 2048] [--batch 1]\n" +
      "       [--accum 3] [--steps 2] [--webgpu-accum 2] [--webgpu-steps 1] [--lr 1e-4] [--recompute auto|on|off]\n" +
      "       [--offload auto|on|off (AdamW moments and gradient accumulator in host memory; auto: when the wasm heap needs it)]\n" +
      "       [--python /usr/bin/python3] [--reference float32|float64] [--dir DIR (weights)] [--record FILE.md]",
  );
  process.exit(0);
}

/** The JS side of one run, in its own process (its max RSS is the run's). */
async function child(spec) {
  const { initBackend } = await import(dist("backend"));
  const M = await import(dist("model"));
  const MN = await import(dist("model", "node"));
  const Tr = await import(dist("trainer"));
  const { benchTokens } = await import(resolve(root, "bench/configs.mjs"));
  const { tf, backend, device } = await initBackend({ prefer: spec.backend, onNotice: () => {} });
  if (backend !== spec.backend) throw new Error(`asked for ${spec.backend}, got ${backend}`);
  tf.env().set("CHECK_COMPUTATION_FOR_ERRORS", false);
  const cfg = M.getModelConfig(spec.model);
  const weights = join(spec.dir, "model.safetensors");
  if (!existsSync(weights)) {
    const fresh = M.createModel(cfg, { seed: 1 });
    await MN.saveHf(fresh, spec.dir);
    fresh.dispose();
  }
  writeFileSync(join(spec.dir, "model.json"), JSON.stringify(cfg));
  const model = await MN.loadHf(spec.dir);
  const { seq: T, batch: B, accum, steps } = spec;
  if (T > cfg.seqLen) throw new Error(`--seq ${T} is longer than ${spec.model}'s context (${cfg.seqLen})`);
  // The model's memory options, where the model has them (per-block recomputation, chunked loss).
  const hasOptions = typeof model.setMemoryOptions === "function";
  if (hasOptions) model.setMemoryOptions({ recompute: spec.recompute, lossChunkTokens: "auto" });
  const lossChunk = typeof model.lossChunkTokensFor === "function" ? model.lossChunkTokensFor(B * T) : 0;
  const memBackend = backend === "webgpu" ? "webgpu" : backend === "wasm" ? "wasm" : "cpu";
  const planInput = (offload) => ({
    model: cfg,
    seqLen: T,
    microBatch: B,
    gradAccum: accum,
    backend: memBackend,
    recompute: hasOptions && spec.recompute,
    lossChunk,
    offload,
  });
  const heap = { bytes: Tr.WASM_HEAP_LIMIT_BYTES, source: "the wasm heap" };
  const fitsHeap = (offload) => Tr.estimateTrainingMemory(planInput(offload)).total <= heap.bytes;
  // Optimizer offload (AdamW moments and the gradient accumulator in host memory): on, off, or
  // (auto) only when the wasm heap cannot hold the step with the optimizer on the device.
  const offload = spec.offload === "on" || (spec.offload === "auto" && backend === "wasm" && !fitsHeap(false) && fitsHeap(true));
  const plan = Tr.estimateTrainingMemory(planInput(offload));
  if (backend === "wasm") {
    // The whole step lives in the wasm heap (4 GiB): refuse before allocating, with what fits.
    try {
      Tr.assertFitsMemory(planInput(offload), heap);
    } catch (e) {
      if (!(e instanceof Tr.MemoryBudgetError)) throw e;
      model.dispose();
      console.log(`RESULT ${JSON.stringify({ refused: e.message, largestSeqLen: e.largestSeqLen, plan: { total: plan.total } })}`);
      return;
    }
  }
  const opt = new Tr.AdamW({ beta1: 0.9, beta2: 0.95, eps: 1e-8, weightDecay: 0.1, offload });
  const ids = benchTokens(steps * accum * B * (T + 1), cfg.vocabSize);
  const micro = (s, k) => {
    const inputs = new Int32Array(B * T);
    const targets = new Int32Array(B * T);
    for (let r = 0; r < B; r++) {
      const o = ((s * accum + k) * B + r) * (T + 1);
      inputs.set(ids.subarray(o, o + T), r * T);
      targets.set(ids.subarray(o + 1, o + T + 1), r * T);
    }
    return { batchSize: B, seqLen: T, inputs, targets, mask: new Float32Array(B * T).fill(1) };
  };
  const out = [];
  let peakBytes = 0;
  for (let s = 0; s < steps; s++) {
    const t0 = performance.now();
    let loss;
    let norm;
    const info = await tf.profile(async () => {
      const batches = Array.from({ length: accum }, (_, k) => micro(s, k));
      // Offloaded: the gradients are accumulated in host memory (Float32Arrays).
      const g = offload ? await Tr.computeGradientsOnHost(model, batches) : Tr.computeGradients(model, batches);
      loss = (await g.loss.data())[0];
      // The global norm summed in float64 (a float32 sum over millions of squares is itself ~1e-4 off).
      let sq = 0;
      for (const t of g.grads.values()) {
        const v = t instanceof Float32Array ? t : await t.data();
        for (let i = 0; i < v.length; i++) sq += v[i] * v[i];
      }
      norm = Math.sqrt(sq);
      if (!Number.isFinite(loss) || !Number.isFinite(norm)) {
        Tr.disposeGradients(g);
        throw new Error(`step ${s + 1}: non-finite loss ${loss} or gradient norm ${norm}; no update applied`);
      }
      await opt.update(model.params, g.grads, spec.lr);
      Tr.disposeGradients(g);
    });
    peakBytes = Math.max(peakBytes, info.peakBytes);
    out.push({ loss, gradNorm: norm, seconds: +((performance.now() - t0) / 1000).toFixed(1) });
    console.error(`[${spec.backend} ${spec.model}] step ${s + 1}: loss ${loss.toFixed(6)} grad norm ${norm.toFixed(6)} (${out.at(-1).seconds} s)`);
  }
  opt.dispose();
  model.dispose();
  console.log(
    `RESULT ${JSON.stringify({
      device: device.description,
      matmul: device.details?.matmul ?? null,
      memoryOptions: hasOptions ? { recompute: spec.recompute, lossChunk, offload } : { offload },
      steps: out,
      peakTensorBytes: peakBytes,
      maxRssBytes: process.resourceUsage().maxRSS * 1024,
      plan: { total: plan.total, process: plan.process, host: plan.host },
    })}`,
  );
}

if (a.child) {
  await child(JSON.parse(a.child));
  process.exit(0);
}

function run(cmd, args, env = {}) {
  const r = spawnSync(cmd, args, { cwd: root, env: { ...process.env, ...env }, encoding: "utf8", maxBuffer: 1 << 26, stdio: ["ignore", "pipe", "inherit"] });
  const line = (r.stdout ?? "").split("\n").find((l) => l.startsWith("RESULT "));
  if (r.status !== 0 || !line)
    return { error: `exit ${r.status}${r.error ? ` (${r.error.message})` : ""}: ${(r.stdout ?? "").trim().split("\n").slice(-2).join(" | ")}` };
  return JSON.parse(line.slice(7));
}

// Build what the child imports (a no-op when the sources have not changed).
{
  const filters = ["backend", "model", "trainer", "native-blas"].flatMap((p) => ["--filter", `@midtrain/${p}`]);
  const r = spawnSync("pnpm", ["exec", "turbo", "run", "build", ...filters, "--output-logs=errors-only"], {
    cwd: root,
    stdio: ["ignore", "ignore", "inherit"],
    env: { ...process.env, MIDTRAIN_SKIP_DTS: "1" },
  });
  if (r.status !== 0) process.exit(r.status ?? 1);
}

if (!["auto", "on", "off"].includes(a.offload)) {
  console.error(`--offload takes auto, on or off, got '${a.offload}'`);
  process.exit(2);
}

const mib = (b) => (b / 2 ** 20).toFixed(0);
const rel = (x, y) => Math.abs(x - y) / Math.max(Math.abs(y), 1e-12);
const rows = [];
let failed = false;
for (const item of a.runs.split(",")) {
  const [backend, model] = item.split(":");
  if (!model || !["wasm", "webgpu", "cpu"].includes(backend)) {
    console.error(`--runs takes backend:model pairs (wasm, webgpu or cpu), got '${item}'`);
    process.exit(2);
  }
  const gpu = backend === "webgpu";
  const spec = {
    backend,
    model,
    seq: Number(a.seq),
    batch: Number(a.batch),
    accum: Number(gpu ? a["webgpu-accum"] : a.accum),
    steps: Number(gpu ? a["webgpu-steps"] : a.steps),
    lr: Number(a.lr),
    recompute: a.recompute === "on" || (a.recompute === "auto" && model !== "pythia-14m"),
    offload: a.offload,
    dir: join(a.dir, model),
  };
  mkdirSync(spec.dir, { recursive: true });
  console.error(`[verify] ${backend} ${model}: ${spec.steps} step(s) of ${spec.accum} × ${spec.batch} × ${spec.seq} tokens ...`);
  let js = run(process.execPath, [import.meta.filename, "--child", JSON.stringify(spec)]);
  if (js.refused) {
    // The plan says the step cannot fit the wasm heap: record that, then prove the step at the
    // longest sequence (a multiple of 128) that does fit.
    console.error(`[verify] ${backend} ${model}: refused before training: ${js.refused}`);
    rows.push({ backend, model, spec: { ...spec }, refused: js.refused, plannedBytes: js.plan.total });
    spec.seq = Math.floor(js.largestSeqLen / 128) * 128;
    if (spec.seq === 0) continue;
    console.error(`[verify] ${backend} ${model}: again at ${spec.seq} tokens, the longest multiple of 128 the plan fits ...`);
    js = run(process.execPath, [import.meta.filename, "--child", JSON.stringify(spec)]);
  }
  if (js.error) {
    console.error(`[verify] ${backend} ${model}: ${js.error}`);
    rows.push({ backend, model, spec, error: js.error });
    failed = true;
    continue;
  }
  const torchRun = (dtype) =>
    run(
      a.python,
      [
        "bench/torch_ref.py",
        "--weights",
        join(spec.dir, "model.safetensors"),
        "--model-json",
        join(spec.dir, "model.json"),
        "--seq",
        String(spec.seq),
        "--batch",
        String(spec.batch),
        "--accum",
        String(spec.accum),
        "--steps",
        String(spec.steps),
        "--lr",
        String(spec.lr),
        "--dtype",
        dtype,
        // Per-block checkpointing on the PyTorch side too (same numbers; pythia-160m at 2,048
        // tokens needs over 8 GB without it).
        ...(spec.recompute ? ["--recompute"] : []),
      ],
      { OPENBLAS_NUM_THREADS: "2", OMP_NUM_THREADS: "1" },
    );
  console.error(`[verify] ${model}: PyTorch ${a.reference} ...`);
  const pt = torchRun(a.reference);
  if (pt.error) {
    rows.push({ backend, model, spec, js, error: `PyTorch: ${pt.error}` });
    failed = true;
    continue;
  }
  const checks = js.steps.map((s, i) => {
    const t = pt.steps[i];
    const ok = rel(s.loss, t.loss) <= TOLERANCE.lossRel && rel(s.gradNorm, t.gradNorm) <= TOLERANCE.gradNormRel;
    if (!ok) failed = true;
    return { step: i + 1, js: s, pt: t, lossRel: rel(s.loss, t.loss), normRel: rel(s.gradNorm, t.gradNorm), ok };
  });
  rows.push({ backend, model, spec, js, pt, checks });
}

const lines = [];
lines.push(
  `| run | step | loss (midtrain) | loss (PyTorch ${a.reference}) | rel. diff | grad norm (midtrain) | grad norm (PyTorch ${a.reference}) | rel. diff | within tolerance |`,
  "|---|---|---|---|---|---|---|---|---|",
);
for (const r of rows) {
  const name = `${r.backend} ${r.model}, ${r.spec.steps} × (${r.spec.accum} × ${r.spec.batch} × ${r.spec.seq})`;
  if (r.refused) {
    lines.push(`| ${name} | – | refused before training (plan: ${mib(r.plannedBytes)} MiB of tensors): ${r.refused.replaceAll("|", "/")} | | | | | | – |`);
    continue;
  }
  if (r.error) {
    lines.push(`| ${name} | – | error: ${r.error.replaceAll("|", "/").slice(0, 300)} | | | | | | no |`);
    continue;
  }
  for (const c of r.checks) {
    lines.push(
      `| ${name} | ${c.step} | ${c.js.loss.toFixed(6)} | ${c.pt.loss.toFixed(6)} | ${c.lossRel.toExponential(1)} | ${c.js.gradNorm.toFixed(6)} | ${c.pt.gradNorm.toFixed(6)} | ${c.normRel.toExponential(1)} | ${c.ok ? "yes" : "**no**"} |`,
    );
  }
}
lines.push(
  "",
  "| run | memory options | peak tensors, measured (MiB) | planned (MiB) | measured / planned | max RSS (MiB) | planned process (MiB) | RSS / planned | s per step (midtrain / PyTorch, same run) |",
  "|---|---|---|---|---|---|---|---|---|",
);
for (const r of rows.filter((x) => !x.error && !x.refused)) {
  const j = r.js;
  const off = j.memoryOptions?.offload ? `, optimizer offload (host: ${mib(j.plan.host)} MiB planned)` : "";
  const mo =
    j.memoryOptions && "recompute" in j.memoryOptions
      ? `recompute ${j.memoryOptions.recompute ? "on" : "off"}, loss chunk ${j.memoryOptions.lossChunk || "none"}${off}`
      : `plain (model without memory options)${off}`;
  const secs = j.steps.map((s, i) => `${s.seconds} / ${r.pt.steps[i].seconds}`).join(", ");
  lines.push(
    `| ${r.backend} ${r.model} | ${mo} | ${mib(j.peakTensorBytes)} | ${mib(j.plan.total)} | ${(j.peakTensorBytes / j.plan.total).toFixed(2)} | ${mib(j.maxRssBytes)} | ${mib(j.plan.process)} | ${(j.maxRssBytes / j.plan.process).toFixed(2)} | ${secs} |`,
  );
}
const devices = rows.filter((x) => x.js && !x.error && !x.refused).map((x) => `${x.backend}: ${x.js.device}${x.js.matmul ? ` (matmul: ${x.js.matmul})` : ""}`);
const torch = rows.find((x) => x.pt)?.pt;
const report = [
  `Tolerance (fp32): relative loss difference ≤ ${TOLERANCE.lossRel}, relative gradient-norm difference ≤ ${TOLERANCE.gradNormRel}.`,
  "",
  ...lines,
  "",
  ...devices.map((d) => `- ${d}`),
  torch ? `- PyTorch ${torch.torch} (${torch.dtype}) on ${torch.device}, ${torch.torchThreads} thread(s)` : "",
  `- ${new Date().toISOString()}, Node ${process.version}`,
].join("\n");
console.log(report);
if (a.record) {
  writeFileSync(resolve(root, a.record), `${report}\n`);
  console.log(`\nwritten: ${a.record}`);
}
process.exit(failed ? 1 : 0);
