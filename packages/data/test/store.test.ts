/**
 * Token stores: prepare → read gives the in-memory packers' sequences for every shipped corpus;
 * a mixer over stores resumes bitwise (also across a mixture switch); the hash split; no-op
 * reruns, refused changes; and every bad input named in issue 15 with nothing half-written.
 */
import { execFileSync } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, truncateSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { gzipSync } from "node:zlib";
import { parquetWriteBuffer } from "hyparquet-writer";
import { Rng } from "@midtrain/common";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  byteTokenizer,
  createMixer,
  EmptySourceError,
  loadHfTokenizer,
  MalformedInputError,
  memoryShard,
  type PackedSource,
  StoreSplitReader,
  storeSource,
  TokenStoreError,
} from "../src/index.js";
import { corpusManifest, corpusPath, listCorpora, loadCorpusSource, openTokenStore, prepare, StoreMismatchError, StoreWriteError } from "../src/node.js";
import { feistelPermutation, SHUFFLE_TABLE_MAX } from "../src/mixer.js";
import { tinyTokenizerJson } from "./fixtures/tiny-tokenizer.js";

const makeTinyTokenizer = () => loadHfTokenizer(tinyTokenizerJson(), { name: "tiny" });

let dir: string;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), "midtrain-store-"));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** Every sequence of a source as one byte string per array (inputs, targets, mask). */
function dump(src: PackedSource): Buffer[] {
  const T = src.seqLen;
  const n = src.numSequences;
  const inputs = new Int32Array(n * T);
  const targets = new Int32Array(n * T);
  const mask = new Float32Array(n * T);
  for (let i = 0; i < n; i++) src.write(i, inputs, targets, mask, i);
  return [Buffer.from(inputs.buffer), Buffer.from(targets.buffer), Buffer.from(mask.buffer)];
}

function sameSource(a: PackedSource, b: PackedSource, what: string): void {
  const { write: _a, ...ia } = a;
  const { write: _b, ...ib } = b;
  expect(ib, what).toEqual(ia);
  const [x, y] = [dump(a), dump(b)];
  for (let k = 0; k < 3; k++) expect(Buffer.compare(x[k], y[k]), `${what}: array ${k}`).toBe(0);
}

/** The files of a store folder with their bytes. */
function snapshot(d: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const f of readdirSync(d).sort())
    out[f] = createHash("sha256")
      .update(readFileSync(join(d, f)))
      .digest("hex");
  return out;
}

function jsonl(path: string, docs: unknown[]): string {
  writeFileSync(path, docs.map((d) => JSON.stringify(d)).join("\n") + "\n");
  return path;
}

const words = ["river", "stone", "alpha", "code", "math", "the", "of", "and", "λ", "日本"];
function docs(n: number, seed: number): { text: string }[] {
  let s = seed;
  const rnd = () => {
    s = (Math.imul(s, 1103515245) + 12345) >>> 0;
    return s / 4294967296;
  };
  return Array.from({ length: n }, (_, i) => ({
    text: `doc ${seed}-${i} ${Array.from({ length: 5 + Math.floor(rnd() * 60) }, () => words[Math.floor(rnd() * words.length)]).join(" ")}`,
  }));
}

