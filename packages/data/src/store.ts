/**
 * Token stores without file access: the shard format, the manifest's shape, the validation split
 * by document hash, the tokenizer fingerprint, and the readers that turn a store's shards into
 * {@link PackedSource}s with the packers' exact rules. `@midtrain/data/node` writes stores
 * (`prepare`) and opens them from disk with random access; a page can open one from fetched
 * ArrayBuffers with {@link memoryShard}.
 *
 * Shard file (little-endian), footer last so a shard can be appended to and closed without a copy:
 *   tokens        nTokens × width bytes (uint16 when the vocabulary fits, else uint32)
 *   padding       to a multiple of 4 bytes
 *   docEnds       uint32 × nDocs: end of each document in tokens, from the shard's start
 *   docBytes      uint32 × nDocs: UTF-8 bytes of each document's text
 *   promptLens    uint32 × nDocs (SFT stores only): prompt tokens (prompt + separator) of each example
 *   footer        32 bytes: "MTTS", version, width, flags (1 = SFT), nTokens, nDocs, index checksum, "MTTE"
 */
import { DataError, EmptySourceError } from "./errors.js";
import { type PackedSource, writePretrainRow } from "./pack.js";
import type { Tokenizer } from "./tokenizer.js";

/** The shard and manifest format this code writes and reads. */
export const STORE_FORMAT_VERSION = 1;
export const STORE_FORMAT = "midtrain-token-store";
const FOOTER_BYTES = 32;
const MAGIC_HEAD = 0x5354544d; // "MTTS"
const MAGIC_TAIL = 0x4554544d; // "MTTE"

/** A token store is unusable as it is: incomplete, from another format version, damaged, or for another tokenizer. */
export class TokenStoreError extends DataError {
  readonly path: string;
  constructor(path: string, message: string) {
    super(`${path}: ${message}`);
    this.path = path;
  }
}

/** One input file of a store, as the manifest records it. */
export interface StoreInput {
  path: string;
  size: number;
  mtimeMs: number;
  sha256: string;
}

/** One complete shard. */
export interface StoreShard {
  file: string;
  /** Size of the file in bytes. */
  size: number;
  tokens: number;
  docs: number;
  /** UTF-8 bytes of the documents' text. */
  bytes: number;
}

export interface StoreSplitTotals {
  shards: number;
  tokens: number;
  docs: number;
  bytes: number;
}

export type StoreSplit = "train" | "valid";

/** `manifest.json` of a token store: written last, so its presence marks a complete store. */
export interface StoreManifest {
  format: typeof STORE_FORMAT;
  version: number;
  kind: "pretrain" | "sft";
  tokenizer: { fingerprint: string; name: string; vocabSize: number; eosId: number; padId?: number };
  /** Bytes per token id: 2 (uint16) or 4 (uint32). */
  width: 2 | 4;
  /** A shard is closed at the first document boundary at or past this many tokens. */
  shardTokens: number;
  /** How documents were split: `validInputs` (separate validation files) or a seeded hash share. */
  split: { fraction: number; seed: number; validInputs: boolean };
  /** Record options that shape the documents (fields, separator, text unit, format). */
  options: Record<string, unknown>;
  inputs: Record<StoreSplit, StoreInput[]>;
  shards: Record<StoreSplit, StoreShard[]>;
  totals: Record<StoreSplit, StoreSplitTotals>;
}

/** Random access to one shard's bytes: copy `target.length` bytes from `offset` into `target`. */
export interface ShardData {
  readonly byteLength: number;
  readInto(offset: number, target: Uint8Array): void;
  close?(): void;
}

/** A shard held in memory (a fetched ArrayBuffer, a file read whole). */
export function memoryShard(bytes: ArrayBuffer | Uint8Array): ShardData {
  const u8 = bytes instanceof Uint8Array ? bytes : new Uint8Array(bytes);
  return {
    byteLength: u8.byteLength,
    readInto(offset, target) {
      target.set(u8.subarray(offset, offset + target.length));
    },
  };
}

// ---------------------------------------------------------------------------------------------
// Hashing (browser-safe, deterministic)

