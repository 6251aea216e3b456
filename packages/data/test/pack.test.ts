import { describe, expect, it } from "vitest";
import {
  buildSource,
  ByteTokenizer,
  DataConfigError,
  EmptySourceError,
  evalBatches,
  isValidationDoc,
  MalformedInputError,
  packPretrain,
  packSft,
  recordSft,
  recordText,
  splitDocuments,
  type Tokenizer,
} from "../src/index.js";

/** A tokenizer with one id per character: a→1, b→2, ... and EOS 0, PAD 99; easy to compute by hand. */
const letters: Tokenizer = {
  name: "letters",
  vocabSize: 100,
  eosId: 0,
  padId: 99,
  encode: (s) => Array.from(s, (c) => c.charCodeAt(0) - 96),
  decode: (ids) => Array.from(ids, (i) => String.fromCharCode(i + 96)).join(""),
  tokenBytes: (id) => (id > 0 && id < 27 ? 1 : 0),
};

function rows(src: ReturnType<typeof packPretrain>) {
  const T = src.seqLen;
  const out: { x: number[]; y: number[]; m: number[] }[] = [];
  for (const b of evalBatches(src, 1000)) {
    for (let r = 0; r < b.batchSize; r++) {
      out.push({
        x: Array.from(b.inputs.subarray(r * T, r * T + T)),
        y: Array.from(b.targets.subarray(r * T, r * T + T)),
        m: Array.from(b.mask.subarray(r * T, r * T + T)),
      });
    }
  }
  return out;
}

describe("pretraining packing", () => {
  it("concatenates documents with EOS and cuts blocks of T+1 tokens (targets shifted by one)", () => {
    // Stream: a b c EOS d e EOS f g h i EOS = [1,2,3,0,4,5,0,6,7,8,9,0] (12 tokens); T=4 → floor(11/4) = 2 blocks.
    const src = packPretrain(["abc", "de", "fghi"], letters, { seqLen: 4 });
    expect(src.numTokens).toBe(12);
    expect(src.numSequences).toBe(2);
    expect(rows(src)).toEqual([
      { x: [1, 2, 3, 0], y: [2, 3, 0, 4], m: [1, 1, 1, 1] },
      { x: [4, 5, 0, 6], y: [5, 0, 6, 7], m: [1, 1, 1, 1] },
    ]);
  });

  it("keepTail pads and masks the final partial block", () => {
    const src = packPretrain(["abc", "de", "fghi"], letters, { seqLen: 4, keepTail: true });
    expect(src.numSequences).toBe(3);
    expect(rows(src)[2]).toEqual({ x: [7, 8, 9, 99], y: [8, 9, 0, 99], m: [1, 1, 1, 0] });
  });

  it("byte tokenizer: numBytes is the UTF-8 length of the text", () => {
    const src = packPretrain(["héllo", "wörld!"], new ByteTokenizer(), { seqLen: 3 });
    expect(src.numBytes).toBe(6 + 7);
    expect(src.numTokens).toBe(6 + 7 + 2);
  });

  it("an empty source, or one too short for a single sequence, is a clear error", () => {
    expect(() => packPretrain([], letters, { seqLen: 4 })).toThrow(EmptySourceError);
    expect(() => packPretrain(["ab"], letters, { seqLen: 4, name: "tiny" })).toThrow(/'tiny'.*at least seqLen\+1 = 5/);
    expect(() => packPretrain(["abcdef"], letters, { seqLen: 0 })).toThrow(DataConfigError);
  });
});

