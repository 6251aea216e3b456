import { existsSync, readdirSync, readFileSync } from "node:fs";
import { mkdir, mkdtemp, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { loadTokenizer } from "@midtrain/data/node";
import { afterEach, describe, expect, it, vi } from "vitest";
import { main } from "../src/cli.js";
import { parseTokenizerSource } from "../src/cli/tokenizer.js";

describe("midtrain tokenizer train", () => {
  afterEach(() => vi.restoreAllMocks());

  it("trains on weighted sources (a shipped corpus, a JSONL file of SFT records) and writes a tokenizer that loads", async () => {
    vi.spyOn(console, "error").mockImplementation(() => {});
    const log = vi.spyOn(console, "log").mockImplementation(() => {});
    const dir = await mkdtemp(join(tmpdir(), "midtrain-tok-"));
    const qa = join(dir, "qa.jsonl");
    const rows = Array.from({ length: 200 }, (_, i) => JSON.stringify({ question: `What is ${i} plus ${i}?`, answer: `${i} plus ${i} is ${2 * i}.` }));
    await writeFile(qa, `${rows.join("\n")}\n`);
    const out = join(dir, "tok", "tokenizer.json");
    const args = [
      "node",
      "midtrain",
      "tokenizer",
      "train",
      "--vocab-size",
      "600",
      "--source",
      "prose=corpus:general:2",
      "--source",
      `qa=${qa}`,
      "--max-mb",
      "1",
      "--out",
      out,
    ];
    await main(args);
    expect(log.mock.calls.flat().join("\n")).toMatch(/600 tokens \(\d+ merges, EOS <\|endoftext\|> = 0\)/);
    const tok = loadTokenizer({ tokenizerJson: out });
    expect([tok.vocabSize, tok.eosId, tok.padId]).toEqual([600, 0, 1]);
    expect(tok.decode(tok.encode("What is 7 plus 7?"))).toBe("What is 7 plus 7?");
    const first = readFileSync(out, "utf8");
    // An existing output is refused without --force; with it, the same input gives the same file.
    await expect(main(args)).rejects.toThrow(/exists; pass --force/);
    await main([...args, "--force"]);
    expect(readFileSync(out, "utf8")).toBe(first);
    expect(readdirSync(join(dir, "tok")).sort()).toEqual(["tokenizer.json", "tokenizer_config.json"]);
  });

  it("refuses bad sources and sizes, writing nothing", async () => {
    const dir = await mkdtemp(join(tmpdir(), "midtrain-tok-"));
    await mkdir(join(dir, "empty"));
    await writeFile(join(dir, "blank.txt"), "   \n");
    const out = join(dir, "o", "tokenizer.json");
    const run = (...a: string[]) => main(["node", "midtrain", "tokenizer", "train", "--out", out, ...a]);
    await expect(run("--vocab-size", "100", "--source", "a=corpus:math")).rejects.toThrow(/vocabSize must be a whole number >= 258/);
    await expect(run("--vocab-size", "300", "--source", `a=${join(dir, "empty")}`)).rejects.toThrow(/no files found/);
    await expect(run("--vocab-size", "300", "--source", `a=${join(dir, "blank.txt")}`)).rejects.toThrow(/source 'a' has no text/);
    await expect(run("--vocab-size", "300", "--source", "a=corpus:nope")).rejects.toThrow(/no shipped corpus 'nope'/);
    expect(existsSync(join(dir, "o"))).toBe(false);
    expect(parseTokenizerSource("code=data/x.jsonl:0.5")).toEqual({ name: "code", path: "data/x.jsonl", weight: 0.5 });
    expect(parseTokenizerSource("c=C:/data/x.jsonl")).toEqual({ name: "c", path: "C:/data/x.jsonl", weight: 1 });
    expect(() => parseTokenizerSource("nopath")).toThrow(/name=path/);
  });
});
