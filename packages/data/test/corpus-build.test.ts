import { readFileSync } from "node:fs";
import { join } from "node:path";
import { gunzipSync } from "node:zlib";
import { describe, expect, it } from "vitest";
import {
  buildCorpusSource,
  ByteTokenizer,
  corpusEntry,
  type CorpusManifest,
  MalformedInputError,
  type PackedSource,
  parseJsonl,
  UnknownSourceError,
} from "../src/index.js";
import { corporaDir } from "../src/files.js";
import { corpusManifest, loadCorpusSource } from "../src/node.js";

const tokenizer = new ByteTokenizer();

/** Every sequence of a packed source, as the mixer would write it. */
function sequences(s: PackedSource): number[][] {
  const out: number[][] = [];
  const inputs = new Int32Array(s.seqLen);
  const targets = new Int32Array(s.seqLen);
  const mask = new Float32Array(s.seqLen);
  for (let i = 0; i < s.numSequences; i++) {
    s.write(i, inputs, targets, mask, 0);
    out.push([...inputs, ...targets, ...mask]);
  }
  return out;
}

/** What a page does: the gzipped file's text, parsed without any Node reader. */
const recordsOf = (file: string) => parseJsonl(gunzipSync(readFileSync(join(corporaDir(), file))).toString("utf8"), file);

describe("buildCorpusSource (the browser-safe corpus builder)", () => {
  const manifest = corpusManifest();
  for (const [name, options] of [
    ["math", { seqLen: 64, limit: 40 }],
    ["sft-qa", { seqLen: 96, limit: 25, maskPrompt: true }],
  ] as const) {
    it(`packs ${name} exactly as the Node loader does`, async () => {
      const info = corpusEntry(manifest, name);
      const browser = await buildCorpusSource(
        info,
        { train: recordsOf(info.files.train.file), valid: recordsOf(info.files.valid.file) },
        { tokenizer, ...options },
      );
      const node = await loadCorpusSource(name, { tokenizer, ...options });
      for (const split of ["train", "valid"] as const) {
        expect(browser[split].kind).toBe(info.kind);
        expect(browser[split].numSequences).toBeGreaterThan(0);
        expect(browser[split].numDocuments).toBe(node[split].numDocuments);
        expect(sequences(browser[split])).toEqual(sequences(node[split]));
      }
      // `limit` caps the train file only; every held-out document is packed.
      expect(browser.train.numDocuments).toBe(options.limit);
      expect(browser.valid.numDocuments).toBe(info.files.valid.documents);
    });
  }

  it("keeps the final partial block of a pretraining validation file, not of its train file", async () => {
    const docs = ["a".repeat(50), "b".repeat(50)];
    const built = await buildCorpusSource({ name: "tiny", kind: "pretrain" }, { train: docs, valid: docs }, { tokenizer, seqLen: 64 });
    expect(built.train.numSequences).toBe(1);
    expect(built.valid.numSequences).toBe(2);
  });

  it("names the shipped corpora when one is unknown, with a suggestion", () => {
    const m = { version: 1, corpora: { general: { name: "general" }, code: { name: "code" } } } as unknown as CorpusManifest;
    expect(() => corpusEntry(m, "genral")).toThrow(UnknownSourceError);
    expect(() => corpusEntry(m, "genral")).toThrow(/unknown source 'genral' — did you mean 'general'\?; known sources: 'general', 'code'/);
    expect(() => corpusEntry(m, "toString")).toThrow(UnknownSourceError);
  });
});

describe("parseJsonl", () => {
  it("skips blank lines and keeps each record's line", () => {
    expect(parseJsonl('{"text":"a"}\n\n  \n"b"\n', "f.jsonl")).toEqual([
      { record: { text: "a" }, origin: { file: "f.jsonl", line: 1 } },
      { record: "b", origin: { file: "f.jsonl", line: 4 } },
    ]);
  });
  it("says which file and line is not JSON", () => {
    expect(() => parseJsonl('{"text":"a"}\n{"text":', "f.jsonl")).toThrow(MalformedInputError);
    expect(() => parseJsonl('{"text":"a"}\n{"text":', "f.jsonl")).toThrow(/^f\.jsonl:2: invalid JSON/);
  });
});
