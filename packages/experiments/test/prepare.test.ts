/**
 * Token stores from the experiment side: `midtrain prepare` as a real process (worker threads)
 * killed with SIGKILL and rerun ends with the same bytes as an uninterrupted prepare; a config's
 * `validPath` decides the validation set (it was ignored once); a `store:` source is read as prepared.
 */
import { createHash } from "node:crypto";
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { byteTokenizer, type PackedSource } from "@midtrain/data";
import { prepare } from "@midtrain/data/node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parseExperimentConfig } from "../src/config.js";
import { loadExperimentData } from "../src/node.js";
import { ensureCliBuilt, killGroup, runCli, startCli, waitFor } from "./helpers/cli-process.js";

let dir: string;
const env: Record<string, string | undefined> = {};
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), "midtrain-prepare-"));
  env.MIDTRAIN_CACHE_DIR = process.env.MIDTRAIN_CACHE_DIR;
  process.env.MIDTRAIN_CACHE_DIR = join(dir, "cache");
});
afterAll(() => {
  if (env.MIDTRAIN_CACHE_DIR === undefined) delete process.env.MIDTRAIN_CACHE_DIR;
  else process.env.MIDTRAIN_CACHE_DIR = env.MIDTRAIN_CACHE_DIR;
  rmSync(dir, { recursive: true, force: true });
});

function writeDocs(path: string, n: number, seed: number): string {
  const words = ["river", "stone", "alpha", "code", "math", "the", "of", "and", "λ"];
  let s = seed;
  const lines: string[] = [];
  for (let i = 0; i < n; i++) {
    const len = 20 + (i % 7) * 40;
    const w: string[] = [];
    for (let k = 0; k < len; k++) {
      s = (Math.imul(s, 1103515245) + 12345) >>> 0;
      w.push(words[s % words.length]);
    }
    lines.push(JSON.stringify({ text: `${seed}/${i} ${w.join(" ")}` }));
  }
  writeFileSync(path, `${lines.join("\n")}\n`);
  return path;
}

function hashes(d: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const f of readdirSync(d).sort())
    out[f] = createHash("sha256")
      .update(readFileSync(join(d, f)))
      .digest("hex");
  return out;
}

function rows(src: PackedSource): string {
  const T = src.seqLen;
  const inputs = new Int32Array(src.numSequences * T);
  const targets = new Int32Array(src.numSequences * T);
  const mask = new Float32Array(src.numSequences * T);
  for (let i = 0; i < src.numSequences; i++) src.write(i, inputs, targets, mask, i);
  return createHash("sha256").update(Buffer.from(inputs.buffer)).update(Buffer.from(mask.buffer)).digest("hex");
}

describe("midtrain prepare as a process", () => {
  it("killed with SIGKILL after some shards and rerun: the same bytes as an uninterrupted prepare; a third run is a no-op", async () => {
    ensureCliBuilt();
    mkdirSync(join(dir, "in"));
    for (let k = 0; k < 4; k++) writeDocs(join(dir, "in", `part-${k}.jsonl`), 1500, k + 1);
    const args = (out: string) => [
      "prepare",
      "--input",
      join(dir, "in", "*.jsonl"),
      "--out",
      out,
      "--shard-tokens",
      "40000",
      "--valid-fraction",
      "0.1",
      "--workers",
      "2",
    ];
    const ref = join(dir, "ref");
    const r = await runCli(args(ref));
    expect(r.code, r.stdout + r.stderr).toBe(0);
    expect(r.stderr).toMatch(/MB\/s.*tokens.*ETA/);
    const shards = readdirSync(ref).filter((f) => f.startsWith("train-")).length;
    expect(shards).toBeGreaterThan(20);
    const out = join(dir, "killed");
    const run = startCli(args(out));
    await waitFor(run, "a few shards were written", () => existsSync(out) && readdirSync(out).filter((f) => /^train-\d+\.bin$/.test(f)).length >= 5, 5);
    killGroup(run.child, "SIGKILL");
    await run.exit;
    expect(existsSync(join(out, "manifest.json"))).toBe(false);
    const done = readdirSync(out).filter((f) => /^train-\d+\.bin$/.test(f)).length;
    expect(done).toBeLessThan(shards);
    const again = await runCli(args(out));
    expect(again.code, again.stdout + again.stderr).toBe(0);
    expect(again.stdout).toMatch(/continued after \d+ complete shards/);
    expect(hashes(out)).toEqual(hashes(ref));
    const third = await runCli(args(out));
    expect(third.stdout).toMatch(/up to date/);
    expect(hashes(out)).toEqual(hashes(ref));
  }, 240_000);
});

