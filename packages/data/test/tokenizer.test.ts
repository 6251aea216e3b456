import { describe, expect, it } from "vitest";
import { ByteTokenizer, countTargetBytes, DataConfigError, loadHfTokenizer } from "../src/index.js";
import { tinyTokenizerJson } from "./fixtures/tiny-tokenizer.js";

describe("ByteTokenizer", () => {
  const t = new ByteTokenizer();
  it("maps UTF-8 bytes to ids, EOS 256, PAD 257, vocab 258", () => {
    expect(t.encode("Aé")).toEqual([65, 0xc3, 0xa9]);
    expect([t.eosId, t.padId, t.vocabSize]).toEqual([256, 257, 258]);
  });
  it("round-trips text and skips special ids when decoding", () => {
    const s = "naïve café — 数学 ✓\n\tend";
    expect(t.decode([...t.encode(s), 256, 257])).toBe(s);
  });
  it("reports one byte per byte token and zero for EOS/PAD", () => {
    expect([t.tokenBytes(0), t.tokenBytes(255), t.tokenBytes(256), t.tokenBytes(257)]).toEqual([1, 1, 0, 0]);
    // countTargetBytes counts only masked-in targets: [65 (1), 256 (0), 66 (masked out)]
    expect(countTargetBytes([65, 256, 66], [1, 1, 0], t)).toBe(1);
  });
});

describe("loadHfTokenizer (tokenizer.json via @lenml/tokenizers)", () => {
  const tok = loadHfTokenizer(tinyTokenizerJson(), { name: "tiny" });
  it("applies the BPE merges: 'hello world' → [hello, Ġw, o, r, l, d]", () => {
    expect(tok.encode("hello world")).toEqual([259, 260, 111, 114, 108, 100]);
    expect(tok.decode([259, 260, 111, 114, 108, 100])).toBe("hello world");
  });
  it("finds EOS, computes the vocabulary size, never adds special tokens by itself", () => {
    expect(tok.eosId).toBe(261);
    expect(tok.vocabSize).toBe(262);
    expect(tok.encode("he")).toEqual([256]);
  });
  it("gives exact byte lengths per token, including non-ASCII bytes", () => {
    expect(tok.tokenBytes(259)).toBe(5); // hello
    expect(tok.tokenBytes(260)).toBe(2); // " w"
    expect(tok.tokenBytes(261)).toBe(0); // EOS
    const ids = tok.encode("é!");
    const total = ids.reduce((s, id) => s + tok.tokenBytes(id), 0);
    expect(total).toBe(new TextEncoder().encode("é!").length);
  });
  it("accepts the JSON text too, and explains a missing EOS or a non-tokenizer file", () => {
    expect(loadHfTokenizer(JSON.stringify(tinyTokenizerJson())).encode("hello")).toEqual([259]);
    const noEos = { ...tinyTokenizerJson(), added_tokens: [] };
    expect(() => loadHfTokenizer(noEos)).toThrow(/EOS token.*eosToken/);
    expect(() => loadHfTokenizer({ hello: 1 })).toThrow(DataConfigError);
    expect(() => loadHfTokenizer("{not json")).toThrow(/not valid JSON/);
  });
});