/** 32-bit hash (murmur3 mixing) of a string's UTF-16 code units, with a seed. */
export function hashString(text: string, seed = 0): number {
  let h = (seed ^ 0x9e3779b9) >>> 0;
  for (let i = 0; i < text.length; i++) {
    let k = text.charCodeAt(i);
    k = Math.imul(k, 0xcc9e2d51);
    k = (k << 15) | (k >>> 17);
    k = Math.imul(k, 0x1b873593);
    h ^= k;
    h = (h << 13) | (h >>> 19);
    h = (Math.imul(h, 5) + 0xe6546b64) | 0;
  }
  h ^= text.length;
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

/**
 * Whether a document belongs to the validation split: a seeded hash of its content against
 * `fraction`. It depends on nothing but the document, so it is the same whatever the number of
 * workers or the order of the files, and a document is in exactly one split.
 */
export function isValidationText(text: string, fraction: number, seed = 0): boolean {
  if (!(fraction > 0)) return false;
  return hashString(text, seed) / 4294967296 < fraction;
}

const PROBE = [
  "The quick brown fox jumps over the lazy dog. 1234567890 +-*/=<>",
  "def f(x):\n    return x ** 2  # squares\n\n\tindented\r\n",
  "Ünïcödé — naïve café, 日本語のテキスト, Ελληνικά, emoji 🙂🚀, ZWJ 👩‍💻",
  "  leading and trailing spaces   \n\n\n",
  "<|endoftext|> </s> [CLS] <pad>",
].join("\n");

/**
 * A fingerprint of what a tokenizer does (not of how it is implemented): its vocabulary size,
 * special ids, the ids it gives a probe text of prose, code, several scripts and special-token
 * strings, and the byte length of every token. Two tokenizers with the same fingerprint give a
 * store the same ids for that probe; a store refuses a tokenizer whose fingerprint differs.
 */
export function tokenizerFingerprint(tokenizer: Tokenizer): string {
  const ids = tokenizer.encode(PROBE);
  let h1 = hashString(`${tokenizer.vocabSize}|${tokenizer.eosId}|${tokenizer.padId ?? -1}|${ids.join(",")}`, 1);
  let h2 = hashString(`${ids.length}|${PROBE.length}`, 2);
  // Every token's byte length, in chunks (vocabularies of 50k+ tokens).
  const chunk: number[] = [];
  for (let id = 0; id < tokenizer.vocabSize; id++) {
    chunk.push(tokenizer.tokenBytes(id));
    if (chunk.length === 4096 || id === tokenizer.vocabSize - 1) {
      const s = chunk.join(",");
      h1 = hashString(s, h1);
      h2 = hashString(s, h2 ^ 0x5bd1e995);
      chunk.length = 0;
    }
  }
  return `${h1.toString(16).padStart(8, "0")}${h2.toString(16).padStart(8, "0")}`;
}

// ---------------------------------------------------------------------------------------------
// Shard encoding

const align4 = (n: number) => (n + 3) & ~3;

/** The index and footer that close a shard whose `nTokens` token bytes are already written. */
export function encodeShardTail(
  width: 2 | 4,
  nTokens: number,
  docEnds: ArrayLike<number>,
  docBytes: ArrayLike<number>,
  promptLens?: ArrayLike<number>,
): Uint8Array {
  const nDocs = docEnds.length;
  const pad = align4(nTokens * width) - nTokens * width;
  const cols = promptLens ? 3 : 2;
  const out = new Uint8Array(pad + nDocs * 4 * cols + FOOTER_BYTES);
  const dv = new DataView(out.buffer);
  let o = pad;
  let check = 0;
  const put = (v: number) => {
    dv.setUint32(o, v, true);
    check = (Math.imul(check ^ v, 0x01000193) + 0x9e37) >>> 0;
    o += 4;
  };
  for (let i = 0; i < nDocs; i++) put(docEnds[i]);
  for (let i = 0; i < nDocs; i++) put(docBytes[i]);
  if (promptLens) for (let i = 0; i < nDocs; i++) put(promptLens[i]);
  dv.setUint32(o, MAGIC_HEAD, true);
  dv.setUint32(o + 4, STORE_FORMAT_VERSION, true);
  dv.setUint32(o + 8, width, true);
  dv.setUint32(o + 12, promptLens ? 1 : 0, true);
  dv.setUint32(o + 16, nTokens, true);
  dv.setUint32(o + 20, nDocs, true);
  dv.setUint32(o + 24, check, true);
  dv.setUint32(o + 28, MAGIC_TAIL, true);
  return out;
}

/** Expected size of a shard file. */
export function shardFileSize(width: 2 | 4, nTokens: number, nDocs: number, sft: boolean): number {
  return align4(nTokens * width) + nDocs * 4 * (sft ? 3 : 2) + FOOTER_BYTES;
}

interface ShardFooter {
  version: number;
  width: 2 | 4;
  sft: boolean;
  nTokens: number;
  nDocs: number;
  check: number;
}

function readFooter(data: ShardData, where: string): ShardFooter {
  if (data.byteLength < FOOTER_BYTES)
    throw new TokenStoreError(where, `shard is ${data.byteLength} bytes, shorter than its footer; it is truncated — run prepare with --rebuild`);
  const b = new Uint8Array(FOOTER_BYTES);
  data.readInto(data.byteLength - FOOTER_BYTES, b);
  const dv = new DataView(b.buffer);
  if (dv.getUint32(0, true) !== MAGIC_HEAD || dv.getUint32(28, true) !== MAGIC_TAIL) {
    throw new TokenStoreError(where, "shard has no valid footer (truncated or not a midtrain token shard) — run prepare with --rebuild");
  }
  const version = dv.getUint32(4, true);
  if (version !== STORE_FORMAT_VERSION) {
    throw new TokenStoreError(where, `shard has format version ${version}, this midtrain reads version ${STORE_FORMAT_VERSION}; prepare the store again`);
  }
  const width = dv.getUint32(8, true);
  if (width !== 2 && width !== 4) throw new TokenStoreError(where, `shard footer names token width ${width}; the file is damaged — run prepare with --rebuild`);
  return {
    version,
    width,
    sft: (dv.getUint32(12, true) & 1) === 1,
    nTokens: dv.getUint32(16, true),
    nDocs: dv.getUint32(20, true),
    check: dv.getUint32(24, true),
  };
}

const LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

/** Checks a manifest's shape and version; the error says what to do. */
export function checkManifest(m: unknown, where: string): StoreManifest {
  const x = m as Partial<StoreManifest> | null;
  if (!x || typeof x !== "object" || x.format !== STORE_FORMAT) throw new TokenStoreError(where, "not a midtrain token store manifest");
  if (x.version !== STORE_FORMAT_VERSION) {
    throw new TokenStoreError(
      where,
      `token store has format version ${x.version}; this midtrain reads version ${STORE_FORMAT_VERSION}. Prepare it again (midtrain prepare ... --rebuild)`,
    );
  }
  if (!x.shards || !x.totals || (x.width !== 2 && x.width !== 4) || (x.kind !== "pretrain" && x.kind !== "sft")) {
    throw new TokenStoreError(where, "manifest lacks shards, totals, width or kind; prepare the store again with --rebuild");
  }
  return x as StoreManifest;
}

/** Refuses a tokenizer whose fingerprint differs from the store's. */
export function checkStoreTokenizer(manifest: StoreManifest, tokenizer: Tokenizer, where: string): void {
  const fp = tokenizerFingerprint(tokenizer);
  if (fp !== manifest.tokenizer.fingerprint) {
    throw new TokenStoreError(
      where,
      `the store was prepared with tokenizer '${manifest.tokenizer.name}' (fingerprint ${manifest.tokenizer.fingerprint}, vocab ${manifest.tokenizer.vocabSize}) ` +
        `but the run uses '${tokenizer.name}' (fingerprint ${fp}, vocab ${tokenizer.vocabSize}); prepare the data with the run's tokenizer`,
    );
  }
}

/** The shards of one split of a store, read by random access (tokens as one stream, documents by index). */
export class StoreSplitReader {
  readonly tokens: number;
  readonly docs: number;
  private readonly starts: number[] = [];
  private readonly docStarts: number[] = [];
  private scratch = new ArrayBuffer(0);
  private readonly footers: ShardFooter[] = [];
  constructor(
    readonly manifest: StoreManifest,
    readonly split: StoreSplit,
    private readonly data: ShardData[],
    private readonly where: string,
  ) {
    const infos = manifest.shards[split];
    if (infos.length !== data.length) throw new TokenStoreError(where, `manifest lists ${infos.length} ${split} shards but ${data.length} were opened`);
    let t = 0;
    let d = 0;
    infos.forEach((info, i) => {
      const w = `${where}/${info.file}`;
      if (data[i].byteLength !== info.size) {
        throw new TokenStoreError(
          w,
          `shard is ${data[i].byteLength} bytes, the manifest says ${info.size}; it is truncated or was changed — run prepare with --rebuild`,
        );
      }
      const f = readFooter(data[i], w);
      if (f.nTokens !== info.tokens || f.nDocs !== info.docs || f.width !== manifest.width || f.sft !== (manifest.kind === "sft")) {
        throw new TokenStoreError(w, "shard footer does not match the manifest; run prepare with --rebuild");
      }
      if (shardFileSize(f.width, f.nTokens, f.nDocs, f.sft) !== info.size)
        throw new TokenStoreError(w, "shard size does not match its footer; run prepare with --rebuild");
      this.footers.push(f);
      this.starts.push(t);
      this.docStarts.push(d);
      t += info.tokens;
      d += info.docs;
    });
    this.tokens = t;
    this.docs = d;
  }

  private buf(bytes: number): Uint8Array {
    if (this.scratch.byteLength < bytes) this.scratch = new ArrayBuffer(Math.max(bytes, 2 * this.scratch.byteLength));
    return new Uint8Array(this.scratch, 0, bytes);
  }

  /** Copies tokens [start, start + out.length) of the split's token stream (across shards) into `out`. */
  readTokens(start: number, out: Int32Array | Uint32Array, outOffset = 0, count = out.length - outOffset): void {
    if (start < 0 || start + count > this.tokens) throw new RangeError(`tokens [${start}, ${start + count}) outside [0, ${this.tokens})`);
    const w = this.manifest.width;
    let s = this.shardOfToken(start);
    let pos = start;
    let o = outOffset;
    let left = count;
    while (left > 0) {
      const local = pos - this.starts[s];
      const n = Math.min(left, this.footers[s].nTokens - local);
      const bytes = this.buf(n * w);
      this.data[s].readInto(local * w, bytes);
      if (LITTLE_ENDIAN) {
        const v = w === 2 ? new Uint16Array(bytes.buffer, 0, n) : new Uint32Array(bytes.buffer, 0, n);
        for (let j = 0; j < n; j++) out[o + j] = v[j];
      } else {
        const dv = new DataView(bytes.buffer);
        for (let j = 0; j < n; j++) out[o + j] = w === 2 ? dv.getUint16(j * 2, true) : dv.getUint32(j * 4, true);
      }
      o += n;
      pos += n;
      left -= n;
      s++;
    }
  }

  private shardOfToken(pos: number): number {
    let lo = 0;
    let hi = this.starts.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (this.starts[mid] <= pos) lo = mid;
      else hi = mid - 1;
    }
    return lo;
  }

  /** Number of shards in the split. */
  get numShards(): number {
    return this.data.length;
  }

  /** Token offset (in the split's stream) and document offset of shard `s`. */
  shardStart(s: number): { token: number; doc: number } {
    return { token: this.starts[s], doc: this.docStarts[s] };
  }

  /** The document index of shard `s`: end offsets (shard-local), UTF-8 bytes and (SFT) prompt lengths, read from the file. */
  shardIndex(s: number): { ends: Uint32Array; bytes: Uint32Array; promptLens?: Uint32Array } {
    const f = this.footers[s];
    const cols = f.sft ? 3 : 2;
    const off = align4(f.nTokens * f.width);
    const raw = new Uint8Array(f.nDocs * 4 * cols);
    this.data[s].readInto(off, raw);
    let check = 0;
    const dv = new DataView(raw.buffer);
    const all = new Uint32Array(f.nDocs * cols);
    for (let i = 0; i < all.length; i++) {
      const v = dv.getUint32(i * 4, true);
      all[i] = v;
      check = (Math.imul(check ^ v, 0x01000193) + 0x9e37) >>> 0;
    }
    if (check !== f.check)
      throw new TokenStoreError(`${this.where}/${this.manifest.shards[this.split][s].file}`, "shard index fails its checksum; run prepare with --rebuild");
    return { ends: all.subarray(0, f.nDocs), bytes: all.subarray(f.nDocs, 2 * f.nDocs), promptLens: f.sft ? all.subarray(2 * f.nDocs) : undefined };
  }

  close(): void {
    for (const d of this.data) d.close?.();
  }
}

