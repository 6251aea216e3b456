#!/usr/bin/env node
// `pnpm bench`: training throughput (tokens/s, GFLOP/s) per reference config and backend, with the
// PyTorch reference of the same model and step run from the same command when Debian's
// python3-torch is present. See docs/performance.md.
//
//   pnpm bench                                   # configs a,b on every backend that starts + PyTorch
//   pnpm bench --configs a --backends wasm --repeat 3
//   pnpm bench --steps 1000 --check-growth       # memory growth over 1,000 steps (wasm)
//   pnpm bench --variant blas2                   # an experimental variant from bench/variants.mjs
//   pnpm bench --configs a --backends wasm --variants "base;blas2" --repeat 3   # interleaved comparison
import { spawnSync } from "node:child_process";
import { mkdirSync, writeFileSync } from "node:fs";
import { resolve } from "node:path";
import { parseArgs } from "node:util";

const root = resolve(import.meta.dirname, "..");
const { values: a } = parseArgs({
  options: {
    configs: { type: "string" },
    backends: { type: "string" },
    steps: { type: "string" },
    warmup: { type: "string" },
    batch: { type: "string" },
    repeat: { type: "string", default: "1" },
    variant: { type: "string", default: "base" },
    variants: { type: "string" },
    "check-growth": { type: "boolean", default: false },
    "no-torch": { type: "boolean", default: false },
    python: { type: "string", default: "/usr/bin/python3" },
    // Peak FLOP/s of the device (TFLOP/s, e.g. fp32 of the GPU): adds an MFU column.
    "peak-tflops": { type: "string" },
    out: { type: "string", default: resolve(root, "bench/results/latest.json") },
    help: { type: "boolean", short: "h", default: false },
  },
});
if (a.help) {
  console.log(
    "usage: pnpm bench [--configs a,b] [--backends wasm,cpu,webgpu] [--steps N] [--warmup N] [--batch N]\n" +
      "                  [--repeat N] [--variant NAME] [--variants 'A;B'] [--check-growth] [--no-torch]\n" +
      "                  [--peak-tflops X (adds MFU)] [--python PATH] [--out FILE]",
  );
  process.exit(0);
}

const growth = a["check-growth"];
// The 1,000-step growth check defaults to the small byte-vocab config (config (a) takes about
// an hour for 1,000 steps on one wasm thread); pass --configs a to run it on (a).
const configs = (a.configs ?? (growth ? "tiny" : "a,b")).split(",");
const repeat = Number(a.repeat);

// Build what the bench imports (turbo: a no-op when the sources have not changed).
{
  const filters = ["backend", "model", "trainer", "native-blas"].flatMap((p) => ["--filter", `@midtrain/${p}`]);
  const r = spawnSync("pnpm", ["exec", "turbo", "run", "build", ...filters, "--output-logs=errors-only"], {
    cwd: root,
    stdio: ["ignore", "ignore", "inherit"],
    env: { ...process.env, MIDTRAIN_SKIP_DTS: "1" },
  });
  if (r.status !== 0) process.exit(r.status ?? 1);
}

function runJson(cmd, args, env = {}) {
  // stderr passes through (progress of long runs); stdout carries the RESULT line.
  const r = spawnSync(cmd, args, {
    cwd: root,
    env: { ...process.env, ...env },
    encoding: "utf8",
    maxBuffer: 1 << 28,
    stdio: ["ignore", "pipe", growth ? "inherit" : "pipe"],
  });
  const line = (r.stdout ?? "").split("\n").find((l) => l.startsWith("RESULT "));
  if (r.status !== 0 || !line) {
    const why = (r.stderr || r.stdout || String(r.error ?? "")).trim().split("\n").slice(-3).join(" | ");
    return { error: `exit ${r.status}: ${why}` };
  }
  return JSON.parse(line.slice(7));
}

// Which backends start here (each probe in its own process: webgpu may need Mesa).
async function availableBackends() {
  const wanted = a.backends ? a.backends.split(",") : growth ? ["wasm"] : ["cuda", "webgpu", "wasm", "cpu"];
  const ok = [];
  for (const name of wanted) {
    const code = `const { probeBackend } = await import(${JSON.stringify(resolve(root, "packages/backend/dist/index.js"))});
      const p = await probeBackend(${JSON.stringify(name)}); console.log("RESULT " + JSON.stringify(p.ok ? { ok: true, device: p.device.description, isSoftware: p.device.isSoftware } : { ok: false, reason: p.reason }));
      process.exit(0);`;
    const r = runJson(process.execPath, ["--input-type=module", "-e", code]);
    if (r.ok) ok.push({ name, device: r.device, isSoftware: r.isSoftware !== false });
    else console.error(`[bench] backend ${name} skipped: ${(r.reason ?? r.error ?? "").split("\n")[0]}`);
  }
  return ok;
}

