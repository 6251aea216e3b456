import { CompensatedSum, EmptyInputError, InvalidArgumentError, LengthMismatchError, NonFiniteError, assertFinite } from "./errors.js";

/** Aggregate loss over a validation set. All cross-entropies are in nats (natural log). */
export interface LossSummary {
  /** Sum of per-token cross-entropy over counted tokens, in nats. */
  sumNats: number;
  /** Number of counted (mask-weighted) target tokens. */
  tokens: number;
  /** Mean cross-entropy per token, in nats: `sumNats / tokens`. */
  meanNats: number;
  /** `exp(meanNats)`. */
  perplexity: number;
  /** Mean cross-entropy per token in bits: `meanNats / ln 2`. */
  bitsPerToken: number;
  /** Total UTF-8 bytes of the target text, when known. */
  bytes?: number;
  /** Tokenizer-independent loss: `sumNats / (ln 2 · bytes)`, present when `bytes` is. */
  bitsPerByte?: number;
}

/** `exp(meanNats)`. Throws on a non-finite input. */
export function perplexity(meanNats: number): number {
  assertFinite(meanNats, "meanNats");
  return Math.exp(meanNats);
}

/** Converts a per-token cross-entropy in nats to bits: `meanNats / ln 2`. */
export function bitsPerToken(meanNats: number): number {
  assertFinite(meanNats, "meanNats");
  return meanNats / Math.LN2;
}

/**
 * Bits per byte: `sumNats / (ln 2 · bytes)`, where `sumNats` is the summed cross-entropy over
 * all target tokens and `bytes` the UTF-8 byte length of the same target text.
 */
export function bitsPerByte(sumNats: number, bytes: number): number {
  assertFinite(sumNats, "sumNats");
  assertFinite(bytes, "bytes");
  if (bytes <= 0) {
    throw new InvalidArgumentError(`bytes must be > 0 to compute bits per byte, got ${bytes}`);
  }
  return sumNats / (Math.LN2 * bytes);
}

/** Builds a {@link LossSummary} from a loss sum and a token count (and optionally bytes). */
export function lossSummary(input: { sumNats: number; tokens: number; bytes?: number }): LossSummary {
  const { sumNats, tokens, bytes } = input;
  assertFinite(sumNats, "sumNats");
  assertFinite(tokens, "tokens");
  if (tokens < 0) throw new InvalidArgumentError(`tokens must be >= 0, got ${tokens}`);
  if (tokens === 0) {
    throw new EmptyInputError("no tokens were counted (tokens = 0); the mask selects nothing or no batch was added — check the loss mask");
  }
  const meanNats = sumNats / tokens;
  const out: LossSummary = {
    sumNats,
    tokens,
    meanNats,
    perplexity: Math.exp(meanNats),
    bitsPerToken: meanNats / Math.LN2,
  };
  if (bytes !== undefined) {
    out.bytes = bytes;
    out.bitsPerByte = bitsPerByte(sumNats, bytes);
  }
  return out;
}

function sumMasked(losses: ArrayLike<number>, mask?: ArrayLike<number>): { sumNats: number; tokens: number } {
  if (mask !== undefined && mask.length !== losses.length) {
    throw new LengthMismatchError(`losses has ${losses.length} entries but mask has ${mask.length}; pass one mask value per token position`);
  }
  const sum = new CompensatedSum();
  let tokens = 0;
  for (let i = 0; i < losses.length; i++) {
    const w = mask === undefined ? 1 : mask[i];
    if (!Number.isFinite(w) || w < 0) {
      throw new InvalidArgumentError(`mask[${i}] is ${w}; mask entries must be finite and >= 0 (usually 0 or 1)`);
    }
    if (w === 0) continue; // masked positions may hold anything (padding), they are never read
    const l = losses[i];
    if (!Number.isFinite(l)) {
      throw new NonFiniteError(`losses[${i}] is ${l} at an unmasked position; the model diverged or the loss is wrong`);
    }
    sum.add(w * l);
    tokens += w;
  }
  return { sumNats: sum.value, tokens };
}

/**
 * Mean cross-entropy in nats over the positions where `mask` is nonzero (all positions when
 * no mask is given). Mask entries act as weights; the usual values are 0 and 1.
 */
export function meanCrossEntropy(losses: ArrayLike<number>, mask?: ArrayLike<number>): number {
  return lossSummary(sumMasked(losses, mask)).meanNats;
}

/** Serializable state of a {@link LossAccumulator}. */
export interface LossAccumulatorState {
  sumNats: number;
  tokens: number;
  bytes: number;
}

/**
 * Streaming loss aggregation: add per-token losses batch by batch (or pre-summed batches),
 * merge accumulators from parallel workers, then read the {@link LossSummary}.
 *
 * ```ts
 * const acc = new LossAccumulator();
 * acc.add([2.1, 1.9, 0], [1, 1, 0]).addBytes(9);
 * acc.result(); // { meanNats: 2, perplexity: 7.389..., bitsPerByte: 0.641..., ... }
 * ```
 */
