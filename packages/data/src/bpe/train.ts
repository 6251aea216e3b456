/**
 * A deterministic byte-level BPE trainer (browser-safe). It pre-tokenizes the way GPT-2 does
 * (ByteLevel with its regex), counts each source's unique pre-tokens, weighs the sources, and
 * fits merges with incremental pair counts over the unique pre-tokens and a lazily updated
 * priority queue. The result is a standard Hugging Face `tokenizer.json` that this package's
 * BPE, @lenml/tokenizers and the Rust `tokenizers` library all load and agree on.
 *
 * Determinism: counts are whole numbers (weighted counts are rounded to 1/64 once, before
 * training), and among pairs with the same count the one with the smallest (left id, right id)
 * merges first; ids are given in creation order (special tokens, then the 256 bytes in byte
 * order, then merges). So the same input gives the same file, whatever the order of the
 * documents within a source.
 */
import { DataConfigError, EmptySourceError, InvalidWeightsError } from "../errors.js";
import { bpe } from "../tokenizer.js";

/** One source of training text with its weight. */
export interface BpeTrainSource {
  name: string;
  /** The documents (plain strings). */
  texts: Iterable<string> | AsyncIterable<string>;
  /** Share of the training signal (default 1): see {@link trainBpeTokenizer}. */
  weight?: number;
}

export interface BpeTrainOptions {
  /** Size of the vocabulary written: special tokens + 256 bytes + merges. */
  vocabSize: number;
  /** Special tokens, given the first ids (default ["<|endoftext|>", "<|padding|>"]: EOS, PAD). */
  specialTokens?: string[];
  /** A pair merges only while its weighted count is at least this (default 2). */
  minFrequency?: number;
  /** Called after reading each source and every 256 merges. */
  onProgress?: (p: BpeTrainProgress) => void;
}

export interface BpeTrainProgress {
  phase: "count" | "merge";
  /** The source just read (count phase). */
  source?: string;
  bytes: number;
  merges: number;
  targetMerges: number;
}

export interface BpeTrainResult {
  /** The tokenizer.json as an object (`JSON.stringify` it to write the file). */
  tokenizerJson: Record<string, unknown>;
  /** Per source: UTF-8 bytes read, documents, unique pre-tokens. */
  sources: { name: string; bytes: number; documents: number; uniqueWords: number; weight: number }[];
  /** Merges learned (can be fewer than asked when no pair is left at minFrequency). */
  merges: number;
  vocabSize: number;
}

const GPT2_PRE_TOKENIZER = { type: "ByteLevel", add_prefix_space: false, trim_offsets: true, use_regex: true };

function utf8Length(s: string): number {
  let n = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x80) n += 1;
    else if (c < 0x800) n += 2;
    else if (c >= 0xd800 && c <= 0xdbff && i + 1 < s.length && (s.charCodeAt(i + 1) & 0xfc00) === 0xdc00) {
      n += 4;
      i++;
    } else n += 3;
  }
  return n;
}

/**
 * Fits a byte-level BPE of `vocabSize` tokens on weighted sources.
 *
 * Weights are shares, like mixture weights: source s contributes w_s / Σw of the (byte) mass the
 * merges are fitted on, whatever its size; its pre-token counts are scaled by
 * (w_s / Σw) · (total bytes / its bytes). Equal weights (the default) give every source an equal say.
 */