function torchAvailable() {
  if (a["no-torch"]) return false;
  const r = spawnSync(a.python, ["-c", "import torch"], { encoding: "utf8" });
  if (r.status !== 0) {
    console.error(
      `[bench] PyTorch column skipped: '${a.python} -c "import torch"' failed (install Debian's python3-torch and libopenblas0-pthread to compare)`,
    );
    return false;
  }
  return true;
}

// Steps per backend: the slow software backends (cpu, webgpu on llvmpipe) get one timed step.
function stepsFor(be) {
  if (be.name === "wasm" || !be.isSoftware || growth) return { steps: a.steps ?? "6", warmup: a.warmup ?? (growth ? "5" : "2") };
  // cpu and webgpu (llvmpipe here) take tens of seconds a step: one timed step after the
  // untimed profiled step (which also serves as warm-up).
  return { steps: "1", warmup: "0" };
}

const median = (xs) => {
  const s = xs.filter((x) => Number.isFinite(x)).sort((p, q) => p - q);
  if (!s.length) return Number.NaN;
  const h = Math.floor(s.length / 2);
  return s.length % 2 ? s[h] : (s[h - 1] + s[h]) / 2;
};

const backends = await availableBackends();
const torch = !growth && torchAvailable();
const torchCuda = torch && spawnSync(a.python, ["-c", "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)"]).status === 0;
const rows = [];
for (const config of configs) {
  // Interleave: each repeat runs every implementation once, so load changes hit all of them.
  const runs = new Map();
  const add = (key, r) => {
    if (!runs.has(key)) runs.set(key, []);
    runs.get(key).push(r);
  };
  for (let rep = 0; rep < repeat; rep++) {
    for (const be of backends) {
      // The slow software backends run once, not once per repeat.
      if (rep > 0 && be.name !== "wasm" && be.isSoftware) continue;
      // Experimental variants (bench/variants.mjs) are measured on wasm only, interleaved.
      const variants = be.name === "wasm" && a.variants ? a.variants.split(";") : [a.variant];
      for (const variant of variants) {
        const { steps, warmup } = stepsFor(be);
        // "dpN[,rest]": data-parallel over N worker_threads (bench/dp.mjs), rest applied in each.
        const dp = /^dp(\d+)(?:,(.*))?$/.exec(variant);
        const args = dp
          ? ["bench/dp.mjs", "--config", config, "--workers", dp[1], "--steps", steps, "--warmup", warmup, "--variant", dp[2] ?? "base"]
          : ["bench/run.mjs", "--config", config, "--backend", be.name, "--steps", steps, "--warmup", warmup, "--variant", variant];
        if (a.batch) args.push("--batch", a.batch);
        if (growth) args.push("--check-growth");
        const key = `tfjs-${be.name}${variant === "base" ? "" : `+${variant}`}`;
        console.error(`[bench] ${config} ${key} (${steps} steps${growth ? ", growth check" : ""}) ...`);
        add(key, runJson(process.execPath, args));
      }
    }
    if (torch && torchCuda && rep === 0) {
      console.error(`[bench] ${config} pytorch cuda ...`);
      const args = ["bench/torch_ref.py", "--config", config, "--device", "cuda", "--steps", a.steps ?? "10", "--warmup", a.warmup ?? "3"];
      if (a.batch) args.push("--batch", a.batch);
      add("pytorch-cuda", runJson(a.python, args));
    }
    if (torch) {
      for (const threads of [2, 1]) {
        console.error(`[bench] ${config} pytorch ${threads} thread(s) ...`);
        const args = ["bench/torch_ref.py", "--config", config, "--steps", a.steps ?? "10", "--warmup", a.warmup ?? "3"];
        if (a.batch) args.push("--batch", a.batch);
        add(`pytorch-${threads}t`, runJson(a.python, args, { OPENBLAS_NUM_THREADS: String(threads), OMP_NUM_THREADS: "1" }));
      }
    }
  }
  let fpt;
  for (const rs of runs.values()) for (const r of rs) fpt ??= r.flopsPerToken;
  const summary = (key) => {
    const rs = runs.get(key) ?? [];
    const ok = rs.filter((r) => !r.error);
    if (!ok.length) return { impl: key, error: rs[0]?.error ?? "no result" };
    const tps = median(ok.map((r) => r.tokensPerSec));
    return {
      impl: key,
      tokensPerSec: tps,
      gflops: fpt ? +((tps * fpt) / 1e9).toFixed(2) : null,
      mfu: fpt && a["peak-tflops"] ? +((tps * fpt) / (Number(a["peak-tflops"]) * 1e12)).toFixed(4) : undefined,
      medianStepMs: median(ok.map((r) => r.medianStepMs)),
      // CPU time per step (all threads): robust to other load for single-threaded runs.
      medianCpuMs: median(ok.map((r) => r.medianCpuMs)),
      batch: ok[0].batch,
      seq: ok[0].seq,
      peakRssMB: Math.max(...ok.map((r) => r.peakRssMB ?? 0)),
      peakTensorMB: ok[0].peakTensorMB ?? null,
      lastLoss: ok[ok.length - 1].lastLoss,
      runs: ok.map((r) => r.tokensPerSec),
      device: ok[0].device,
      matmul: ok[0].matmul === "native-blas" ? `blas ${ok[0].blasThreads}t` : (ok[0].matmul ?? undefined),
      growth: ok[0].growth,
    };
  };
  const torch2 = torch ? summary("pytorch-2t") : undefined;
  const torch1 = torch ? summary("pytorch-1t") : undefined;
  for (const key of runs.keys()) {
    const s = summary(key);
    if (torch2?.tokensPerSec && s.tokensPerSec) s.vsPytorch2t = +(s.tokensPerSec / torch2.tokensPerSec).toFixed(3);
    if (torch1?.tokensPerSec && s.tokensPerSec) s.vsPytorch1t = +(s.tokensPerSec / torch1.tokensPerSec).toFixed(3);
    // Work per step by CPU time against single-threaded PyTorch (meaningful for 1-thread runs
    // on a loaded machine, where wall-clock ratios are not).
    if (torch1?.medianCpuMs && s.medianCpuMs) s.cpuTimeVsPytorch1t = +(torch1.medianCpuMs / s.medianCpuMs).toFixed(3);
    rows.push({ config, flopsPerToken: fpt, variant: a.variant, ...s });
  }
}

