import { createRequire } from "node:module";
import { TokenizerLoader } from "@lenml/tokenizers";
import { describe, expect, it } from "vitest";
import { BpeTokenizer, DataConfigError, EmptySourceError, InvalidWeightsError, loadHfTokenizer, trainBpeTokenizer } from "../src/index.js";
import { loadCorpus } from "../src/node.js";

type RustTokenizer = { encode(s: string, pair: null, o: { addSpecialTokens: boolean }): Promise<{ getIds(): number[] }> };
let rust: { Tokenizer: { fromString(s: string): RustTokenizer } } | undefined;
try {
  rust = createRequire(import.meta.url)("tokenizers-linux-x64-gnu");
} catch {
  rust = undefined;
}

async function docs(name: string, split: "train" | "valid", maxChars: number): Promise<string[]> {
  const out: string[] = [];
  let n = 0;
  for await (const { record } of loadCorpus(name, split)) {
    const t = (record as { text: string }).text;
    out.push(t);
    n += t.length;
    if (n > maxChars) break;
  }
  return out;
}

describe("trainBpeTokenizer", () => {
  it("fits a vocabulary the fast BPE, @lenml/tokenizers and the Rust library load and agree on, deterministically", async () => {
    const prose = await docs("general", "train", 400_000);
    const code = await docs("code", "train", 200_000);
    const run = () =>
      trainBpeTokenizer(
        [
          { name: "prose", texts: prose, weight: 3 },
          { name: "code", texts: code, weight: 1 },
        ],
        { vocabSize: 1200 },
      );
    const a = await run();
    expect(a.vocabSize).toBe(1200);
    expect(a.sources.map((s) => s.name)).toEqual(["prose", "code"]);
    // Same input, same file; the documents' order within a source does not matter either.
    expect(JSON.stringify((await run()).tokenizerJson)).toBe(JSON.stringify(a.tokenizerJson));
    const shuffled = await trainBpeTokenizer(
      [
        { name: "prose", texts: [...prose].reverse(), weight: 3 },
        { name: "code", texts: [...code].reverse(), weight: 1 },
      ],
      { vocabSize: 1200 },
    );
    expect(JSON.stringify(shuffled.tokenizerJson)).toBe(JSON.stringify(a.tokenizerJson));

    const text = JSON.stringify(a.tokenizerJson);
    const tok = loadHfTokenizer(text) as BpeTokenizer;
    expect(tok).toBeInstanceOf(BpeTokenizer);
    expect([tok.eosId, tok.vocabSize, tok.idOf("<|padding|>")]).toEqual([0, 1200, 1]);
    const held = [...(await docs("general", "valid", 30_000)), ...(await docs("code", "valid", 20_000)), "naïve café 🚀 <|endoftext|> x"];
    const lenml = TokenizerLoader.fromPreTrained({ tokenizerJSON: JSON.parse(text), tokenizerConfig: {} as any });
    const r = rust?.Tokenizer.fromString(text);
    let bytes = 0;
    let tokens = 0;
    for (const t of held) {
      const ids = tok.encode(t);
      expect(ids).toEqual(lenml.encode(t, { add_special_tokens: false }));
      if (r) expect(ids).toEqual(Array.from((await r.encode(t, null, { addSpecialTokens: false })).getIds()));
      expect(tok.decode(ids)).toBe(t);
      bytes += new TextEncoder().encode(t).length;
      tokens += ids.length;
    }
    // It learned something: well under one token per byte on held-out prose and code.
    expect(tokens / bytes).toBeLessThan(0.45);
  });

  it("weights change what is learned: a heavier source gets more of the merges", async () => {
    const prose = await docs("general", "train", 150_000);
    const code = await docs("code", "train", 150_000);
    const codeBytes = new TextEncoder().encode(code.join("\n")).length;
    const tokensOn = async (wCode: number) => {
      const r = await trainBpeTokenizer(
        [
          { name: "prose", texts: prose, weight: 1 },
          { name: "code", texts: code, weight: wCode },
        ],
        { vocabSize: 700 },
      );
      const t = loadHfTokenizer(r.tokenizerJson);
      return code.reduce((s, d) => s + t.encode(d).length, 0) / codeBytes;
    };
    expect(await tokensOn(10)).toBeLessThan(await tokensOn(0.1));
  });

  it("refuses a vocabulary smaller than the bytes and special tokens, empty sources and bad weights", async () => {
    await expect(trainBpeTokenizer([{ name: "a", texts: ["hello"] }], { vocabSize: 257 })).rejects.toThrow(
      /vocabSize must be a whole number >= 258 \(256 byte tokens \+ 2 special tokens\), got 257/,
    );
    await expect(trainBpeTokenizer([{ name: "a", texts: ["hello"] }], { vocabSize: 257 })).rejects.toBeInstanceOf(DataConfigError);
    await expect(trainBpeTokenizer([{ name: "a", texts: ["", ""] }], { vocabSize: 300 })).rejects.toThrow(EmptySourceError);
    await expect(trainBpeTokenizer([{ name: "a", texts: ["x"], weight: 0 }], { vocabSize: 300 })).rejects.toThrow(InvalidWeightsError);
    await expect(trainBpeTokenizer([], { vocabSize: 300 })).rejects.toThrow(/at least one source/);
    // Too little text for the size asked: stops early and says how many merges it found.
    const small = await trainBpeTokenizer([{ name: "a", texts: ["abab abab abab"] }], { vocabSize: 1000 });
    expect(small.merges).toBeGreaterThan(0);
    expect(small.vocabSize).toBeLessThan(1000);
    expect(loadHfTokenizer(small.tokenizerJson).encode("abab")).toHaveLength(1);
  });
});