describe("prepare → train reads the same sequences as the in-memory packers", () => {
  it("for every shipped corpus (train with a document limit, validation with its tail), across shard boundaries", async () => {
    const tokenizer = byteTokenizer();
    for (const name of listCorpora()) {
      const kind = corpusManifest().corpora[name].kind;
      const out = join(dir, `corpus-${name}`);
      await prepare({
        input: corpusPath(name, "train"),
        validInput: corpusPath(name, "valid"),
        out,
        tokenizer: "bytes",
        kind,
        shardTokens: 300_000,
        workers: 0,
      });
      const store = openTokenStore(out, { tokenizer });
      const seqLen = kind === "sft" ? 192 : 64;
      const limit = kind === "sft" ? 400 : 120;
      const mem = await loadCorpusSource(name, { tokenizer, seqLen, limit } as never);
      sameSource(mem.train, store.source("train", { seqLen, limit }), `${name} train`);
      sameSource(mem.valid, store.source("valid", { seqLen, keepTail: kind === "pretrain", allowEmpty: true }), `${name} valid`);
      if (kind === "sft") {
        const unmasked = await loadCorpusSource(name, { tokenizer, seqLen: 48, maskPrompt: false } as never);
        sameSource(unmasked.train, store.source("train", { seqLen: 48, maskPrompt: false }), `${name} unmasked, short`);
      }
      store.close();
    }
  }, 120_000);

  it("with a BPE tokenizer (uint16 ids, multi-byte tokens)", async () => {
    const tokenizer = makeTinyTokenizer();
    const input = jsonl(join(dir, "bpe.jsonl"), docs(200, 7));
    const out = join(dir, "bpe");
    await prepare({ input, out, tokenizer, shardTokens: 2000, workers: 0 });
    const store = openTokenStore(out, { tokenizer });
    expect(store.manifest.width).toBe(2);
    const { buildSource } = await import("../src/index.js");
    const mem = await buildSource(
      docs(200, 7).map((d) => d.text),
      { tokenizer, seqLen: 16 },
    );
    sameSource(mem.train, store.source("train", { seqLen: 16 }), "bpe");
    // On worker threads (the tokenizer's encode pool): the same bytes.
    const threaded = join(dir, "bpe-threads");
    await prepare({ input, out: threaded, tokenizer, shardTokens: 2000, workers: 2 });
    expect(snapshot(threaded)).toEqual(snapshot(out));
  });
});

describe("training from stores", () => {
  it("a mixer over stores resumes bitwise from its saved state, also across a mixture switch, and draws what the in-memory mixer draws", async () => {
    const tokenizer = byteTokenizer();
    const open = (name: string) => openTokenStore(join(dir, `corpus-${name}`), { tokenizer });
    const schedule = { sources: ["code", "general"], at: (t: { step: number }) => (t.step < 6 ? { general: 1, code: 0.2 } : { general: 0.3, code: 1 }) };
    const time = (step: number) => ({ step, tokens: step * 128, phase: "p", phaseStep: step, phaseSteps: 12, phaseFraction: step / 12 });
    const mk = () => {
      const g = open("general");
      const c = open("code");
      return createMixer({
        sources: { general: g.source("train", { seqLen: 32, limit: 60 }), code: c.source("train", { seqLen: 32, limit: 30 }) },
        schedule,
        seed: 5,
      });
    };
    const full = mk();
    const batches = Array.from({ length: 12 }, (_, s) => full.nextBatch(8, time(s)));
    const first = mk();
    for (let s = 0; s < 4; s++) first.nextBatch(8, time(s));
    const state = JSON.parse(JSON.stringify(first.getState()));
    const resumed = mk();
    resumed.setState(state);
    for (let s = 4; s < 12; s++) {
      const b = resumed.nextBatch(8, time(s));
      expect(Buffer.compare(Buffer.from(b.inputs.buffer), Buffer.from(batches[s].inputs.buffer)), `step ${s}`).toBe(0);
      expect(Buffer.compare(Buffer.from(b.mask.buffer), Buffer.from(batches[s].mask.buffer))).toBe(0);
      expect(b.sources).toEqual(batches[s].sources);
    }
    const g = await loadCorpusSource("general", { tokenizer, seqLen: 32, limit: 60 });
    const c = await loadCorpusSource("code", { tokenizer, seqLen: 32, limit: 30 });
    const mem = createMixer({ sources: { general: g.train, code: c.train }, schedule, seed: 5 });
    for (let s = 0; s < 12; s++) expect(Buffer.compare(Buffer.from(mem.nextBatch(8, time(s)).targets.buffer), Buffer.from(batches[s].targets.buffer))).toBe(0);
  });
});

