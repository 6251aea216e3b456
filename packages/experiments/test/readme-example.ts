import { describePlan, formatResultsTable, parseExperimentConfig, planExperiment, runExperiment } from "@midtrain/experiments";
import { nodeEnv, writeReport } from "@midtrain/experiments/node";
import { initBackend } from "@midtrain/backend";

await initBackend({ prefer: "wasm" });
const config = parseExperimentConfig({
  name: "tiny",
  model: { preset: "tiny-1m", overrides: { dModel: 16, nLayer: 1, nHead: 2, seqLen: 192 } },
  data: {
    seqLen: 16,
    general: "general",
    maxValidationSequences: 8,
    sources: { general: { corpus: "general", maxDocuments: 20 }, code: { corpus: "code", maxDocuments: 20 } },
    sft: { code: { corpus: "sft-code", maxDocuments: 60 } },
  },
  pretrain: { steps: 12, batchSize: 4, lr: { type: "cosine", peak: 3e-3, min: 3e-4, warmup: { fraction: 0.1 } } },
  branches: [{ name: "mid", kind: "midtrain", source: "code", weight: 0.5, start: 0.5 }],
  sft: { domains: ["code"], steps: 4, batchSize: 4, seqLen: 192, lrGrid: [1e-3, 3e-3], seeds: [1] },
});
console.log(describePlan(planExperiment(config))); // what `midtrain plan` prints
const results = await runExperiment(config, { env: nodeEnv("runs/tiny") }); // a rerun resumes
console.log(formatResultsTable(results));
await writeReport("runs/tiny", results); // report.html, results.csv, results.json
