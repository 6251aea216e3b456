import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { gzipSync } from "node:zlib";
import { parquetWriteBuffer } from "hyparquet-writer";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { detectFormat } from "../src/files.js";
import { ByteTokenizer, EmptySourceError, evalBatches, MalformedInputError, MissingFileError, type SourcedRecord } from "../src/index.js";
import { loadSource, readJsonl, readParquet, readRecords, readText } from "../src/node.js";

let dir: string;
const tok = new ByteTokenizer();

async function collect(it: AsyncIterable<SourcedRecord>): Promise<SourcedRecord[]> {
  const out: SourcedRecord[] = [];
  for await (const r of it) out.push(r);
  return out;
}

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), "midtrain-data-"));
  const lines = [{ text: "alpha" }, { text: "beta" }, { text: "gamma" }].map((r) => JSON.stringify(r));
  writeFileSync(join(dir, "docs.jsonl"), `${lines[0]}\n\n${lines[1]}\r\n${lines[2]}\n`);
  writeFileSync(join(dir, "docs.jsonl.gz"), gzipSync(`${lines.join("\n")}\n`));
  writeFileSync(join(dir, "bad.jsonl"), `${lines[0]}\n${lines[1]}\n{"text": "unterminated\n${lines[2]}\n`);
  writeFileSync(join(dir, "bad.jsonl.gz"), gzipSync(`${lines[0]}\nnot json at all\n`));
  writeFileSync(join(dir, "corrupt.jsonl.gz"), Buffer.from([0x1f, 0x8b, 8, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9]));
  writeFileSync(join(dir, "empty.jsonl"), "\n\n");
  writeFileSync(join(dir, "sft.jsonl"), `${JSON.stringify({ instruction: "Add", input: "2 and 3", output: "5" })}\n`);
  mkdirSync(join(dir, "folder/sub"), { recursive: true });
  writeFileSync(join(dir, "folder/b.txt"), "second file\r\nline two\n");
  writeFileSync(join(dir, "folder/a.txt"), "first file\n\nparagraph two\n");
  writeFileSync(join(dir, "folder/sub/c.md"), "third file\n");
  writeFileSync(join(dir, "folder/.hidden"), "skip me\n");
  mkdirSync(join(dir, "emptyfolder"));
  const pq = parquetWriteBuffer({
    columnData: [
      { name: "question", data: ["What is 2+2?", "Capital of France?", "Color of the sky?"], type: "STRING" },
      { name: "answer", data: ["4", "Paris", "Blue"], type: "STRING" },
      { name: "id", data: [1, 2, 3], type: "INT32" },
    ],
  });
  writeFileSync(join(dir, "qa.parquet"), Buffer.from(pq));
  writeFileSync(join(dir, "notparquet.parquet"), "this is not parquet");
});

afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe("JSON Lines", () => {
  it("streams records with file and line, skipping blank lines and handling CRLF", async () => {
    const recs = await collect(readJsonl(join(dir, "docs.jsonl")));
    expect(recs.map((r) => r.record)).toEqual([{ text: "alpha" }, { text: "beta" }, { text: "gamma" }]);
    expect(recs.map((r) => r.origin?.line)).toEqual([1, 3, 4]);
  });

  it("reads gzip-compressed JSON Lines", async () => {
    const recs = await collect(readJsonl(join(dir, "docs.jsonl.gz")));
    expect(recs.map((r) => (r.record as { text: string }).text)).toEqual(["alpha", "beta", "gamma"]);
  });

  it("a malformed line names the file and the line number", async () => {
    const p = join(dir, "bad.jsonl");
    const err = await collect(readJsonl(p)).catch((e) => e);
    expect(err).toBeInstanceOf(MalformedInputError);
    expect(err.file).toBe(p);
    expect(err.line).toBe(3);
    expect(err.message).toContain(`${p}:3: invalid JSON`);
    await expect(collect(readJsonl(join(dir, "bad.jsonl.gz")))).rejects.toThrow(/bad\.jsonl\.gz:2: invalid JSON/);
  });

  it("a corrupt gzip file is a MalformedInputError naming the file", async () => {
    await expect(collect(readJsonl(join(dir, "corrupt.jsonl.gz")))).rejects.toThrow(/corrupt\.jsonl\.gz/);
    await expect(collect(readJsonl(join(dir, "corrupt.jsonl.gz")))).rejects.toBeInstanceOf(MalformedInputError);
  });

  it("a record without the text field names file and line", async () => {
    await expect(loadSource(join(dir, "docs.jsonl"), { tokenizer: tok, seqLen: 4, textField: "body" })).rejects.toThrow(
      /docs\.jsonl:1: expected a string field 'body'/,
    );
  });
});