describe("a store from fetched bytes (the browser path)", () => {
  it("memoryShard over the shard files' bytes reads the same sequences as positioned file reads", () => {
    const out = join(dir, "corpus-sft-math");
    const store = openTokenStore(out);
    const m = store.manifest;
    const shards = m.shards.train.map((sh) => memoryShard(new Uint8Array(readFileSync(join(out, sh.file))).buffer));
    const reader = new StoreSplitReader(m, "train", shards, out);
    sameSource(store.source("train", { seqLen: 96 }), storeSource(reader, { seqLen: 96 }), "sft-math from memory");
    store.close();
  });
});

describe("a mixer's order over a source too large for a shuffle table", () => {
  it("is a seeded bijection of [0, n) in constant memory (Feistel with cycle walking), another order per epoch seed", () => {
    for (const n of [1, 7, 1000, 4097, 70_001]) {
      const p = feistelPermutation(n, new Rng(3, "order", "x", 0));
      const seen = new Uint8Array(n);
      for (let i = 0; i < n; i++) seen[p(i)]++;
      expect(
        seen.every((v) => v === 1),
        `n=${n}`,
      ).toBe(true);
    }
    const a = feistelPermutation(70_001, new Rng(3, "order", "x", 0));
    const b = feistelPermutation(70_001, new Rng(3, "order", "x", 1));
    const differ = Array.from({ length: 100 }, (_, i) => a(i) !== b(i)).filter(Boolean).length;
    expect(differ).toBeGreaterThan(90);
    // Not the identity, and not a near-identity.
    expect(Array.from({ length: 100 }, (_, i) => a(i) === i).filter(Boolean).length).toBeLessThan(5);
    expect(SHUFFLE_TABLE_MAX).toBe(1 << 22);
  });
});

describe("the validation split", () => {
  it("is chosen per document by a seeded hash: disjoint from training, the same however the documents are spread over files, another with another seed", async () => {
    const all = docs(400, 3);
    const one = jsonl(join(dir, "split-one.jsonl"), all);
    mkdirSync(join(dir, "split-many"));
    for (let k = 0; k < 3; k++)
      jsonl(
        join(dir, "split-many", `p${k}.jsonl`),
        all.filter((_, i) => i % 3 === k),
      );
    const texts = async (out: string, split: "train" | "valid") => {
      const st = openTokenStore(out);
      const r = st.split(split);
      const t = byteTokenizer();
      const outTexts: string[] = [];
      for (let s = 0; s < r.numShards; s++) {
        const { token } = r.shardStart(s);
        const idx = r.shardIndex(s);
        let begin = 0;
        for (const end of idx.ends) {
          const ids = new Int32Array(end - begin - 1);
          r.readTokens(token + begin, ids);
          outTexts.push(t.decode(ids));
          begin = end;
        }
      }
      st.close();
      return outTexts;
    };
    await prepare({ input: one, out: join(dir, "split-a"), tokenizer: "bytes", validFraction: 0.2, splitSeed: 1, workers: 0, shardTokens: 5000 });
    await prepare({
      input: join(dir, "split-many"),
      out: join(dir, "split-b"),
      tokenizer: "bytes",
      validFraction: 0.2,
      splitSeed: 1,
      workers: 0,
      shardTokens: 5000,
    });
    await prepare({ input: one, out: join(dir, "split-c"), tokenizer: "bytes", validFraction: 0.2, splitSeed: 2, workers: 0, shardTokens: 5000 });
    const va = await texts(join(dir, "split-a"), "valid");
    const ta = await texts(join(dir, "split-a"), "train");
    expect(va.length).toBeGreaterThan(40);
    expect(va.length).toBeLessThan(120);
    expect(va.length + ta.length).toBe(400);
    expect(va.filter((x) => ta.includes(x))).toEqual([]);
    expect(new Set(await texts(join(dir, "split-b"), "valid"))).toEqual(new Set(va));
    expect(await texts(join(dir, "split-c"), "valid")).not.toEqual(va);
  });
});