export async function trainBpeTokenizer(sources: BpeTrainSource[], options: BpeTrainOptions): Promise<BpeTrainResult> {
  const specials = options.specialTokens ?? ["<|endoftext|>", "<|padding|>"];
  const minFrequency = options.minFrequency ?? 2;
  const vocabSize = options.vocabSize;
  if (!Array.isArray(sources) || sources.length === 0) throw new DataConfigError("trainBpeTokenizer needs at least one source");
  if (new Set(specials).size !== specials.length || specials.some((t) => typeof t !== "string" || t === "")) {
    throw new DataConfigError(`special tokens must be distinct non-empty strings, got ${JSON.stringify(specials)}`);
  }
  if (!Number.isInteger(vocabSize) || vocabSize < 256 + specials.length) {
    throw new DataConfigError(
      `vocabSize must be a whole number >= ${256 + specials.length} (256 byte tokens + ${specials.length} special tokens), got ${vocabSize}`,
    );
  }
  if (!(minFrequency >= 1)) throw new DataConfigError(`minFrequency must be >= 1, got ${minFrequency}`);
  const names = new Set<string>();
  for (const s of sources) {
    if (!s || typeof s.name !== "string" || s.name === "") throw new DataConfigError("every source needs a name");
    if (names.has(s.name)) throw new DataConfigError(`source '${s.name}' is named twice`);
    names.add(s.name);
    const w = s.weight ?? 1;
    if (!Number.isFinite(w) || w <= 0) throw new InvalidWeightsError(`source '${s.name}' has weight ${w}; weights must be finite and > 0`);
  }

  // 1. Count pre-tokens per source (GPT-2's ByteLevel regex, what the written file uses).
  const rt = bpe();
  const fail = (_k: string, field: string, message: string): never => {
    throw new DataConfigError(`${field}: ${message}`);
  };
  const sticky = new RegExp(rt.translatePattern(rt.gpt2Pattern, "pre-tokenizer", fail).source, "uy");
  const perSource: { name: string; counts: Map<string, number>; bytes: number; documents: number; weight: number }[] = [];
  for (const src of sources) {
    const counts = new Map<string, number>();
    let bytes = 0;
    let documents = 0;
    const add = (text: string) => {
      if (typeof text !== "string") throw new DataConfigError(`source '${src.name}' yielded a ${typeof text}, expected strings`);
      if (text.length === 0) return;
      documents++;
      bytes += utf8Length(text);
      let p = 0;
      while (p < text.length) {
        sticky.lastIndex = p;
        // GPT-2's pattern matches at every position (its last branch is \s+, the others cover the rest).
        const e = sticky.test(text) && sticky.lastIndex > p ? sticky.lastIndex : p + 1;
        const w = text.slice(p, e);
        counts.set(w, (counts.get(w) ?? 0) + 1);
        p = e;
      }
    };
    if (Symbol.asyncIterator in (src.texts as object)) for await (const t of src.texts as AsyncIterable<string>) add(t);
    else for (const t of src.texts as Iterable<string>) add(t);
    if (bytes === 0) throw new EmptySourceError(`source '${src.name}' has no text to train on`);
    perSource.push({ name: src.name, counts, bytes, documents, weight: src.weight ?? 1 });
    options.onProgress?.({ phase: "count", source: src.name, bytes, merges: 0, targetMerges: vocabSize - 256 - specials.length });
  }

  // 2. Weighted counts of unique words, as whole numbers (64ths).
  const totalBytes = perSource.reduce((s, x) => s + x.bytes, 0);
  const totalWeight = perSource.reduce((s, x) => s + x.weight, 0);
  const wordCount = new Map<string, number>();
  for (const s of perSource) {
    const f = (s.weight / totalWeight) * (totalBytes / s.bytes) * 64;
    for (const [w, c] of s.counts) wordCount.set(w, (wordCount.get(w) ?? 0) + c * f);
  }
  const words = [...wordCount.keys()].sort();
  const minCount = minFrequency * 64;

  // 3. Symbols: specials, then bytes (id = specials + byte), then merges.
  const base = specials.length;
  const b2c = rt.byteToChar();
  const tokens: string[] = [...specials, ...b2c];
  const enc = new TextEncoder();
  let total = 0;
  const wordBytes: Uint8Array[] = [];
  for (const w of words) {
    const b = enc.encode(w);
    wordBytes.push(b);
    total += b.length;
  }
  const W = words.length;
  const wsym = new Int32Array(total);
  const wstart = new Int32Array(W);
  const wlen = new Int32Array(W);
  const wcnt = new Float64Array(W);
  let o = 0;
  for (let i = 0; i < W; i++) {
    wstart[i] = o;
    wlen[i] = wordBytes[i].length;
    wcnt[i] = Math.round(wordCount.get(words[i]) as number);
    for (const b of wordBytes[i]) wsym[o++] = base + b;
  }

  const V = vocabSize;
  const key = (a: number, b: number) => a * V + b;
  const pairCount = new Map<number, number>();
  const pairWords = new Map<number, number[]>();
  const addPair = (a: number, b: number, c: number, w: number) => {
    const k = key(a, b);
    pairCount.set(k, (pairCount.get(k) ?? 0) + c);
    if (c > 0) {
      let list = pairWords.get(k);
      if (!list) {
        list = [];
        pairWords.set(k, list);
      }
      if (list[list.length - 1] !== w) list.push(w);
    }
  };
  for (let w = 0; w < W; w++) {
    if (wcnt[w] <= 0) continue;
    const s0 = wstart[w];
    for (let i = 0; i + 1 < wlen[w]; i++) addPair(wsym[s0 + i], wsym[s0 + i + 1], wcnt[w], w);
  }

  // Max-heap on (count desc, a asc, b asc), lazily updated: an entry's count is an upper bound
  // (pairs of existing symbols only lose occurrences), so a popped entry whose count is current
  // is the best pair; a stale one goes back with its current count.
  let hc = new Float64Array(1024);
  let ha = new Int32Array(1024);
  let hb = new Int32Array(1024);
  let hs = 0;
  const better = (i: number, j: number) => hc[i] > hc[j] || (hc[i] === hc[j] && (ha[i] < ha[j] || (ha[i] === ha[j] && hb[i] < hb[j])));
  const swap = (i: number, j: number) => {
    const c = hc[i];
    hc[i] = hc[j];
    hc[j] = c;
    const a = ha[i];
    ha[i] = ha[j];
    ha[j] = a;
    const b = hb[i];
    hb[i] = hb[j];
    hb[j] = b;
  };
  const hpush = (c: number, a: number, b: number) => {
    if (hs === hc.length) {
      const nc = new Float64Array(hs * 2);
      nc.set(hc);
      hc = nc;
      const na = new Int32Array(hs * 2);
      na.set(ha);
      ha = na;
      const nb = new Int32Array(hs * 2);
      nb.set(hb);
      hb = nb;
    }
    let i = hs++;
    hc[i] = c;
    ha[i] = a;
    hb[i] = b;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (!better(i, p)) break;
      swap(i, p);
      i = p;
    }
  };
  const hpop = () => {
    hs--;
    hc[0] = hc[hs];
    ha[0] = ha[hs];
    hb[0] = hb[hs];
    let i = 0;
    for (;;) {
      const l = 2 * i + 1;
      if (l >= hs) break;
      const c = l + 1 < hs && better(l + 1, l) ? l + 1 : l;
      if (!better(c, i)) break;
      swap(c, i);
      i = c;
    }
  };
  for (const [k, c] of pairCount) if (c >= minCount) hpush(c, Math.floor(k / V), k % V);

  const targetMerges = vocabSize - 256 - base;
  const merges: string[] = [];
  const specialSet = new Set(specials);
  const tokenId = new Map<string, number>();
  tokens.forEach((t, i) => {
    if (i >= base) tokenId.set(t, i);
  });
  const stamp = new Int32Array(W).fill(-1);
  // Stops at vocabSize distinct tokens: a merge whose result is already a token (e.g. "ab c" after
  // "a bc") reuses that token's id, as the Rust trainer does, and adds no new token.
  while (tokens.length < vocabSize && hs > 0) {
    const c = hc[0];
    const a = ha[0];
    const b = hb[0];
    hpop();
    const k = key(a, b);
    const cur = pairCount.get(k) ?? 0;
    if (cur !== c) {
      if (cur >= minCount) hpush(cur, a, b);
      continue;
    }
    const merged = tokens[a] + tokens[b];
    if (specialSet.has(merged)) {
      pairCount.delete(k);
      continue;
    }
    let id = tokenId.get(merged);
    if (id === undefined) {
      id = tokens.length;
      tokens.push(merged);
      tokenId.set(merged, id);
    }
    merges.push(`${tokens[a]} ${tokens[b]}`);
    const mark = merges.length;
    const list = pairWords.get(k) ?? [];
    pairCount.delete(k);
    pairWords.delete(k);
    const touched: number[] = [];
    for (const w of list) {
      if (stamp[w] === mark) continue;
      stamp[w] = mark;
      const s0 = wstart[w];
      let n = wlen[w];
      const cw = wcnt[w];
      let i = 0;
      while (i < n - 1) {
        if (wsym[s0 + i] === a && wsym[s0 + i + 1] === b) {
          if (i > 0) {
            const p = wsym[s0 + i - 1];
            addPair(p, a, -cw, w);
            addPair(p, id, cw, w);
            touched.push(key(p, id));
          }
          wsym[s0 + i] = id;
          for (let j = i + 1; j < n - 1; j++) wsym[s0 + j] = wsym[s0 + j + 1];
          n--;
          if (i < n - 1) {
            const q = wsym[s0 + i + 1];
            addPair(b, q, -cw, w);
            addPair(id, q, cw, w);
            touched.push(key(id, q));
          }
        }
        i++;
      }
      wlen[w] = n;
    }
    // New pairs (all contain the new id) enter the queue once each, with their final count.
    touched.sort((x, y) => x - y);
    for (let t = 0; t < touched.length; t++) {
      const tk = touched[t];
      if (t > 0 && touched[t - 1] === tk) continue;
      const tc = pairCount.get(tk) ?? 0;
      if (tc >= minCount) hpush(tc, Math.floor(tk / V), tk % V);
    }
    if (merges.length % 256 === 0) options.onProgress?.({ phase: "merge", bytes: totalBytes, merges: merges.length, targetMerges });
  }
  options.onProgress?.({ phase: "merge", bytes: totalBytes, merges: merges.length, targetMerges });

  const vocab: Record<string, number> = {};
  tokens.forEach((t, i) => {
    vocab[t] = i;
  });
  if (Object.keys(vocab).length !== tokens.length) {
    throw new DataConfigError("a special token is spelled like a byte-level token; pick special tokens such as <|endoftext|>");
  }
  const tokenizerJson = {
    version: "1.0",
    truncation: null,
    padding: null,
    added_tokens: specials.map((content, id) => ({ id, content, single_word: false, lstrip: false, rstrip: false, normalized: false, special: true })),
    normalizer: null,
    pre_tokenizer: { ...GPT2_PRE_TOKENIZER },
    post_processor: null,
    decoder: { type: "ByteLevel", add_prefix_space: true, trim_offsets: true, use_regex: true },
    model: { type: "BPE", dropout: null, unk_token: null, continuing_subword_prefix: null, end_of_word_suffix: null, fuse_unk: false, vocab, merges },
  };
  return {
    tokenizerJson,
    sources: perSource.map((s) => ({ name: s.name, bytes: s.bytes, documents: s.documents, uniqueWords: s.counts.size, weight: s.weight })),
    merges: merges.length,
    vocabSize: tokens.length,
  };
}
