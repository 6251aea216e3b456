/**
 * Tokenizes a batch of documents for a token store: the ids of every document (each followed
 * by EOS) in the store's token width, each document's end, UTF-8 bytes, prompt length (SFT) and
 * split. `prepare` encodes the texts on worker threads (the tokenizer's encode pool) or in-thread and lays them out here.
 */
import { isValidationText } from "./store.js";
import { ByteTokenizer, type Tokenizer } from "./tokenizer.js";

/** Documents to encode: pretraining texts, or SFT prompts (separator included) with responses. */
export type DocBatch = { kind: "pretrain"; texts: string[] } | { kind: "sft"; prompts: string[]; responses: string[] };

export interface EncodedBatch {
  /** Token ids of all documents, little-endian, `width` bytes each. */
  tokens: Uint8Array;
  /** Cumulative end (in tokens) of each document within `tokens`. */
  ends: Uint32Array;
  bytes: Uint32Array;
  promptLens?: Uint32Array;
  /** 1 for a document of the validation split. */
  valid: Uint8Array;
}

const LE = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

function ids(tokenizer: Tokenizer, text: string): ArrayLike<number> {
  return tokenizer instanceof ByteTokenizer ? tokenizer.encodeBytes(text) : tokenizer.encode(text);
}

function byteLen(text: string): number {
  // Exact UTF-8 length without allocating.
  let n = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c < 0x80) n += 1;
    else if (c < 0x800) n += 2;
    else if (c >= 0xd800 && c <= 0xdbff && i + 1 < text.length && (text.charCodeAt(i + 1) & 0xfc00) === 0xdc00) {
      n += 4;
      i++;
    } else n += 3;
  }
  return n;
}

/** Encodes a batch in this thread; `split` (fraction > 0) marks validation documents by {@link isValidationText}. */
export function encodeBatch(tokenizer: Tokenizer, batch: DocBatch, width: 2 | 4, split?: { fraction: number; seed: number }): EncodedBatch {
  const texts = batch.kind === "pretrain" ? batch.texts : [...batch.prompts, ...batch.responses];
  return assembleBatch(
    batch,
    texts.map((t) => ids(tokenizer, t)),
    tokenizer.eosId,
    width,
    split,
  );
}

/**
 * Lays out the ids of a batch's texts (pretraining: one per document; SFT: all prompts, then all
 * responses) as store documents: each followed by EOS, with ends, UTF-8 bytes, prompt lengths and split.
 */
export function assembleBatch(
  batch: DocBatch,
  encoded: ArrayLike<number>[],
  eosId: number,
  width: 2 | 4,
  split?: { fraction: number; seed: number },
): EncodedBatch {
  const n = batch.kind === "pretrain" ? batch.texts.length : batch.prompts.length;
  const parts: ArrayLike<number>[] = [];
  const ends = new Uint32Array(n);
  const bytes = new Uint32Array(n);
  const valid = new Uint8Array(n);
  const promptLens = batch.kind === "sft" ? new Uint32Array(n) : undefined;
  let total = 0;
  const eos = [eosId];
  for (let i = 0; i < n; i++) {
    if (batch.kind === "pretrain") {
      const text = batch.texts[i];
      const t = encoded[i];
      parts.push(t, eos);
      total += t.length + 1;
      bytes[i] = byteLen(text);
      if (split && split.fraction > 0) valid[i] = isValidationText(text, split.fraction, split.seed) ? 1 : 0;
    } else {
      const p = encoded[i];
      const r = encoded[n + i];
      parts.push(p, r, eos);
      total += p.length + r.length + 1;
      promptLens![i] = p.length;
      bytes[i] = byteLen(batch.prompts[i]) + byteLen(batch.responses[i]);
      if (split && split.fraction > 0) valid[i] = isValidationText(`${batch.prompts[i]}\u0000${batch.responses[i]}`, split.fraction, split.seed) ? 1 : 0;
    }
    ends[i] = total;
  }
  const out = new Uint8Array(total * width);
  const view = LE ? (width === 2 ? new Uint16Array(out.buffer) : new Uint32Array(out.buffer)) : undefined;
  const dv = LE ? undefined : new DataView(out.buffer);
  let o = 0;
  for (const part of parts) {
    if (view) {
      view.set(part as ArrayLike<number>, o);
      o += part.length;
    } else {
      for (let j = 0; j < part.length; j++, o++) width === 2 ? dv!.setUint16(o * 2, part[j], true) : dv!.setUint32(o * 4, part[j], true);
    }
  }
  return { tokens: out, ends, bytes, promptLens, valid };
}
