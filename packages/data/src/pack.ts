import { DataConfigError, EmptySourceError } from "./errors.js";
import type { SftExample } from "./records.js";
import { ByteTokenizer, type Tokenizer } from "./tokenizer.js";

/**
 * A tokenized source cut into fixed-length training sequences. `write` fills row `row` of a batch
 * (each row is `seqLen` long) with sequence `index` and returns how many positions carry loss.
 */
export interface PackedSource {
  readonly kind: "pretrain" | "sft";
  readonly seqLen: number;
  /** Number of sequences (blocks for pretraining, examples for SFT). */
  readonly numSequences: number;
  /** Tokens stored (including EOS). */
  readonly numTokens: number;
  /** Documents or examples packed. */
  readonly numDocuments: number;
  /** UTF-8 bytes of text packed (before tokenization). */
  readonly numBytes: number;
  write(index: number, inputs: Int32Array, targets: Int32Array, mask: Float32Array, row: number): number;
}

/** Growable int buffer that stays compact (Uint16 while ids fit). */
class TokenBuffer {
  private buf: Uint16Array | Int32Array;
  length = 0;
  constructor(wide: boolean, initial = 1 << 16) {
    this.buf = wide ? new Int32Array(initial) : new Uint16Array(initial);
  }
  private grow(need: number): void {
    if (this.length + need <= this.buf.length) return;
    let cap = this.buf.length * 2;
    while (cap < this.length + need) cap *= 2;
    const next = this.buf instanceof Int32Array ? new Int32Array(cap) : new Uint16Array(cap);
    next.set(this.buf.subarray(0, this.length));
    this.buf = next;
  }
  push(id: number): void {
    this.grow(1);
    this.buf[this.length++] = id;
  }
  pushAll(ids: ArrayLike<number>): void {
    this.grow(ids.length);
    if (ids instanceof Uint8Array || ids instanceof Uint16Array || ids instanceof Int32Array) this.buf.set(ids, this.length);
    else for (let i = 0; i < ids.length; i++) this.buf[this.length + i] = ids[i];
    this.length += ids.length;
  }
  finish(): Uint16Array | Int32Array {
    return this.buf.slice(0, this.length);
  }
}

const utf8 = new TextEncoder();

function encodeFast(tokenizer: Tokenizer, text: string): ArrayLike<number> {
  return tokenizer instanceof ByteTokenizer ? tokenizer.encodeBytes(text) : tokenizer.encode(text);
}

function checkSeqLen(seqLen: number): void {
  if (!Number.isInteger(seqLen) || seqLen < 1) throw new DataConfigError(`seqLen must be a positive integer, got ${seqLen}`);
}

/**
 * A {@link PackedSource} from its counts and a row filler: `write` checks the index, then
 * `fill` writes sequence `index` at offset `o` of the batch arrays and returns its loss positions.
 */
function packedSource(
  info: Omit<PackedSource, "write">,
  fill: (index: number, inputs: Int32Array, targets: Int32Array, mask: Float32Array, o: number) => number,
): PackedSource {
  const { numSequences, seqLen } = info;
  return {
    ...info,
    write(index, inputs, targets, mask, row) {
      if (!(index >= 0 && index < numSequences)) throw new RangeError(`sequence index ${index} out of range [0, ${numSequences})`);
      return fill(index, inputs, targets, mask, row * seqLen);
    },
  };
}

/** What both packers keep: the tokenizer and options, the token stream, documents and bytes read. */
abstract class Packer<O extends { seqLen: number }> {
  protected readonly tokens: TokenBuffer;
  protected docs = 0;
  protected bytes = 0;
  constructor(
    protected readonly tokenizer: Tokenizer,
    protected readonly options: O,
  ) {
    checkSeqLen(options.seqLen);
    this.tokens = new TokenBuffer(tokenizer.vocabSize > 65535);
  }
  get numDocuments(): number {
    return this.docs;
  }
}

export interface PretrainPackOptions {
  seqLen: number;
  /** Keep the final partial block, padded and masked (useful for validation). Default false. */
  keepTail?: boolean;
  /** Name used in error messages. */
  name?: string;
}