describe("Parquet (hyparquet)", () => {
  it("streams rows as objects, in chunks, with column selection", async () => {
    const recs = await collect(readParquet(join(dir, "qa.parquet"), { chunkRows: 2, columns: ["question", "answer"] }));
    expect(recs.map((r) => r.record)).toEqual([
      { question: "What is 2+2?", answer: "4" },
      { question: "Capital of France?", answer: "Paris" },
      { question: "Color of the sky?", answer: "Blue" },
    ]);
    expect(recs.map((r) => r.origin?.line)).toEqual([1, 2, 3]);
  });

  it("packs Parquet question/answer rows as SFT", async () => {
    const { train } = await loadSource(join(dir, "qa.parquet"), { kind: "sft", tokenizer: tok, seqLen: 32 });
    expect(train.numSequences).toBe(3);
    const [b] = [...evalBatches(train, 3)];
    // Row 0: "What is 2+2?\n" (13 bytes, masked) then "4" EOS → loss on exactly 2 targets.
    expect(Array.from(b.mask.subarray(0, 32)).reduce((s, x) => s + x, 0)).toBe(2);
    expect(b.targets[11]).toBe("\n".charCodeAt(0));
    expect(b.mask[11]).toBe(0);
    expect(b.targets[12]).toBe("4".charCodeAt(0));
    expect(b.mask[12]).toBe(1);
    expect(b.targets[13]).toBe(tok.eosId);
  });

  it("a file that is not Parquet is a clear error", async () => {
    await expect(collect(readParquet(join(dir, "notparquet.parquet")))).rejects.toThrow(/notparquet\.parquet: not a readable Parquet file/);
  });
});

describe("text files and folders", () => {
  it("reads a folder recursively in sorted order, one document per file, skipping hidden files", async () => {
    const recs = await collect(readText(join(dir, "folder")));
    expect(recs.map((r) => r.record)).toEqual(["first file\n\nparagraph two\n", "second file\nline two\n", "third file\n"]);
  });
  it("can split files into lines or paragraphs", async () => {
    const lines = await collect(readText(join(dir, "folder/b.txt"), { unit: "line" }));
    expect(lines.map((r) => [r.record, r.origin?.line])).toEqual([
      ["second file", 1],
      ["line two", 2],
    ]);
    const paras = await collect(readText(join(dir, "folder/a.txt"), { unit: "paragraph" }));
    expect(paras.map((r) => [r.record, r.origin?.line])).toEqual([
      ["first file", 1],
      ["paragraph two", 3],
    ]);
  });
  it("filters by extension and detects formats from names", async () => {
    const recs = await collect(readRecords(join(dir, "folder"), { extensions: [".md"] }));
    expect(recs.map((r) => r.record)).toEqual(["third file\n"]);
    expect([detectFormat("a.jsonl.gz"), detectFormat("b.parquet"), detectFormat("c.py"), detectFormat("d.ndjson")]).toEqual([
      "jsonl",
      "parquet",
      "text",
      "jsonl",
    ]);
  });
});

describe("bad input", () => {
  it("a missing file is a MissingFileError with the path", async () => {
    const p = join(dir, "nope.jsonl");
    await expect(collect(readJsonl(p))).rejects.toBeInstanceOf(MissingFileError);
    await expect(loadSource(p, { tokenizer: tok, seqLen: 4 })).rejects.toThrow(/not found: .*nope\.jsonl/);
    await expect(collect(readParquet(join(dir, "nope.parquet")))).rejects.toBeInstanceOf(MissingFileError);
  });
  it("an empty file or empty folder is an EmptySourceError", async () => {
    await expect(loadSource(join(dir, "empty.jsonl"), { tokenizer: tok, seqLen: 4 })).rejects.toThrow(/contains no records/);
    await expect(loadSource(join(dir, "emptyfolder"), { tokenizer: tok, seqLen: 4 })).rejects.toBeInstanceOf(EmptySourceError);
  });
  it("loadSource maps instruction/input/output records for SFT", async () => {
    const { train } = await loadSource(join(dir, "sft.jsonl"), { kind: "sft", tokenizer: tok, seqLen: 32 });
    const [b] = [...evalBatches(train, 1)];
    expect(tok.decode(Array.from(b.inputs).filter((x) => x < 256))).toBe("Add\n\n2 and 3\n5");
  });
});