describe("SFT packing and loss masks", () => {
  // prompt "ab" + separator "c" → [1,2,3] (prompt length 3), response "de" → [4,5], EOS 0.
  // Sequence [1,2,3,4,5,0]; T=8 → targets [2,3,4,5,0,pad,pad,pad].
  it("masks prompt and padding, keeps response and EOS", () => {
    const src = packSft([{ prompt: "ab", response: "de" }], letters, { seqLen: 8, separator: "c" });
    expect(rows(src)).toEqual([{ x: [1, 2, 3, 4, 5, 0, 99, 99], y: [2, 3, 4, 5, 0, 99, 99, 99], m: [0, 0, 1, 1, 1, 0, 0, 0] }]);
  });

  it("with maskPrompt false only padding is masked", () => {
    const src = packSft([{ prompt: "ab", response: "de" }], letters, { seqLen: 8, separator: "c", maskPrompt: false });
    expect(rows(src)[0].m).toEqual([1, 1, 1, 1, 1, 0, 0, 0]);
  });

  it("truncates at T+1 tokens; one example per row, no loss across examples", () => {
    const src = packSft(
      [
        { prompt: "a", response: "bcdefg" },
        { prompt: "xy", response: "z" },
      ],
      letters,
      { seqLen: 4, separator: "" },
    );
    const r = rows(src);
    // Example 1: [1,2,3,4,5,6,7,0] truncated to 5 tokens [1,2,3,4,5].
    expect(r[0]).toEqual({ x: [1, 2, 3, 4], y: [2, 3, 4, 5], m: [1, 1, 1, 1] });
    // Example 2: [24,25,26,0]: prompt xy masked; the row ends in padding, never tokens of another example.
    expect(r[1]).toEqual({ x: [24, 25, 26, 0], y: [25, 26, 0, 99], m: [0, 1, 1, 0] });
  });

  it("drops examples whose prompt fills the whole window and says so when none is left", () => {
    const src = packSft(
      [
        { prompt: "abcdefgh", response: "z" },
        { prompt: "a", response: "b" },
      ],
      letters,
      { seqLen: 4, separator: "" },
    );
    expect(src.numSequences).toBe(1);
    expect(src.numDocuments).toBe(2);
    expect(() => packSft([{ prompt: "abcdefgh", response: "z" }], letters, { seqLen: 4 })).toThrow(/1 dropped/);
    expect(() => packSft([], letters, { seqLen: 4 })).toThrow(EmptySourceError);
  });

  it("property: with masking on, no prompt or padding target has mask 1 (random examples, byte tokenizer)", () => {
    const tok = new ByteTokenizer();
    let seed = 12345;
    const rand = (n: number) => {
      seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
      return seed % n;
    };
    const word = () => Array.from({ length: 1 + rand(20) }, () => String.fromCharCode(97 + rand(26))).join("");
    const examples = Array.from({ length: 300 }, () => ({ prompt: word(), response: word() }));
    const T = 16;
    const src = packSft(examples, tok, { seqLen: T, separator: "|" });
    let checked = 0;
    let kept = 0;
    for (const b of evalBatches(src, 64)) {
      for (let r = 0; r < b.batchSize; r++) {
        const ex = examples.filter((e) => e.prompt.length + 1 <= T)[kept++];
        const promptLen = ex.prompt.length + 1; // bytes of prompt + "|"
        const fullLen = promptLen + ex.response.length + 1;
        for (let j = 0; j < T; j++) {
          const targetPos = j + 1; // position of target j in the example's own token sequence
          const isPrompt = targetPos < promptLen;
          const isPad = targetPos >= Math.min(fullLen, T + 1);
          const m = b.mask[r * T + j];
          if (isPrompt || isPad) expect(m).toBe(0);
          else expect(m).toBe(1);
          if (isPad) expect(b.targets[r * T + j]).toBe(tok.padId);
          checked++;
        }
      }
    }
    expect(kept).toBe(src.numSequences);
    expect(checked).toBe(src.numSequences * T);
  });
});