describe("config sources read from token stores", () => {
  const base = (sources: Record<string, unknown>) =>
    parseExperimentConfig({
      name: "stores",
      model: { preset: "tiny-1m", overrides: { seqLen: 64 } },
      data: { seqLen: 32, general: "general", validationFraction: 0.1, sources },
      pretrain: { steps: 2, batchSize: 2, lr: { type: "constant", value: 0.001 } },
      branches: [{ name: "b", kind: "baseline" }],
    });

  it("validPath decides the validation set: its documents, not a share of path's", async () => {
    const train = writeDocs(join(dir, "train.jsonl"), 300, 21);
    const valid = writeDocs(join(dir, "valid.jsonl"), 40, 99);
    const withValid = await loadExperimentData(base({ general: { path: train, validPath: valid } }), { progress: false });
    const without = await loadExperimentData(base({ general: { path: train } }), { progress: false });
    expect(rows(withValid.sources.general.valid)).not.toBe(rows(without.sources.general.valid));
    // With validPath every document of path trains, and the validation sequences are exactly validPath's.
    expect(withValid.sources.general.train.numDocuments).toBe(300);
    expect(without.sources.general.train.numDocuments).toBeLessThan(300);
    const { buildSource } = await import("@midtrain/data");
    const { readJsonl } = await import("@midtrain/data/node");
    const records = [];
    for await (const r of readJsonl(valid)) records.push(r);
    const expected = await buildSource(records, { tokenizer: byteTokenizer(), seqLen: 32, keepTail: true });
    expect(rows(withValid.sources.general.valid)).toBe(rows(expected.train));
  }, 60_000);

  it("a store: source is read as prepared, and one from another tokenizer is refused", async () => {
    const out = join(dir, "named-store");
    await prepare({ input: join(dir, "train.jsonl"), validInput: join(dir, "valid.jsonl"), out, tokenizer: "bytes", workers: 0 });
    const a = await loadExperimentData(base({ general: { store: out } }), { progress: false });
    const b = await loadExperimentData(base({ general: { path: join(dir, "train.jsonl"), validPath: join(dir, "valid.jsonl") } }), { progress: false });
    expect(rows(a.sources.general.train)).toBe(rows(b.sources.general.train));
    expect(rows(a.sources.general.valid)).toBe(rows(b.sources.general.valid));
    const tokenizerJson = join(dir, "tok.json");
    const { tinyTokenizerJson } = await import("../../data/test/fixtures/tiny-tokenizer.js");
    writeFileSync(tokenizerJson, JSON.stringify(tinyTokenizerJson()));
    const cfg = { ...base({ general: { store: out } }), tokenizer: { path: tokenizerJson } };
    await expect(loadExperimentData(cfg as never, { progress: false })).rejects.toThrow(/prepared with tokenizer 'bytes'/);
  }, 60_000);
});

describe("midtrain plan says what data to bring", () => {
  it("for the paper-scale config: every source's files, fields and validation, the tokenizer file and the prepare command", async () => {
    const { loadExperimentConfig } = await import("../src/node.js");
    const { describeData } = await import("../src/plan.js");
    const text = describeData(await loadExperimentConfig(join(import.meta.dirname, "../../../examples/paper-scale/pythia-70m.yaml"))).join("\n");
    expect(text).toMatch(/tokenizer: .*data\/pythia\/tokenizer\.json/);
    expect(text).toMatch(/c4 \(pretrain\): .*data\/c4 .*text in field 'text'; validation: 5% of documents/);
    expect(text).toMatch(/starcoder \(pretrain\): .*field 'content'/);
    expect(text).toMatch(/gsm8k \(sft\): .*gsm8k\.jsonl .*validation: .*gsm8k\.valid\.jsonl/);
    expect(text).toMatch(/midtrain prepare <this config>/);
  });
});
