import { TokenizerLoader } from "@lenml/tokenizers";
import { type BpeCore, type BpeFail, bpeRuntime } from "./bpe/runtime.js";
import { DataConfigError } from "./errors.js";

/**
 * What the data pipeline needs from a tokenizer. `tokenBytes(id)` is the number of UTF-8 bytes the
 * token stands for (0 for special tokens), so losses can be turned into bits per byte.
 */
export interface Tokenizer {
  readonly name: string;
  readonly vocabSize: number;
  readonly eosId: number;
  readonly padId?: number;
  encode(text: string): number[];
  /** The same ids as `encode`, in a typed array (no JS array per document); present on the fast BPE. */
  encodeIds?(text: string): Uint32Array;
  decode(ids: ArrayLike<number>): string;
  tokenBytes(id: number): number;
}

const utf8Encoder = new TextEncoder();

/**
 * Byte-level tokenizer: ids 0..255 are UTF-8 bytes, 256 is EOS, 257 is PAD (vocabSize 258).
 * No training, no files, exact bits-per-byte. The default for tiny CPU models.
 */
export class ByteTokenizer implements Tokenizer {
  readonly name = "bytes";
  readonly vocabSize = 258;
  readonly eosId = 256;
  readonly padId = 257;
  private readonly decoder = new TextDecoder("utf-8");

  encode(text: string): number[] {
    return Array.from(utf8Encoder.encode(text));
  }

  /** Encodes straight into a typed array (what the packer uses; avoids a JS array per document). */
  encodeBytes(text: string): Uint8Array {
    return utf8Encoder.encode(text);
  }

  decode(ids: ArrayLike<number>): string {
    const bytes: number[] = [];
    for (let i = 0; i < ids.length; i++) if (ids[i] < 256) bytes.push(ids[i]);
    return this.decoder.decode(new Uint8Array(bytes));
  }

  tokenBytes(id: number): number {
    return id >= 0 && id < 256 ? 1 : 0;
  }
}

/** The default tokenizer (byte level). */
export function byteTokenizer(): ByteTokenizer {
  return new ByteTokenizer();
}

// GPT-2's byte <-> unicode table used by ByteLevel pre-tokenizers: printable bytes map to themselves,
// the rest to code points from 256 upwards. Needed to count a ByteLevel token's bytes exactly.
function byteLevelCharToByte(): Map<string, number> {
  const bs: number[] = [];
  for (let b = 33; b <= 126; b++) bs.push(b);
  for (let b = 161; b <= 172; b++) bs.push(b);
  for (let b = 174; b <= 255; b++) bs.push(b);
  const cs = bs.slice();
  let n = 0;
  for (let b = 0; b < 256; b++) {
    if (!bs.includes(b)) {
      bs.push(b);
      cs.push(256 + n);
      n++;
    }
  }
  const m = new Map<string, number>();
  for (let i = 0; i < bs.length; i++) m.set(String.fromCharCode(cs[i]), bs[i]);
  return m;
}

/** A tokenizer.json value is malformed; `field` is its JSON path (e.g. `model.merges[12]`). */
export class TokenizerFormatError extends DataConfigError {
  readonly field: string;
  constructor(field: string, message: string) {
    super(`tokenizer.json ${field}: ${message}`);
    this.field = field;
  }
}

/** A tokenizer.json uses something the fast byte-level BPE does not implement; the message says what is supported. */
export class UnsupportedTokenizerError extends DataConfigError {
  readonly field: string;
  constructor(field: string, message: string) {
    super(`tokenizer.json ${field}: ${message}`);
    this.field = field;
  }
}

export const bpeFail: BpeFail = (kind, field, message) => {
  throw kind === "format" ? new TokenizerFormatError(field, message) : new UnsupportedTokenizerError(field, message);
};

let runtime: ReturnType<typeof bpeRuntime> | undefined;
/** The shared BPE runtime (one per thread). */
export function bpe(): ReturnType<typeof bpeRuntime> {
  runtime ??= bpeRuntime();
  return runtime;
}

export interface HfTokenizerOptions {
  /** Contents of tokenizer_config.json (optional; used for eos/pad names). */
  tokenizerConfig?: Record<string, unknown>;
  /** Name reported by `tokenizer.name`. */
  name?: string;
  /** EOS token string; default: config's eos_token, else the first of <|endoftext|>, </s>, <eos>. */
  eosToken?: string;
  /** PAD token string; default: config's pad_token when it is in the vocabulary. */
  padToken?: string;
  /**
   * Which implementation: "bpe" (this package's byte-level BPE; throws UnsupportedTokenizerError
   * for anything else), "lenml" (@lenml/tokenizers, any model type, slower), or "auto" (default:
   * "bpe" when the file is a byte-level BPE, else "lenml").
   */
  engine?: "auto" | "bpe" | "lenml";
  /** Pre-tokens the fast BPE caches before it starts the cache over (default 100 000; memory stays bounded). */
  cacheEntries?: number;
}