export class LossAccumulator {
  private readonly sum = new CompensatedSum();
  private tokenCount = 0;
  private byteCount = 0;

  /** Adds per-token losses (nats); `mask` (same length) selects/weights the counted tokens. */
  add(losses: ArrayLike<number>, mask?: ArrayLike<number>): this {
    const { sumNats, tokens } = sumMasked(losses, mask);
    this.sum.add(sumNats);
    this.tokenCount += tokens;
    return this;
  }

  /** Adds a pre-reduced batch: the summed loss in nats over `tokens` counted tokens. */
  addSums(sumNats: number, tokens: number, bytes?: number): this {
    assertFinite(sumNats, "sumNats");
    assertFinite(tokens, "tokens");
    if (tokens < 0) throw new InvalidArgumentError(`tokens must be >= 0, got ${tokens}`);
    this.sum.add(sumNats);
    this.tokenCount += tokens;
    if (bytes !== undefined) this.addBytes(bytes);
    return this;
  }

  /** Adds UTF-8 bytes of target text, enabling bits per byte in {@link result}. */
  addBytes(bytes: number): this {
    assertFinite(bytes, "bytes");
    if (bytes < 0) throw new InvalidArgumentError(`bytes must be >= 0, got ${bytes}`);
    this.byteCount += bytes;
    return this;
  }

  /** Adds everything `other` has seen into this accumulator (other is unchanged). */
  merge(other: LossAccumulator): this {
    const s = other.toJSON();
    this.sum.add(s.sumNats);
    this.tokenCount += s.tokens;
    this.byteCount += s.bytes;
    return this;
  }

  /** Counted tokens so far. */
  get tokens(): number {
    return this.tokenCount;
  }

  /** The summary; throws {@link EmptyInputError} when no token has been counted. */
  result(): LossSummary {
    return lossSummary({
      sumNats: this.sum.value,
      tokens: this.tokenCount,
      bytes: this.byteCount > 0 ? this.byteCount : undefined,
    });
  }

  toJSON(): LossAccumulatorState {
    return { sumNats: this.sum.value, tokens: this.tokenCount, bytes: this.byteCount };
  }

  static fromJSON(state: LossAccumulatorState): LossAccumulator {
    const acc = new LossAccumulator();
    acc.addSums(state.sumNats, state.tokens);
    acc.addBytes(state.bytes);
    return acc;
  }
}

const encoder = new TextEncoder();

/** UTF-8 byte length of `text`, the denominator of bits per byte. */
export function utf8ByteLength(text: string): number {
  return encoder.encode(text).length;
}

/**
 * One {@link LossAccumulator} per validation set (e.g. `general`, `code`), created on first use.
 *
 * ```ts
 * const evals = new LossBySet();
 * evals.add("general", losses, mask).addBytes("general", 1234);
 * evals.result(); // { general: LossSummary, ... }
 * ```
 */
export class LossBySet {
  private readonly sets = new Map<string, LossAccumulator>();

  /** The accumulator of `set`, created empty if missing. */
  get(set: string): LossAccumulator {
    let acc = this.sets.get(set);
    if (!acc) {
      acc = new LossAccumulator();
      this.sets.set(set, acc);
    }
    return acc;
  }

  add(set: string, losses: ArrayLike<number>, mask?: ArrayLike<number>): this {
    this.get(set).add(losses, mask);
    return this;
  }

  addSums(set: string, sumNats: number, tokens: number, bytes?: number): this {
    this.get(set).addSums(sumNats, tokens, bytes);
    return this;
  }

  addBytes(set: string, bytes: number): this {
    this.get(set).addBytes(bytes);
    return this;
  }

  /** Merges every set of `other` into this one. */
  merge(other: LossBySet): this {
    for (const [name, acc] of other.sets) this.get(name).merge(acc);
    return this;
  }

  /** Names of the sets seen so far, in first-use order. */
  names(): string[] {
    return [...this.sets.keys()];
  }

  /** Summary per set; throws {@link EmptyInputError} naming the set that counted no tokens. */
  result(): Record<string, LossSummary> {
    const out: Record<string, LossSummary> = {};
    for (const [name, acc] of this.sets) {
      try {
        out[name] = acc.result();
      } catch (e) {
        if (e instanceof Error) e.message = `validation set '${name}': ${e.message}`;
        throw e;
      }
    }
    return out;
  }

  /** Mean cross-entropy (nats) per set: `{ general: 4.93, code: 2.21 }`. */
  meanNats(): Record<string, number> {
    return Object.fromEntries(Object.entries(this.result()).map(([k, v]) => [k, v.meanNats]));
  }
}