/**
 * Incremental pretraining packer: documents are tokenized, each followed by EOS, concatenated and cut
 * into blocks of seqLen+1 tokens (consecutive blocks share one token so every token is a target once).
 */
export class PretrainPacker extends Packer<PretrainPackOptions> {
  add(text: string): void {
    const ids = encodeFast(this.tokenizer, text);
    this.tokens.pushAll(ids);
    this.tokens.push(this.tokenizer.eosId);
    this.docs++;
    this.bytes += this.tokenizer instanceof ByteTokenizer ? ids.length : utf8.encode(text).length;
  }
  finish(allowEmpty = false): PackedSource {
    const tokens = this.tokens.finish();
    const T = this.options.seqLen;
    const full = tokens.length > 0 ? Math.floor((tokens.length - 1) / T) : 0;
    const tail = this.options.keepTail && tokens.length - 1 > full * T ? 1 : 0;
    const numSequences = full + tail;
    if (numSequences === 0 && !allowEmpty) {
      throw new EmptySourceError(
        `source${this.options.name ? ` '${this.options.name}'` : ""} has ${this.docs} document(s) and ${tokens.length} token(s); ` +
          `one training sequence needs at least seqLen+1 = ${T + 1} tokens. Add text or lower seqLen.`,
      );
    }
    const pad = this.tokenizer.padId ?? this.tokenizer.eosId;
    const info = { kind: "pretrain", seqLen: T, numSequences, numTokens: tokens.length, numDocuments: this.docs, numBytes: this.bytes } as const;
    return packedSource(info, (index, inputs, targets, mask, o) => {
      const start = index * T;
      const avail = Math.min(T, tokens.length - 1 - start);
      return writePretrainRow(tokens, start, avail, T, pad, inputs, targets, mask, o);
    });
  }
}

/**
 * Writes one pretraining row at offset `o`: inputs `src[from .. from+avail)`, targets shifted by
 * one, mask 1; the rest of the `T` positions padded with mask 0. Returns `avail` (the tokens with
 * loss). Shared by the in-memory packer and the token-store reader, so both give the same rows.
 */
export function writePretrainRow(
  src: ArrayLike<number>,
  from: number,
  avail: number,
  T: number,
  pad: number,
  inputs: Int32Array,
  targets: Int32Array,
  mask: Float32Array,
  o: number,
): number {
  for (let j = 0; j < avail; j++) {
    inputs[o + j] = src[from + j];
    targets[o + j] = src[from + j + 1];
    mask[o + j] = 1;
  }
  for (let j = avail; j < T; j++) {
    inputs[o + j] = pad;
    targets[o + j] = pad;
    mask[o + j] = 0;
  }
  return avail;
}

/** Packs in-memory documents for pretraining. */
export function packPretrain(documents: Iterable<string>, tokenizer: Tokenizer, options: PretrainPackOptions): PackedSource {
  const p = new PretrainPacker(tokenizer, options);
  for (const d of documents) p.add(d);
  return p.finish();
}

export interface SftPackOptions {
  seqLen: number;
  /** Mask prompt tokens out of the loss. Default true. */
  maskPrompt?: boolean;
  /** Text placed between prompt and response (part of the prompt). Default "\n". */
  separator?: string;
  /** Drop examples whose response does not fit at all after truncation. Default true. */
  dropUntrainable?: boolean;
  name?: string;
}

/**
 * Incremental SFT packer: one example per sequence (prompt + separator + response + EOS), truncated
 * to seqLen+1 tokens, padded with PAD; loss only on response and EOS (and, with maskPrompt false,
 * on prompt tokens too), never on padding, never across examples.
 */