function tokenName(v: unknown): string | undefined {
  if (typeof v === "string") return v;
  if (v && typeof v === "object" && typeof (v as { content?: unknown }).content === "string") return (v as { content: string }).content;
  return undefined;
}

function parseTokenizerJson(tokenizerJson: string | Record<string, unknown>): Record<string, any> {
  let json: Record<string, any>;
  try {
    json = typeof tokenizerJson === "string" ? JSON.parse(tokenizerJson) : tokenizerJson;
  } catch (e) {
    throw new DataConfigError(`tokenizer.json is not valid JSON: ${(e as Error).message}`);
  }
  if (!json || typeof json !== "object" || Array.isArray(json) || !json.model || typeof json.model !== "object") {
    throw new TokenizerFormatError("model", "not a Hugging Face tokenizer.json: expected an object with a 'model' field");
  }
  return json;
}

const utf8Decoder = () => new TextDecoder("utf-8");

/**
 * The fast byte-level BPE over a Hugging Face `tokenizer.json` (GPT-2, GPT-NeoX/Pythia, cl100k
 * style): the same ids as the Rust `tokenizers` library, browser-safe, with a pre-token cache.
 * Build it with {@link loadHfTokenizer}; `definition` is the parsed tokenizer.json, which is what
 * worker threads rebuild it from.
 */
export class BpeTokenizer implements Tokenizer {
  readonly name: string;
  readonly vocabSize: number;
  readonly eosId: number;
  readonly padId?: number;
  /** The parsed tokenizer.json this tokenizer was built from (plain data: can be posted to a worker). */
  readonly definition: Record<string, unknown>;
  /** The options it was built with (plain data). */
  readonly options: HfTokenizerOptions;
  private readonly core: BpeCore;
  private readonly lengths: Int32Array;
  private readonly decoder = utf8Decoder();

  /** Use {@link loadHfTokenizer}; this constructor takes an already compiled core. */
  constructor(core: BpeCore, meta: { name: string; eosId: number; padId?: number; definition: Record<string, unknown>; options: HfTokenizerOptions }) {
    this.core = core;
    this.vocabSize = core.vocabSize;
    this.name = meta.name;
    this.eosId = meta.eosId;
    this.padId = meta.padId;
    this.definition = meta.definition;
    this.options = meta.options;
    this.lengths = new Int32Array(this.vocabSize).fill(-1);
  }

  encode(text: string): number[] {
    return Array.from(this.core.encode(text));
  }

  encodeIds(text: string): Uint32Array {
    return this.core.encode(text);
  }

  decode(ids: ArrayLike<number>): string {
    const parts: Uint8Array[] = [];
    let n = 0;
    for (let i = 0; i < ids.length; i++) {
      const id = ids[i];
      if (!(id >= 0 && id < this.vocabSize)) continue;
      const b = this.core.bytesOf(id);
      parts.push(b);
      n += b.length;
    }
    const all = new Uint8Array(n);
    let o = 0;
    for (const b of parts) {
      all.set(b, o);
      o += b.length;
    }
    return this.decoder.decode(all);
  }

  tokenBytes(id: number): number {
    if (!(id >= 0 && id < this.vocabSize)) return 0;
    let n = this.lengths[id];
    if (n < 0) {
      n = this.core.isSpecial(id) || this.core.tokenOf(id) === undefined ? 0 : this.core.bytesOf(id).length;
      this.lengths[id] = n;
    }
    return n;
  }

  /** The token string of an id as the vocabulary spells it (e.g. "Ġthe"). */
  tokenOf(id: number): string | undefined {
    return this.core.tokenOf(id);
  }

  /** The id of a token string (vocabulary form or added token), if any. */
  idOf(token: string): number | undefined {
    return this.core.idOf(token);
  }

  /** Pre-tokens in the cache now (at most `cacheEntries`). */
  get cacheSize(): number {
    return this.core.cacheSize();
  }
}

/**
 * Wraps any Hugging Face `tokenizer.json` (parsed JSON object or its text). Byte-level BPE files
 * (GPT-2, GPT-NeoX/Pythia, cl100k, and what `trainBpeTokenizer` writes) get the fast
 * {@link BpeTokenizer}; other model types go through @lenml/tokenizers (see `options.engine`).
 * Special tokens are never added by `encode` (no post-processor); the packer appends EOS itself.
 * Added tokens that occur in the text are encoded as their ids, as the Rust library does.
 */