export interface StoreSourceOptions {
  seqLen: number;
  /** Pad id (default: the store tokenizer's pad, else EOS). */
  padId?: number;
  /** Only the first `limit` documents. */
  limit?: number;
  /** Pretraining: keep the final partial block, padded and masked (validation sets do). */
  keepTail?: boolean;
  /** SFT: mask prompt tokens from the loss. Default true. */
  maskPrompt?: boolean;
  /** SFT: drop examples whose prompt alone fills the sequence (when masking). Default true. */
  dropUntrainable?: boolean;
  /** No error when the split yields no sequence (validation sets). */
  allowEmpty?: boolean;
  name?: string;
}

/**
 * A {@link PackedSource} over one split of a store, with the packers' rules: pretraining
 * documents (each followed by EOS) form one stream cut into seqLen+1 blocks sharing one token;
 * SFT examples are one per sequence, truncated, padded, prompt masked. Sequences are read from
 * the shards when `write` asks for them; only SFT stores keep an index of their examples in memory.
 */
export function storeSource(reader: StoreSplitReader, options: StoreSourceOptions): PackedSource {
  const T = options.seqLen;
  if (!Number.isInteger(T) || T < 1) throw new DataError(`seqLen must be a positive integer, got ${T}`);
  const m = reader.manifest;
  const pad = options.padId ?? m.tokenizer.padId ?? m.tokenizer.eosId;
  const label = options.name ? ` '${options.name}'` : "";
  const limit = options.limit ?? Number.POSITIVE_INFINITY;
  const checkIndex = (index: number, n: number) => {
    if (!(index >= 0 && index < n)) throw new RangeError(`sequence index ${index} out of range [0, ${n})`);
  };
  if (m.kind === "pretrain") {
    let N = reader.tokens;
    let docs = reader.docs;
    let bytes = m.totals[reader.split].bytes;
    if (limit < reader.docs) {
      docs = limit;
      bytes = 0;
      N = 0;
      for (let s = 0; s < reader.numShards; s++) {
        const { token, doc } = reader.shardStart(s);
        const idx = reader.shardIndex(s);
        const take = Math.min(idx.ends.length, limit - doc);
        if (take <= 0) break;
        for (let i = 0; i < take; i++) bytes += idx.bytes[i];
        N = token + idx.ends[take - 1];
        if (take < idx.ends.length) break;
      }
    }
    const full = N > 0 ? Math.floor((N - 1) / T) : 0;
    const tail = options.keepTail && N - 1 > full * T ? 1 : 0;
    const numSequences = full + tail;
    if (numSequences === 0 && !options.allowEmpty) {
      throw new EmptySourceError(
        `source${label} has ${docs} document(s) and ${N} token(s); one training sequence needs at least seqLen+1 = ${T + 1} tokens. Add text or lower seqLen.`,
      );
    }
    const row = new Int32Array(T + 1);
    return {
      kind: "pretrain",
      seqLen: T,
      numSequences,
      numTokens: N,
      numDocuments: docs,
      numBytes: bytes,
      write(index, inputs, targets, mask, r) {
        checkIndex(index, numSequences);
        const o = r * T;
        const start = index * T;
        const avail = Math.min(T, N - 1 - start);
        reader.readTokens(start, row, 0, avail + 1);
        return writePretrainRow(row, 0, avail, T, pad, inputs, targets, mask, o);
      },
    };
  }
  // SFT: an index of the kept examples (start in the split's stream, length after truncation, prompt length).
  const maskPrompt = options.maskPrompt ?? true;
  const drop = (options.dropUntrainable ?? true) && maskPrompt;
  const total = Math.min(reader.docs, limit);
  const starts = new Float64Array(total);
  const lens = new Uint32Array(total);
  const pls = new Uint32Array(total);
  let kept = 0;
  let numTokens = 0;
  let numBytes = 0;
  let dropped = 0;
  for (let s = 0; s < reader.numShards; s++) {
    const { token, doc } = reader.shardStart(s);
    if (doc >= total) break;
    const idx = reader.shardIndex(s);
    const take = Math.min(idx.ends.length, total - doc);
    for (let i = 0; i < take; i++) {
      const begin = i ? idx.ends[i - 1] : 0;
      const pl = idx.promptLens![i];
      if (drop && pl > T) {
        dropped++;
        continue;
      }
      const len = Math.min(idx.ends[i] - begin, T + 1);
      starts[kept] = token + begin;
      lens[kept] = len;
      pls[kept] = pl;
      numTokens += len;
      numBytes += idx.bytes[i];
      kept++;
    }
  }
  if (kept === 0 && !options.allowEmpty) {
    throw new EmptySourceError(`SFT source${label} has no usable examples (${total} read, ${dropped} dropped because the prompt alone exceeds seqLen ${T}).`);
  }
  const row = new Int32Array(T + 1);
  return {
    kind: "sft",
    seqLen: T,
    numSequences: kept,
    numTokens,
    numDocuments: total,
    numBytes,
    write(index, inputs, targets, mask, r) {
      checkIndex(index, kept);
      const o = r * T;
      const len = lens[index];
      const pl = pls[index];
      reader.readTokens(starts[index], row, 0, len);
      let loss = 0;
      for (let j = 0; j < T; j++) {
        const hasTarget = j + 1 < len;
        inputs[o + j] = j < len ? row[j] : pad;
        targets[o + j] = hasTarget ? row[j + 1] : pad;
        const mk = hasTarget && (!maskPrompt || j + 1 >= pl) ? 1 : 0;
        mask[o + j] = mk;
        loss += mk;
      }
      return loss;
    },
  };
}