describe("field mapping", () => {
  it("reads text from a string, a field, or a dotted path", () => {
    expect(recordText("plain")).toBe("plain");
    expect(recordText({ text: "t" })).toBe("t");
    expect(recordText({ content: "c" }, { textField: "content" })).toBe("c");
    expect(recordText({ meta: { body: "b" } }, { textField: "meta.body" })).toBe("b");
  });
  it("names the file, line and fields when the text field is missing", () => {
    expect(() => recordText({ body: "x" }, {}, { file: "a.jsonl", line: 7 })).toThrow(/a\.jsonl:7: .*'text'.*'body'/);
  });
  it("maps prompt/response, instruction/input/output, question/answer and custom names", () => {
    expect(recordSft({ prompt: "p", response: "r" })).toEqual({ prompt: "p", response: "r" });
    expect(recordSft({ instruction: "i", input: "x", output: "o" })).toEqual({ prompt: "i\n\nx", response: "o" });
    expect(recordSft({ instruction: "i", input: "", output: "o" })).toEqual({ prompt: "i", response: "o" });
    expect(recordSft({ question: "q", answer: 4 })).toEqual({ prompt: "q", response: "4" });
    expect(recordSft({ q: "Q", a: "A" }, { prompt: "q", response: "a" })).toEqual({ prompt: "Q", response: "A" });
    expect(recordSft({ task: "T", ctx: "C", out: "O" }, { instruction: "task", input: "ctx", output: "out", inputSeparator: " " })).toEqual({
      prompt: "T C",
      response: "O",
    });
    expect(() => recordSft({ foo: 1 }, {}, { file: "f.jsonl", line: 3 })).toThrow(MalformedInputError);
    expect(() => recordSft({ prompt: "p" })).toThrow(/'response'/);
  });
});

describe("validation split", () => {
  it("is deterministic, disjoint, covers every document and holds out about the fraction", () => {
    const docs = Array.from({ length: 1000 }, (_, i) => `doc${i}`);
    const a = splitDocuments(docs, 0.1, 3);
    const b = splitDocuments(docs, 0.1, 3);
    expect(a).toEqual(b);
    expect(a.valid.length).toBe(100);
    const v = new Set(a.valid);
    expect(a.train.some((d) => v.has(d))).toBe(false);
    expect(a.train.length + a.valid.length).toBe(1000);
    expect(splitDocuments(docs, 0.1, 4).valid).not.toEqual(a.valid);
  });
  it("holds out at least one document once there are 1/fraction of them", () => {
    for (let seed = 0; seed < 20; seed++) {
      const n = Array.from({ length: 10 }, (_, i) => i).filter((i) => isValidationDoc(i, 0.1, seed)).length;
      expect(n).toBe(1);
    }
    expect(() => splitDocuments([1], 1.5)).toThrow(DataConfigError);
  });
  it("buildSource splits before packing: no validation document's text appears in training", async () => {
    const docs = Array.from({ length: 50 }, (_, i) => ({ text: `document number ${i} ` + "x".repeat(i) }));
    const { train, valid } = await buildSource(docs, { tokenizer: new ByteTokenizer(), seqLen: 8, validFraction: 0.2, splitSeed: 1 });
    expect(valid).toBeDefined();
    const expected = splitDocuments(docs, 0.2, 1);
    expect(train.numDocuments).toBe(expected.train.length);
    expect(valid!.numDocuments).toBe(expected.valid.length);
    const decode = (src: typeof train) => {
      const tok = new ByteTokenizer();
      let s = "";
      for (const b of evalBatches(src, 100)) {
        for (let r = 0; r < b.batchSize; r++) {
          // First input token of each block + all targets reconstructs the stream.
          if (s === "" && r === 0) s += tok.decode([b.inputs[0]]);
          const ys = Array.from(b.targets.subarray(r * 8, r * 8 + 8)).filter((_, j) => b.mask[r * 8 + j] > 0);
          s += ys.map((y) => (y === tok.eosId ? "\n" : tok.decode([y]))).join("");
        }
      }
      return s;
    };
    const trainText = decode(train);
    const validText = decode(valid!);
    for (const d of expected.valid) expect(validText).toContain(d.text);
    for (const d of expected.valid) expect(trainText).not.toContain(`${d.text}\n`);
  });
});