export function loadHfTokenizer(tokenizerJson: string | Record<string, unknown>, options: HfTokenizerOptions = {}): Tokenizer {
  const json = parseTokenizerJson(tokenizerJson);
  const engine = options.engine ?? "auto";
  if (engine !== "auto" && engine !== "bpe" && engine !== "lenml")
    throw new DataConfigError(`engine must be "auto", "bpe" or "lenml", got '${String(engine)}'`);
  const config: Record<string, unknown> = { ...(options.tokenizerConfig ?? {}) };
  let core: BpeCore | undefined;
  if (engine !== "lenml") {
    try {
      core = bpe().compile(json, { cacheEntries: options.cacheEntries }, bpeFail);
    } catch (e) {
      if (!(engine === "auto" && e instanceof UnsupportedTokenizerError)) throw e;
    }
  }
  const vocab: Record<string, number> = (json.model.vocab ?? {}) as Record<string, number>;
  const added: { id: number; content: string; special?: boolean }[] = Array.isArray(json.added_tokens) ? json.added_tokens : [];
  const idOf = (tok: string): number | undefined => {
    if (core) return core.idOf(tok);
    const a = added.find((t) => t.content === tok);
    if (a) return a.id;
    if (!Array.isArray(vocab) && Object.hasOwn(vocab, tok)) return vocab[tok];
    return undefined;
  };
  const eosName = options.eosToken ?? tokenName(config.eos_token) ?? ["<|endoftext|>", "</s>", "<eos>", "<|end_of_text|>"].find((t) => idOf(t) !== undefined);
  const eosId = eosName !== undefined ? idOf(eosName) : undefined;
  if (eosId === undefined) {
    throw new DataConfigError("could not find an EOS token in tokenizer.json; pass options.eosToken with the token string the model uses");
  }
  if (config.eos_token === undefined) config.eos_token = eosName;
  const padName = options.padToken ?? tokenName(config.pad_token);
  const padId = padName !== undefined ? idOf(padName) : undefined;
  const name = options.name ?? (typeof config.name_or_path === "string" ? config.name_or_path : "hf");
  if (core) {
    return new BpeTokenizer(core, { name, eosId, padId, definition: json, options: { ...options, tokenizerConfig: config, eosToken: eosName, name } });
  }
  return lenmlTokenizer(json, config, { name, eosId, padId, vocab, added });
}

function lenmlTokenizer(
  json: Record<string, any>,
  config: Record<string, unknown>,
  meta: { name: string; eosId: number; padId?: number; vocab: Record<string, number>; added: { id: number; content: string; special?: boolean }[] },
): Tokenizer {
  const { vocab, added } = meta;
  let hf: any;
  try {
    hf = TokenizerLoader.fromPreTrained({ tokenizerJSON: json as any, tokenizerConfig: config as any });
  } catch (e) {
    throw new DataConfigError(`could not build a tokenizer from tokenizer.json: ${(e as Error).message}`);
  }

  let maxId = -1;
  const idToToken: string[] = [];
  if (Array.isArray(vocab)) {
    // Unigram models: vocab is [[piece, score], ...]
    (vocab as unknown as [string, number][]).forEach(([piece], i) => {
      idToToken[i] = piece;
      maxId = Math.max(maxId, i);
    });
  } else {
    for (const [tok, id] of Object.entries(vocab)) {
      idToToken[id] = tok;
      if (id > maxId) maxId = id;
    }
  }
  const special = new Set<number>();
  for (const t of added) {
    idToToken[t.id] = t.content;
    if (t.special !== false) special.add(t.id);
    if (t.id > maxId) maxId = t.id;
  }
  const vocabSize = maxId + 1;

  const usesByteLevel = JSON.stringify(json.pre_tokenizer ?? {}).includes("ByteLevel") || JSON.stringify(json.decoder ?? {}).includes("ByteLevel");
  const charToByte = usesByteLevel ? byteLevelCharToByte() : undefined;
  const byteCache = new Int32Array(vocabSize).fill(-1);

  return {
    name: meta.name,
    vocabSize,
    eosId: meta.eosId,
    padId: meta.padId,
    encode(text: string): number[] {
      return hf.encode(text, { add_special_tokens: false }) as number[];
    },
    decode(ids: ArrayLike<number>): string {
      return hf.decode(Array.from(ids), { skip_special_tokens: false }) as string;
    },
    tokenBytes(id: number): number {
      if (!(id >= 0 && id < vocabSize)) return 0;
      const cached = byteCache[id];
      if (cached >= 0) return cached;
      let n = 0;
      const tok = idToToken[id];
      if (special.has(id) || tok === undefined) n = 0;
      else if (charToByte) {
        for (const ch of tok) n += charToByte.has(ch) ? 1 : utf8Encoder.encode(ch).length;
      } else {
        const m = /^<0x([0-9A-Fa-f]{2})>$/.exec(tok);
        n = m ? 1 : utf8Encoder.encode(tok.replace(/^▁/, " ").replace(/▁/g, " ").replace(/^##/, "")).length;
      }
      byteCache[id] = n;
      return n;
    },
  };
}
