import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { gunzipSync } from "node:zlib";
import { describe, expect, it } from "vitest";
import { corporaDir } from "../src/files.js";
import { ByteTokenizer, createMixer, evalBatches, UnknownSourceError } from "../src/index.js";
import { corpusManifest, corpusPath, listCorpora, loadCorpus, loadCorpusSource } from "../src/node.js";

type Rec = { text?: string; prompt?: string; response?: string; source: string };
const manifest = corpusManifest();
const read = (file: string): { gz: Buffer; raw: Buffer; recs: Rec[] } => {
  const gz = readFileSync(join(corporaDir(), file));
  const raw = gunzipSync(gz);
  const recs = raw
    .toString("utf8")
    .split("\n")
    .filter((l) => l.length > 0)
    .map((l) => JSON.parse(l) as Rec);
  return { gz, raw, recs };
};
const sha = (b: Buffer) => createHash("sha256").update(b).digest("hex");

describe("shipped corpora", () => {
  it("has the required corpora: general, code, math, instructions and SFT sets for code, math and QA", () => {
    expect(listCorpora()).toEqual(["general", "code", "math", "instructions", "sft-code", "sft-math", "sft-qa"]);
    for (const n of ["general", "code", "math", "instructions"]) expect(manifest.corpora[n].kind).toBe("pretrain");
    for (const n of ["sft-code", "sft-math", "sft-qa"]) expect(manifest.corpora[n].kind).toBe("sft");
  });

  it("every file matches its manifest entry (sha256, content sha256, document count), each with provenance and license", () => {
    let total = 0;
    for (const [name, info] of Object.entries(manifest.corpora)) {
      expect(info.provenance.length, name).toBeGreaterThan(0);
      expect(info.license.length, name).toBeGreaterThan(0);
      for (const split of ["train", "valid"] as const) {
        const f = info.files[split] as (typeof info.files)["train"] & { contentSha256: string };
        const { gz, raw, recs } = read(f.file);
        expect(sha(gz), `${name}.${split}`).toBe(f.sha256);
        expect(sha(raw), `${name}.${split}`).toBe(f.contentSha256);
        expect(recs.length).toBe(f.documents);
        expect(f.documents).toBeGreaterThan(0);
        total += gz.length;
      }
    }
    expect(total).toBeLessThan(12_000_000);
  });

  it("general prose is several MB of text", () => {
    expect(manifest.corpora.general.files.train.textBytes).toBeGreaterThan(5_000_000);
  });

  it("validation splits never overlap training, and SFT sets never reuse the pretraining items", () => {
    const key = (r: Rec) => r.text ?? `${r.prompt}\u0000${r.response}`;
    for (const [name, info] of Object.entries(manifest.corpora)) {
      const train = new Set(read(info.files.train.file).recs.map(key));
      const valid = read(info.files.valid.file).recs.map(key);
      expect(
        valid.filter((k) => train.has(k)),
        name,
      ).toEqual([]);
    }
    // sft-code comes from stdlib files that are not in the code corpus.
    const fileOf = (s: string) => s.split(":")[1];
    const codeFiles = new Set(["train", "valid"].flatMap((s) => read(manifest.corpora.code.files[s as "train"].file).recs.map((r) => fileOf(r.source))));
    const sftCodeFiles = ["train", "valid"].flatMap((s) => read(manifest.corpora["sft-code"].files[s as "train"].file).recs.map((r) => fileOf(r.source)));
    expect(sftCodeFiles.filter((f) => codeFiles.has(f))).toEqual([]);
    // sft-math questions never appear in the math corpus.
    const mathProblems = new Set(read(manifest.corpora.math.files.train.file).recs.map((r) => r.text!.split("\n")[0].replace(/^Problem: /, "")));
    const sftMath = read(manifest.corpora["sft-math"].files.train.file).recs;
    expect(sftMath.filter((r) => mathProblems.has(r.prompt!))).toEqual([]);
  });

  it("corpusPath/loadCorpus find the files; an unknown name lists the known ones", async () => {
    expect(corpusPath("math", "valid")).toMatch(/math\.valid\.jsonl\.gz$/);
    let n = 0;
    for await (const r of loadCorpus("sft-qa", "valid")) {
      expect(typeof (r.record as Rec).prompt).toBe("string");
      n++;
    }
    expect(n).toBe(manifest.corpora["sft-qa"].files.valid.documents);
    expect(() => corpusPath("genral")).toThrow(UnknownSourceError);
    expect(() => corpusPath("genral")).toThrow(/'general'/);
  });

  it("loadCorpusSource packs an SFT corpus with prompts masked: masked-in targets are exactly response + EOS", async () => {
    const tok = new ByteTokenizer();
    const T = 256;
    const { train, valid } = await loadCorpusSource("sft-math", { tokenizer: tok, seqLen: T, limit: 200 });
    expect(train.kind).toBe("sft");
    expect(train.numSequences).toBe(200);
    expect(valid.numSequences).toBe(manifest.corpora["sft-math"].files.valid.documents);
    const recs = read(manifest.corpora["sft-math"].files.valid.file).recs;
    let row = 0;
    for (const b of evalBatches(valid, 64)) {
      for (let r = 0; r < b.batchSize; r++, row++) {
        const ids: number[] = [];
        for (let j = 0; j < T; j++) if (b.mask[r * T + j] > 0) ids.push(b.targets[r * T + j]);
        const expected = [...tok.encode(recs[row].response ?? ""), tok.eosId].slice(0, ids.length);
        expect(ids).toEqual(expected);
      }
    }
    expect(row).toBe(recs.length);
  });

  it("the general and code corpora feed a mixer end to end", async () => {
    const tok = new ByteTokenizer();
    const general = await loadCorpusSource("general", { tokenizer: tok, seqLen: 128 });
    const code = await loadCorpusSource("code", { tokenizer: tok, seqLen: 128 });
    expect(general.train.numBytes).toBe(manifest.corpora.general.files.train.textBytes);
    const mixer = createMixer({
      sources: { general: general.train, code: code.train },
      validation: { general: general.valid, code: code.valid },
      schedule: { general: 0.8, code: 0.2 },
      seed: 1,
    });
    const batch = mixer.nextBatch(32, { step: 0, tokens: 0, phase: "pretrain", phaseStep: 0, phaseSteps: 1, phaseFraction: 0 });
    expect(batch.inputs.length).toBe(32 * 128);
    const evalRows = [...mixer.evalBatches("code", 64)].reduce((s, b) => s + b.batchSize, 0);
    expect(evalRows).toBe(code.valid.numSequences);
    // Validation keeps the tail: every held-out byte is a target once (plus one EOS per document, minus the first token).
    expect(code.valid.numSequences).toBe(Math.ceil((code.valid.numTokens - 1) / 128));
  });
});
