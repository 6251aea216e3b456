#!/usr/bin/env node
// Training throughput (tokens/s) of the trainer's full step — forward, backward, clipping,
// AdamW — for the tiny configs on every backend that starts here. Not a test.
//
//   pnpm build                      # the script imports the built dist/ of the packages
//   node packages/trainer/scripts/bench.mjs [--steps 50] [--seconds 15] [--all] [--backends cpu,wasm,webgpu,cuda] [--json]
//
// Each config is timed for at most --steps steps or --seconds seconds (whichever comes first)
// after --warmup steps; --all adds tiny-4m.
import { parseArgs } from "node:util";
import { initBackend } from "@midtrain/backend";
import { byteTokenizer, createMixer, packPretrain } from "@midtrain/data";
import { createModel, getModelConfig } from "@midtrain/model";
import { AdamW, MemorySink, trainPhase } from "@midtrain/trainer";

const { values } = parseArgs({
  options: {
    steps: { type: "string", default: "50" },
    seconds: { type: "string", default: "15" },
    all: { type: "boolean", default: false },
    warmup: { type: "string", default: "1" },
    backends: { type: "string", default: "cpu,wasm,webgpu,cuda" },
    json: { type: "boolean", default: false },
  },
});
const steps = Number(values.steps);
const warmup = Number(values.warmup);
const seconds = Number(values.seconds);

const CONFIGS = [
  { name: "test-tiny (d32 L2 T16)", preset: "tiny-1m", overrides: { nLayer: 2, dModel: 32, nHead: 2, seqLen: 16, intermediateSize: 128 }, batchSize: 4 },
  { name: "tiny-1m (d128 L4 T128)", preset: "tiny-1m", overrides: {}, batchSize: 4 },
  { name: "tiny-4m (d256 L5 T256)", preset: "tiny-4m", overrides: {}, batchSize: 4, all: true },
].filter((c) => values.all || !c.all);

const tok = byteTokenizer();
const words = "the of and to in a is that for it as was with be by on not he this are or his from at which but have an they you were".split(" ");
let s = 12345;
const rand = () => {
  s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
  return s / 2 ** 32;
};
const docs = Array.from({ length: 400 }, () => Array.from({ length: 200 }, () => words[Math.floor(rand() * words.length)]).join(" "));

const rows = [];
for (const backend of values.backends.split(",")) {
  let device;
  try {
    device = await initBackend({ prefer: backend, onNotice: () => {} });
  } catch (e) {
    rows.push({ backend, config: "-", status: `unavailable: ${e.message.split("\n")[0]}` });
    continue;
  }
  for (const c of CONFIGS) {
    const config = getModelConfig(c.preset, c.overrides);
    const model = createModel(config, { seed: 0 });
    const source = packPretrain(docs, tok, { seqLen: config.seqLen });
    const mixer = createMixer({ sources: { general: source }, schedule: { general: 1 }, seed: 0 });
    const optimizer = new AdamW();
    const sink = new MemorySink();
    const lr = { at: () => 1e-3 };
    try {
      const w = await trainPhase({ model, mixer, optimizer, lr, phase: { name: "warmup", steps: warmup, batchSize: c.batchSize } });
      const budget = new AbortController();
      const timer = setTimeout(() => budget.abort(), seconds * 1000);
      const t0 = performance.now();
      const r = await trainPhase({
        model,
        mixer,
        optimizer,
        lr,
        time: w.time,
        phase: { name: "bench", steps: warmup + steps, batchSize: c.batchSize },
        metrics: sink,
        signal: budget.signal,
      });
      clearTimeout(timer);
      const sec = (performance.now() - t0) / 1000;
      const done = r.time.step - w.time.step;
      const tokens = done * c.batchSize * config.seqLen;
      rows.push({
        backend: device.backend,
        device: device.device?.description,
        config: c.name,
        params: model.paramCount(),
        batch: `${c.batchSize}x${config.seqLen}`,
        tokensPerSec: Math.round(tokens / sec),
        steps: done,
        msPerStep: Math.round((sec * 1000) / done),
        lastLoss: sink.records.filter((r) => r.type === "train").at(-1)?.loss,
        status: "ok",
      });
    } catch (e) {
      rows.push({ backend: device.backend, config: c.name, status: `failed: ${e.message.split("\n")[0]}` });
    } finally {
      model.dispose();
      optimizer.dispose();
    }
    if (!values.json) {
      const r = rows.at(-1);
      console.error(`${r.backend} | ${r.config} | ${r.tokensPerSec ?? "-"} tokens/s | ${r.msPerStep ?? "-"} ms/step | ${r.status}`);
    }
  }
}

if (values.json) console.log(JSON.stringify(rows, null, 2));
else {
  console.log("backend | config | params | batch | steps | tokens/s | ms/step | status");
  for (const r of rows) {
    console.log([r.backend, r.config, r.params ?? "-", r.batch ?? "-", r.steps ?? "-", r.tokensPerSec ?? "-", r.msPerStep ?? "-", r.status].join(" | "));
  }
}