// Table.
const pad = (s, n) => String(s ?? "-").padEnd(n);
const num = (x, d = 0) => (x === undefined || x === null || Number.isNaN(x) ? "-" : Number(x).toFixed(d));
console.log(
  `\n${pad("config", 7)}${pad("impl", 30)}${pad("matmul", 9)}${pad("batch", 6)}${pad("tok/s", 9)}${pad("GFLOP/s", 9)}${pad("step ms", 9)}` +
    `${pad("cpu ms", 8)}${pad("vs torch2t", 11)}${pad("vs torch1t", 11)}${pad("cpu vs t1", 10)}${pad("peak RSS MB", 12)}${pad("peak tensor MB", 15)}loss`,
);
for (const r of rows) {
  if (r.error) {
    console.log(`${pad(r.config, 7)}${pad(r.impl, 30)}error: ${r.error.slice(0, 200)}`);
    continue;
  }
  console.log(
    `${pad(r.config, 7)}${pad(r.impl, 30)}${pad(r.matmul, 9)}${pad(r.batch, 6)}${pad(num(r.tokensPerSec), 9)}${pad(num(r.gflops, 2), 9)}` +
      `${pad(num(r.medianStepMs), 9)}${pad(num(r.medianCpuMs), 8)}${pad(num(r.vsPytorch2t, 3), 11)}${pad(num(r.vsPytorch1t, 3), 11)}` +
      `${pad(num(r.cpuTimeVsPytorch1t, 3), 10)}${pad(num(r.peakRssMB), 12)}${pad(num(r.peakTensorMB), 15)}${num(r.lastLoss, 3)}` +
      (r.mfu === undefined ? "" : `  MFU ${(r.mfu * 100).toFixed(2)}%`),
  );
  if (r.growth) {
    const g = r.growth;
    console.log(
      `       growth over ${g.steps} steps: tensors ${g.tensorsAfterWarmup} -> ${g.tensorsAtEnd}, tensor bytes ` +
        `${g.bytesAfterWarmup} -> ${g.bytesAtEnd}` +
        (g.rssMBAtEnd === undefined ? "" : `, RSS ${g.rssMBAfterWarmup} -> ${g.rssMBAtEnd} MB (samples in the JSON)`),
    );
  }
}
const os = await import("node:os");
const report = { date: new Date().toISOString(), node: process.version, cpus: os.cpus().length, loadavg: os.loadavg(), rows };
console.log(
  `load average at the end: ${os
    .loadavg()
    .map((x) => x.toFixed(1))
    .join(" ")} on ${os.cpus().length} CPUs (wall-clock ratios of multi-threaded runs need an idle machine)`,
);
mkdirSync(resolve(a.out, ".."), { recursive: true });
writeFileSync(a.out, `${JSON.stringify(report, null, 2)}\n`);
console.log(`\nJSON: ${a.out} (tokens/s are medians of the timed steps, then of --repeat runs)`);
if (growth) {
  const bad = rows.filter((r) => r.growth && (r.growth.tensorsAtEnd !== r.growth.tensorsAfterWarmup || r.growth.bytesAtEnd !== r.growth.bytesAfterWarmup));
  if (bad.length) {
    console.log("GROWTH: tensor count or bytes changed after warm-up");
    process.exit(1);
  }
  console.log("no tensor growth after warm-up");
}
