import { execFileSync } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ByteTokenizer, DataConfigError, MissingFileError, UnknownSourceError } from "../src/index.js";
import { loadSourceSpec, loadTokenizer } from "../src/node.js";
import { tinyTokenizerJson } from "./fixtures/tiny-tokenizer.js";

let dir: string;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), "midtrain-spec-"));
  mkdirSync(join(dir, "tiny"), { recursive: true });
  writeFileSync(join(dir, "tiny/tokenizer.json"), JSON.stringify(tinyTokenizerJson()));
  writeFileSync(join(dir, "tiny/tokenizer_config.json"), JSON.stringify({ eos_token: "<|endoftext|>", pad_token: "<|endoftext|>" }));
  writeFileSync(join(dir, "qa.jsonl"), Array.from({ length: 40 }, (_, i) => JSON.stringify({ q: `question ${i}?`, a: `answer ${i}` })).join("\n"));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe("loadTokenizer", () => {
  it('"bytes" is the byte tokenizer; a tokenizer.json path loads it with its config', () => {
    expect(loadTokenizer()).toBeInstanceOf(ByteTokenizer);
    const t = loadTokenizer({ tokenizerJson: join(dir, "tiny/tokenizer.json") });
    expect(t.name).toBe("tiny");
    expect(t.encode("hello")).toEqual([259]);
    expect(t.padId).toBe(261);
  });
  it("missing files and bad specs are clear errors", () => {
    expect(() => loadTokenizer({ tokenizerJson: join(dir, "nope.json") })).toThrow(MissingFileError);
    expect(() => loadTokenizer("gpt2" as never)).toThrow(DataConfigError);
  });
});

describe("loadSourceSpec", () => {
  const tokenizer = new ByteTokenizer();
  it("a corpus spec loads the shipped corpus with its own validation file", async () => {
    const { train, valid } = await loadSourceSpec({ corpus: "sft-qa", limit: 50 }, { tokenizer, seqLen: 64 });
    expect(train.kind).toBe("sft");
    expect(train.numDocuments).toBe(50);
    expect(valid?.numSequences).toBeGreaterThan(0);
    await expect(loadSourceSpec({ corpus: "nope" }, { tokenizer, seqLen: 64 })).rejects.toThrow(UnknownSourceError);
  });
  it("a path spec reads the file with its field mapping and split", async () => {
    const { train, valid } = await loadSourceSpec(
      { path: join(dir, "qa.jsonl"), kind: "sft", fields: { prompt: "q", response: "a" }, validFraction: 0.25 },
      { tokenizer, seqLen: 64 },
    );
    expect(train.numDocuments).toBe(30);
    expect(valid?.numDocuments).toBe(10);
    await expect(loadSourceSpec({} as never, { tokenizer, seqLen: 64 })).rejects.toThrow(DataConfigError);
  });
});

describe("build-corpora script", () => {
  it("without the Python standard library it stops with a clear message and writes nothing", () => {
    const out = join(dir, "corpora-out");
    let stderr = "";
    let code = 0;
    try {
      execFileSync(process.execPath, [resolve(import.meta.dirname, "../scripts/build-corpora.mjs"), "--out", out], {
        env: { ...process.env, MIDTRAIN_PYLIB: join(dir, "no-python-here") },
        stdio: "pipe",
      });
    } catch (e) {
      code = (e as { status: number }).status;
      stderr = String((e as { stderr: Buffer }).stderr);
    }
    expect(code).not.toBe(0);
    expect(stderr).toMatch(/libpython3\.11-stdlib/);
    expect(existsSync(out)).toBe(false);
  });
});