export class SftPacker extends Packer<SftPackOptions> {
  private readonly offsets: number[] = [0];
  private readonly promptLens: number[] = [];
  /** Examples dropped because nothing of the response fitted into seqLen+1 tokens. */
  dropped = 0;
  add(example: SftExample): void {
    const sep = this.options.separator ?? "\n";
    const promptText = example.prompt + sep;
    const p = encodeFast(this.tokenizer, promptText);
    const r = encodeFast(this.tokenizer, example.response);
    this.docs++;
    // The first target is token 1, so the response is trainable iff promptLen <= seqLen.
    if ((this.options.dropUntrainable ?? true) && (this.options.maskPrompt ?? true) && p.length > this.options.seqLen) {
      this.dropped++;
      return;
    }
    const total = Math.min(p.length + r.length + 1, this.options.seqLen + 1);
    const seq = new Int32Array(p.length + r.length + 1);
    for (let i = 0; i < p.length; i++) seq[i] = p[i];
    for (let i = 0; i < r.length; i++) seq[p.length + i] = r[i];
    seq[p.length + r.length] = this.tokenizer.eosId;
    this.tokens.pushAll(seq.subarray(0, total));
    this.offsets.push(this.tokens.length);
    this.promptLens.push(p.length);
    this.bytes += utf8.encode(promptText).length + utf8.encode(example.response).length;
  }
  finish(allowEmpty = false): PackedSource {
    const tokens = this.tokens.finish();
    const offsets = Uint32Array.from(this.offsets);
    const promptLens = Uint32Array.from(this.promptLens);
    const numSequences = promptLens.length;
    const T = this.options.seqLen;
    if (numSequences === 0 && !allowEmpty) {
      throw new EmptySourceError(
        `SFT source${this.options.name ? ` '${this.options.name}'` : ""} has no usable examples ` +
          `(${this.docs} read, ${this.dropped} dropped because the prompt alone exceeds seqLen ${T}).`,
      );
    }
    const maskPrompt = this.options.maskPrompt ?? true;
    const pad = this.tokenizer.padId ?? this.tokenizer.eosId;
    const info = { kind: "sft", seqLen: T, numSequences, numTokens: tokens.length, numDocuments: this.docs, numBytes: this.bytes } as const;
    return packedSource(info, (index, inputs, targets, mask, o) => {
      const start = offsets[index];
      const len = offsets[index + 1] - start;
      const pl = promptLens[index];
      let loss = 0;
      for (let j = 0; j < T; j++) {
        const hasTarget = j + 1 < len;
        inputs[o + j] = j < len ? tokens[start + j] : pad;
        targets[o + j] = hasTarget ? tokens[start + j + 1] : pad;
        // Target j is token j+1: a prompt token iff j+1 < promptLen.
        const m = hasTarget && (!maskPrompt || j + 1 >= pl) ? 1 : 0;
        mask[o + j] = m;
        loss += m;
      }
      return loss;
    });
  }
}

/** Packs in-memory SFT examples. */
export function packSft(examples: Iterable<SftExample>, tokenizer: Tokenizer, options: SftPackOptions): PackedSource {
  const p = new SftPacker(tokenizer, options);
  for (const e of examples) p.add(e);
  return p.finish();
}

/**
 * Deterministic document-level validation split that works on a stream: document i goes to
 * validation when the seeded, evenly spaced selection lands on it, so about `fraction` of the
 * documents (at least one once i reaches 1/fraction) are held out, spread over the whole source.
 */
export function isValidationDoc(index: number, fraction: number, seed = 0): boolean {
  if (!(fraction > 0)) return false;
  if (fraction >= 1) return true;
  // Phase in [0, 1) from the seed (golden-ratio sequence, so nearby seeds differ).
  const phase = ((((seed >>> 0) * 0.6180339887498949) % 1) + 0.5) % 1;
  return Math.floor((index + 1) * fraction + phase) > Math.floor(index * fraction + phase);
}

/** Splits an in-memory array of documents with {@link isValidationDoc}. */
export function splitDocuments<T>(docs: readonly T[], fraction: number, seed = 0): { train: T[]; valid: T[] } {
  if (!(fraction >= 0 && fraction < 1)) throw new DataConfigError(`validFraction must be in [0, 1), got ${fraction}`);
  const train: T[] = [];
  const valid: T[] = [];
  docs.forEach((d, i) => {
    (isValidationDoc(i, fraction, seed) ? valid : train).push(d);
  });
  return { train, valid };
}
