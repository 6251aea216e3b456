#!/usr/bin/env node
// Peak tensor bytes of one training step (forward + backward through tf.variableGrads) with the
// full-logits loss, the chunked fused linear + cross-entropy loss, and per-block activation
// recomputation, each in its own process on the same model and tokens. Peaks are tfjs's logical
// tensor bytes (tf.profile's peakBytes above what existed before the step: parameters are
// excluded, gradients included), not the process RSS. Step times are same-run ratios only.
//
//   node bench/loss-memory.mjs                       # pythia-70m's shape: d 512, 6 layers, V 50304, T 2048, B 1, wasm
//   node bench/loss-memory.mjs --seq 512 --backend cpu --modes plain,chunked
//
// Needs the built packages (pnpm --filter @midtrain/model --filter @midtrain/backend build).
import { spawnSync } from "node:child_process";
import { resolve } from "node:path";
import { pathToFileURL } from "node:url";
import { parseArgs } from "node:util";

const dist = (pkg) => pathToFileURL(resolve(import.meta.dirname, "..", "packages", pkg, "dist", "index.js")).href;
const { initBackend } = await import(dist("backend"));
const { createModel, getModelConfig } = await import(dist("model"));

const { values: a } = parseArgs({
  options: {
    preset: { type: "string", default: "pythia-70m" },
    seq: { type: "string", default: "2048" },
    batch: { type: "string", default: "1" },
    backend: { type: "string", default: "wasm" },
    "no-native": { type: "boolean", default: false },
    modes: { type: "string", default: "plain,chunked,recompute,chunked+recompute" },
    chunk: { type: "string", default: "auto" },
    json: { type: "boolean", default: false },
    child: { type: "boolean", default: false },
  },
});

// Each mode runs in its own process, so one that exhausts the wasm heap (4 GiB) is reported
// instead of ending the run, and no mode's allocations shape another's.
if (!a.child) {
  const MB = (x) => (x / 2 ** 20).toFixed(0);
  const rows = [];
  let head;
  for (const mode of a.modes.split(",")) {
    const args = [import.meta.filename, "--child", "--json", "--modes", mode];
    for (const k of ["preset", "seq", "batch", "backend", "chunk"]) args.push(`--${k}`, a[k]);
    if (a["no-native"]) args.push("--no-native");
    const r = spawnSync(process.execPath, args, { encoding: "utf8", maxBuffer: 1 << 26 });
    const line = r.stdout.trim().split("\n").at(-1);
    if (r.status === 0 && line?.startsWith("{")) {
      const j = JSON.parse(line);
      head ??= j;
      rows.push(...j.rows);
    } else {
      const err =
        `${r.stderr}`
          .trim()
          .split("\n")
          .filter((l) => /Error|Abort|out of memory/i.test(l))
          .at(-1) ?? `exit ${r.status}`;
      rows.push({ mode, failed: err.trim().slice(0, 120) });
    }
  }
  if (a.json) console.log(JSON.stringify({ ...head, rows }));
  else {
    if (head) {
      console.log(
        `${head.preset} (d ${head.dModel}, ${head.nLayer} layers, V ${head.vocab}), B ${head.B} × T ${head.T}, ${head.backend} (${head.device}); ` +
          `parameters ${MB(head.params)} MiB, full logits ${MB(head.logits)} MiB; peaks are tfjs tensor bytes above the parameters (gradients included), one step each`,
      );
    }
    const plain = rows.find((r) => !r.failed);
    console.log(`mode                 | chunk | loss      | peak MiB | step time / ${plain?.mode ?? "-"}'s (same run)`);
    for (const r of rows) {
      if (r.failed) console.log(`${r.mode.padEnd(20)} | failed: ${r.failed}`);
      else
        console.log(
          `${r.mode.padEnd(20)} | ${String(r.chunkTokens || "-").padStart(5)} | ${r.loss.toFixed(6)} | ${MB(r.peakBytes).padStart(8)} | ${plain ? (r.ms / plain.ms).toFixed(2) : "-"}`,
        );
    }
  }
  process.exit(0);
}

const T = Number(a.seq);
const B = Number(a.batch);
const init = await initBackend({ prefer: a.backend, ...(a.backend === "wasm" ? { nativeBlas: !a["no-native"] } : {}), onNotice: () => {} });
const { tf } = init;
const config = getModelConfig(a.preset, { seqLen: Math.max(T, 2048) });
const chunkSetting = a.chunk === "auto" ? "auto" : Number(a.chunk);
const MODES = {
  plain: { recompute: false, lossChunkTokens: 0 },
  chunked: { recompute: false, lossChunkTokens: chunkSetting },
  recompute: { recompute: true, lossChunkTokens: 0 },
  "chunked+recompute": { recompute: true, lossChunkTokens: chunkSetting },
};

const model = createModel(config, { seed: 0 });
let s = 12345;
const next = () => {
  s = (Math.imul(s, 1103515245) + 12345) >>> 0;
  return s;
};
const ids = tf.tensor2d(
  Int32Array.from({ length: B * T }, () => next() % config.vocabSize),
  [B, T],
  "int32",
);
const targets = tf.tensor2d(
  Int32Array.from({ length: B * T }, () => next() % config.vocabSize),
  [B, T],
  "int32",
);

async function step() {
  const before = tf.memory().numBytes;
  const t0 = performance.now();
  let loss = Number.NaN;
  const prof = await tf.profile(async () => {
    const { value, grads } = tf.variableGrads(() => model.loss(ids, targets), model.variables());
    loss = (await value.data())[0];
    // Read one gradient so the whole backward has run on asynchronous backends.
    await grads[model.variables()[0].name].data();
    tf.dispose([value, ...Object.values(grads)]);
  });
  return { loss, peakBytes: prof.peakBytes - before, ms: performance.now() - t0 };
}

const rows = [];
const base = tf.memory().numBytes;
for (const name of a.modes.split(",")) {
  const opts = MODES[name];
  if (!opts) throw new Error(`unknown mode ${name}; known: ${Object.keys(MODES).join(", ")}`);
  model.setMemoryOptions(opts);
  await step(); // warm-up: first-call costs (kernel setup, heap growth) stay out of the timing
  const r = await step();
  rows.push({ mode: name, chunkTokens: model.lossChunkTokensFor(B * T), ...r });
  if (tf.memory().numBytes !== base) throw new Error(`tensor bytes changed after ${name}: ${base} -> ${tf.memory().numBytes}`);
}
const logits = B * T * config.paddedVocabSize * 4;
const params = model.paramCount() * 4;
console.log(
  JSON.stringify({
    preset: a.preset,
    dModel: config.dModel,
    nLayer: config.nLayer,
    vocab: config.paddedVocabSize,
    backend: init.backend,
    device: init.device.description,
    B,
    T,
    logits,
    params,
    rows,
  }),
);
tf.dispose([ids, targets]);
model.dispose();
