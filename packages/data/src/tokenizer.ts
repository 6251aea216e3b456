import { TokenizerLoader } from "@lenml/tokenizers";
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

export interface HfTokenizerOptions {
  /** Contents of tokenizer_config.json (optional; used for eos/pad names). */
  tokenizerConfig?: Record<string, unknown>;
  /** Name reported by `tokenizer.name`. */
  name?: string;
  /** EOS token string; default: config's eos_token, else the first of <|endoftext|>, </s>, <eos>. */
  eosToken?: string;
  /** PAD token string; default: config's pad_token when it is in the vocabulary. */
  padToken?: string;
}

function tokenName(v: unknown): string | undefined {
  if (typeof v === "string") return v;
  if (v && typeof v === "object" && typeof (v as { content?: unknown }).content === "string") return (v as { content: string }).content;
  return undefined;
}

/**
 * Wraps any Hugging Face `tokenizer.json` (parsed JSON object or its text), e.g. GPT-2 or
 * GPT-NeoX/Pythia, through @lenml/tokenizers. Special tokens are never added by `encode`; the
 * packer appends EOS itself.
 */
export function loadHfTokenizer(tokenizerJson: string | Record<string, unknown>, options: HfTokenizerOptions = {}): Tokenizer {
  let json: Record<string, any>;
  try {
    json = typeof tokenizerJson === "string" ? JSON.parse(tokenizerJson) : tokenizerJson;
  } catch (e) {
    throw new DataConfigError(`tokenizer.json is not valid JSON: ${(e as Error).message}`);
  }
  if (!json || typeof json !== "object" || !json.model || typeof json.model !== "object") {
    throw new DataConfigError("not a Hugging Face tokenizer.json: expected an object with a 'model' field");
  }
  const config: Record<string, unknown> = { ...(options.tokenizerConfig ?? {}) };
  const vocab: Record<string, number> = (json.model.vocab ?? {}) as Record<string, number>;
  const added: { id: number; content: string; special?: boolean }[] = Array.isArray(json.added_tokens) ? json.added_tokens : [];
  const idOf = (tok: string): number | undefined => {
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

  const name = options.name ?? (typeof config.name_or_path === "string" ? config.name_or_path : "hf");
  return {
    name,
    vocabSize,
    eosId,
    padId,
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