describe("reruns and changes", () => {
  it("a rerun on unchanged inputs does nothing; a changed input or another tokenizer is refused, and rebuilt on request", async () => {
    const input = jsonl(join(dir, "rerun.jsonl"), docs(100, 11));
    const out = join(dir, "rerun");
    const opts = { input, out, tokenizer: "bytes" as const, validFraction: 0.1, workers: 0, shardTokens: 3000 };
    const first = await prepare(opts);
    expect(first.upToDate).toBe(false);
    const before = snapshot(out);
    const mtimes = readdirSync(out).map((f) => statSync(join(out, f)).mtimeMs);
    const again = await prepare(opts);
    expect(again.upToDate).toBe(true);
    expect(readdirSync(out).map((f) => statSync(join(out, f)).mtimeMs)).toEqual(mtimes);
    await expect(prepare({ ...opts, tokenizer: makeTinyTokenizer() })).rejects.toThrow(/prepared with tokenizer 'bytes'.*--rebuild/);
    jsonl(input, docs(101, 11));
    await expect(prepare(opts)).rejects.toThrow(StoreMismatchError);
    await expect(prepare(opts)).rejects.toThrow(/rerun\.jsonl is new or changed/);
    expect(snapshot(out)).toEqual(before);
    const rebuilt = await prepare({ ...opts, rebuild: true });
    expect(rebuilt.manifest.totals.train.docs + rebuilt.manifest.totals.valid.docs).toBe(101);
  });

  it("a store refuses a run whose tokenizer differs", async () => {
    expect(() => openTokenStore(join(dir, "rerun"), { tokenizer: makeTinyTokenizer() })).toThrow(
      /prepared with tokenizer 'bytes'.*prepare the data with the run's tokenizer/,
    );
  });
});

