/**
 * What a hostile user can do to a run folder, through the runner the CLI uses: a disk that
 * fills during a checkpoint, garbled checkpoint bytes, torn metrics lines, deleted or garbled
 * outcomes, a config that failed before training. Each case either recovers to the same
 * results as an untouched run or stops with an error that names the file and what to do.
 */
import { appendFileSync, existsSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { initBackend } from "@midtrain/backend";
import { CheckpointWriteError } from "@midtrain/trainer";
import { FsStorage } from "@midtrain/trainer/node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type ExperimentConfig, parseExperimentConfig } from "../src/config.js";
import type { RunEnv } from "../src/env.js";
import { ConfigError } from "../src/errors.js";
import { checkDataFiles, loadExperimentConfig } from "../src/load.js";
import { nodeEnv } from "../src/node.js";
import { planExperiment } from "../src/plan.js";
import { proximityTable } from "../src/proximity.js";
import { formatResultsTable, renderReportHtml } from "../src/report/render.js";
import type { ExperimentResults } from "../src/report/types.js";
import { collectResults, runExperiment } from "../src/runner.js";

const raw = {
  name: "safety",
  seed: 1,
  backend: "cpu",
  model: { preset: "tiny-1m", overrides: { dModel: 16, nLayer: 1, nHead: 2, seqLen: 64 } },
  data: {
    seqLen: 16,
    general: "general",
    maxValidationSequences: 8,
    sources: { general: { corpus: "general", maxDocuments: 30 }, code: { corpus: "code", maxDocuments: 30 } },
    sft: { code: { corpus: "sft-code", maxDocuments: 30 } },
  },
  pretrain: { steps: 16, batchSize: 4, lr: { type: "cosine", peak: 0.003, min: 0.0003, warmup: { fraction: 0.1 } }, evalEvery: 8, checkpointEvery: 4 },
  branches: [
    { name: "baseline", kind: "baseline" },
    { name: "mid", kind: "midtrain", source: "code", weight: 0.5, start: 0.5 },
  ],
  sft: { domains: ["code"], steps: 4, batchSize: 4, seqLen: 64, lrGrid: [0.003], seeds: [1] },
};
const config = parseExperimentConfig(raw);

let root: string;
let reference: ExperimentResults;
const comparable = (r: ExperimentResults) => ({ rows: r.rows, curves: r.curves, missing: r.missing });

beforeAll(async () => {
  await initBackend({ prefer: "cpu" });
  root = await mkdtemp(join(tmpdir(), "midtrain-run-folder-"));
  reference = await runExperiment(config, { env: nodeEnv(join(root, "reference")) });
  expect(reference.missing).toEqual([]);
}, 300_000);
afterAll(() => rm(root, { recursive: true, force: true }));

/** A run folder whose checkpoint writes fail (disk full) while `full.on` is set. */
function fullDiskEnv(dir: string, full: { on: boolean }): RunEnv {
  const env = nodeEnv(dir);
  return {
    ...env,
    storage(p) {
      const fs = new FsStorage(join(dir, p));
      return Object.assign(Object.create(fs), {
        location: fs.location,
        write: async (id: string, files: Record<string, Uint8Array>) => {
          if (full.on) throw Object.assign(new Error("ENOSPC: no space left on device, write"), { code: "ENOSPC" });
          return fs.write(id, files);
        },
      });
    },
  };
}

describe("run-folder safety", () => {
  it("a disk that fills during a checkpoint fails the job loudly and leaves it resumable; freed space gives the same results", async () => {
    const dir = join(root, "full");
    const full = { on: true };
    await expect(runExperiment(config, { env: fullDiskEnv(dir, full) })).rejects.toThrow(CheckpointWriteError);
    // The trunk did not count as done without its checkpoints.
    expect(existsSync(join(dir, "p1/trunk/outcome-8.json"))).toBe(false);
    const metrics = readFileSync(join(dir, "p1/trunk/metrics.jsonl"), "utf8");
    expect(metrics).toMatch(/"type":"checkpoint-error".*ENOSPC/);
    full.on = false;
    const again = await runExperiment(config, { env: fullDiskEnv(dir, full) });
    expect(comparable(again)).toEqual(comparable(reference));
  });

  it("garbled checkpoint bytes: the job that needs it refuses, naming the file and what to delete; doing so gives the same results", async () => {
    const dir = join(root, "garbled");
    await runExperiment(config, { env: nodeEnv(dir) });
    const weights = join(dir, "p1/trunk/checkpoints/ckpt-16/model.safetensors");
    const bytes = readFileSync(weights);
    for (let i = 0; i < 28; i++) bytes[bytes.length - 1 - i * 7] ^= 0x5a;
    writeFileSync(weights, bytes);
    rmSync(join(dir, "p1/sft/baseline/code/lr0.003-s1/outcome.json"));
    const err = await runExperiment(config, { env: nodeEnv(dir) }).catch((e: Error) => e);
    expect(err).toBeInstanceOf(Error);
    expect((err as Error).message).toMatch(/model\.safetensors/);
    expect((err as Error).message).toMatch(/Delete .*ckpt-16 and p1\/trunk\/outcome-16\.json/);
    rmSync(join(dir, "p1/trunk/checkpoints/ckpt-16"), { recursive: true });
    rmSync(join(dir, "p1/trunk/outcome-16.json"));
    const again = await runExperiment(config, { env: nodeEnv(dir) });
    expect(comparable(again)).toEqual(comparable(reference));
  });

  it("a deleted intermediate trunk outcome is written again from its checkpoint, without training twice", async () => {
    const dir = join(root, "deleted-outcome");
    await runExperiment(config, { env: nodeEnv(dir) });
    const trunkMetrics = join(dir, "p1/trunk/metrics.jsonl");
    const trainLines = () =>
      readFileSync(trunkMetrics, "utf8")
        .split("\n")
        .filter((l) => l.includes('"type":"train"')).length;
    const before = trainLines();
    rmSync(join(dir, "p1/trunk/outcome-8.json"));
    const again = await runExperiment(config, { env: nodeEnv(dir) });
    expect(existsSync(join(dir, "p1/trunk/outcome-8.json"))).toBe(true);
    expect(trainLines()).toBe(before);
    expect(comparable(again)).toEqual(comparable(reference));
  });

  it("partial results say what is missing in the table, the HTML and results.json", async () => {
    const dir = join(root, "partial");
    await runExperiment(config, { env: nodeEnv(dir) });
    rmSync(join(dir, "p1/sft/mid/code/lr0.003-s1/outcome.json"));
    const results = await collectResults(planExperiment(config), nodeEnv(dir));
    expect(results.missing).toEqual(["sft@p1/mid/code/lr0.003/s1"]);
    expect(formatResultsTable(results)).toMatch(/^PARTIAL RESULTS: 1 job\(s\) have not finished \(sft@p1\/mid\/code\/lr0\.003\/s1\)/);
    expect(renderReportHtml(results)).toMatch(/class="partial".*PARTIAL RESULTS/);
    expect(formatResultsTable(reference)).not.toMatch(/PARTIAL/);
  });

  it("a torn last metrics line is left out and reported with its file and line; a garbled outcome names its file", async () => {
    const dir = join(root, "torn");
    await runExperiment(config, { env: nodeEnv(dir) });
    const branchMetrics = join(dir, "p1/branches/mid/metrics.jsonl");
    const lines = readFileSync(branchMetrics, "utf8").split("\n").length;
    appendFileSync(branchMetrics, '{"type":"train","phase":"bra');
    const plan = planExperiment(config);
    const results = await collectResults(plan, nodeEnv(dir), proximityTable(plan, await nodeEnv(dir).loadData(config)));
    expect(comparable(results)).toEqual(comparable(reference));
    expect(results.notes?.join("\n")).toMatch(new RegExp(`branches/mid/metrics\\.jsonl:${lines}: a torn last line`));
    writeFileSync(join(dir, "p1/branches/mid/outcome.json"), '{"job": "bran');
    await expect(runExperiment(config, { env: nodeEnv(dir) })).rejects.toThrow(/branches\/mid\/outcome\.json is not valid JSON .*delete it/);
  });

  it("a folder whose run failed before any job started takes the corrected config; one with training in it refuses another config", async () => {
    const dir = join(root, "refused");
    const broken: ExperimentConfig = structuredClone(config);
    broken.data.sources.code = { path: join(root, "no-such-file.jsonl") };
    await expect(runExperiment(broken, { env: nodeEnv(dir) })).rejects.toThrow(/no-such-file/);
    const fixed = await runExperiment(config, { env: nodeEnv(dir) });
    expect(comparable(fixed)).toEqual(comparable(reference));
    const other = { ...structuredClone(config), seed: 2 };
    await expect(runExperiment(other, { env: nodeEnv(dir) })).rejects.toThrow(/different config/);
  });
});

describe("config checks before anything runs", () => {
  const issuesOf = (f: () => unknown) => {
    try {
      f();
    } catch (e) {
      if (e instanceof ConfigError) return e.issues.map((i) => `${i.path}: ${i.message}`).join("\n");
      throw e;
    }
    throw new Error("expected a ConfigError");
  };
  it("unknown model overrides are refused with a suggestion", () => {
    const out = issuesOf(() => parseExperimentConfig({ ...raw, model: { preset: "tiny-1m", overrides: { nLayers: 1 } } }));
    expect(out).toMatch(/model\.overrides\.nLayers: unknown model setting — did you mean 'nLayer'\?/);
  });
  it("schedule typos and bad schedule parameters fail at plan time with the config path", () => {
    const typo = issuesOf(() => planExperiment(parseExperimentConfig({ ...raw, pretrain: { ...raw.pretrain, lr: { type: "cosin", peak: 0.003 } } })));
    expect(typo).toMatch(/pretrain\.lr\.type: .*cosin.*did you mean 'cosine'/);
    const bad = issuesOf(() => planExperiment(parseExperimentConfig({ ...raw, pretrain: { ...raw.pretrain, lr: { type: "cosine", peak: -1 } } })));
    expect(bad).toMatch(/pretrain\.lr\.peak/);
  });
  it("a corpus typo and a missing data file are refused when the config is loaded", async () => {
    const dir = await mkdtemp(join(tmpdir(), "midtrain-cfg-"));
    const path = join(dir, "typo.json");
    const cfg = structuredClone(raw) as any;
    cfg.data.sources.code = { corpus: "cdoe" };
    cfg.data.sft.code = { path: "missing.jsonl" };
    writeFileSync(path, JSON.stringify(cfg));
    const err = (await loadExperimentConfig(path).catch((e) => e)) as ConfigError;
    expect(err).toBeInstanceOf(ConfigError);
    expect(err.issues.map((i) => `${i.path}: ${i.message}`).join("\n")).toMatch(
      /^data\.sources\.code\.corpus: unknown corpus 'cdoe' — did you mean 'code'\?[^\n]*$/,
    );
    // Missing files are `run`'s concern (a config can be planned before its data is there).
    cfg.data.sources.code = { corpus: "code" };
    writeFileSync(path, JSON.stringify(cfg));
    const loaded = await loadExperimentConfig(path);
    const missing = issuesOf(() => checkDataFiles(loaded, path));
    expect(missing).toMatch(/data\.sft\.code\.path: .*missing\.jsonl does not exist/);
    await rm(dir, { recursive: true, force: true });
  });
});