describe("bad input leaves no store that a later run could read", () => {
  const noStore = (out: string) => {
    expect(existsSync(join(out, "manifest.json"))).toBe(false);
    expect(() => openTokenStore(out)).toThrow();
  };

  it("a malformed JSON line: file and line named", async () => {
    const f = join(dir, "bad.jsonl");
    writeFileSync(f, `${JSON.stringify({ text: "fine" })}\n{"text": "broken\n`);
    const out = join(dir, "bad");
    const err = await prepare({ input: f, out, tokenizer: "bytes", workers: 0 }).catch((e) => e);
    expect(err).toBeInstanceOf(MalformedInputError);
    expect(err.file).toBe(f);
    expect(err.line).toBe(2);
    noStore(out);
  });

  it("corrupt gzip and corrupt Parquet", async () => {
    const gz = join(dir, "bad.jsonl.gz");
    const good = gzipSync(
      Buffer.from(
        docs(50, 1)
          .map((d) => JSON.stringify(d))
          .join("\n"),
      ),
    );
    writeFileSync(gz, Buffer.concat([good.subarray(0, 40), Buffer.from("garbage garbage garbage")]));
    await expect(prepare({ input: gz, out: join(dir, "badgz"), tokenizer: "bytes", workers: 0 })).rejects.toThrow(MalformedInputError);
    noStore(join(dir, "badgz"));
    const pq = Buffer.from(parquetWriteBuffer({ columnData: [{ name: "text", data: ["a b c", "d e f"], type: "STRING" }] }));
    const bad = join(dir, "bad.parquet");
    writeFileSync(bad, pq.subarray(0, pq.length - 9));
    await expect(prepare({ input: bad, out: join(dir, "badpq"), tokenizer: "bytes", workers: 0 })).rejects.toThrow(/bad\.parquet.*Parquet/);
    noStore(join(dir, "badpq"));
  });

  it("a field missing in some rows: the row is named", async () => {
    const f = join(dir, "missing.jsonl");
    jsonl(f, [{ text: "one" }, { text: "two" }, { body: "three" }]);
    await expect(prepare({ input: f, out: join(dir, "missing"), tokenizer: "bytes", workers: 0 })).rejects.toThrow(
      /missing\.jsonl:3: expected a string field 'text'/,
    );
    noStore(join(dir, "missing"));
  });

  it("an empty source", async () => {
    const f = join(dir, "empty.jsonl");
    writeFileSync(f, "\n\n");
    await expect(prepare({ input: f, out: join(dir, "empty"), tokenizer: "bytes", workers: 0 })).rejects.toThrow(EmptySourceError);
    noStore(join(dir, "empty"));
  });

  it("a store of an older format version, and a truncated shard", async () => {
    const out = join(dir, "damaged");
    await prepare({ input: jsonl(join(dir, "damaged.jsonl"), docs(80, 5)), out, tokenizer: "bytes", workers: 0, shardTokens: 2000 });
    const m = JSON.parse(readFileSync(join(out, "manifest.json"), "utf8"));
    writeFileSync(join(out, "manifest.json"), JSON.stringify({ ...m, version: 0 }));
    expect(() => openTokenStore(out)).toThrow(/format version 0.*Prepare it again/);
    writeFileSync(join(out, "manifest.json"), JSON.stringify(m));
    const shard = join(out, m.shards.train[1].file);
    truncateSync(shard, statSync(shard).size - 10);
    const st = openTokenStore(out);
    expect(() => st.source("train", { seqLen: 16 })).toThrow(TokenStoreError);
    expect(() => st.source("train", { seqLen: 16 })).toThrow(/train-00001\.bin.*truncated.*--rebuild/);
  });

  it("a disk that fills during prepare: a typed error, no shard or manifest half-written, and the rerun ends with the same bytes", async () => {
    const input = jsonl(join(dir, "full.jsonl"), docs(300, 9));
    const ref = join(dir, "full-ref");
    const opts = { input, tokenizer: "bytes" as const, validFraction: 0.1, workers: 0, shardTokens: 1500 };
    await prepare({ ...opts, out: ref });
    const out = join(dir, "full");
    const err = await prepare({ ...opts, out, failWritesAfterBytes: 9000 }).catch((e) => e);
    expect(err).toBeInstanceOf(StoreWriteError);
    expect(err.message).toMatch(/disk is full.*rerun/);
    noStore(out);
    // Every complete shard is whole; the unfinished ones only under temporary names.
    for (const f of readdirSync(out).filter((x) => x.endsWith(".bin"))) expect(readFileSync(join(out, f))).toEqual(readFileSync(join(ref, f)));
    await prepare({ ...opts, out });
    expect(snapshot(out)).toEqual(snapshot(ref));
  });

  it("a real full disk (a 1 MB tmpfs) [skipped: where mounting a tmpfs is not permitted]", async (ctx) => {
    const mnt = join(dir, "tmpfs");
    mkdirSync(mnt);
    try {
      execFileSync("mount", ["-t", "tmpfs", "-o", "size=1m", "tmpfs", mnt], { stdio: "ignore" });
    } catch {
      ctx.skip();
      return;
    }
    try {
      const input = jsonl(join(dir, "big.jsonl"), docs(4000, 13));
      const out = join(mnt, "store");
      const err = await prepare({ input, out, tokenizer: "bytes", validFraction: 0.1, workers: 0, shardTokens: 50_000 }).catch((e) => e);
      expect(err).toBeInstanceOf(StoreWriteError);
      expect(err.code).toBe("ENOSPC");
      expect(existsSync(join(out, "manifest.json"))).toBe(false);
      for (const f of readdirSync(out).filter((x) => x.endsWith(".bin"))) expect(statSync(join(out, f)).size).toBeGreaterThan(0);
    } finally {
      execFileSync("umount", [mnt]);
    }
  });
});
