import * as tf from "@tensorflow/tfjs-core";
import type { MicroBatch, TrainableModel } from "./grads.js";

/** What {@link evaluate} needs to count target bytes (a `Tokenizer` from @midtrain/data fits). */
export interface ByteCounter {
  tokenBytes(id: number): number;
}

/** Token-weighted mean cross-entropy over a validation set. */
export interface EvalResult {
  /** Mean masked cross-entropy (nats per loss token); NaN when no token carries loss. */
  loss: number;
  /** Sum of the per-token losses (nats). */
  lossSum: number;
  /** Positions that carry loss. */
  tokens: number;
  sequences: number;
  /** UTF-8 bytes of the counted targets (only with a tokenizer). */
  bytes?: number;
  /** lossSum / (ln 2 · bytes) (only with a tokenizer). */
  bitsPerByte?: number;
}

export interface EvaluateOptions {
  /** Counts target bytes, for bits per byte. */
  tokenizer?: ByteCounter;
}

/**
 * Mean masked cross-entropy over every sequence of `batches`, weighted by loss tokens (not
 * a mean of batch means). Every read is awaited.
 */
export async function evaluate(
  model: TrainableModel,
  batches: Iterable<MicroBatch>,
  options: EvaluateOptions = {},
): Promise<EvalResult> {
  let lossSum = 0;
  let tokens = 0;
  let sequences = 0;
  let bytes = 0;
  for (const b of batches) {
    const shape: [number, number] = [b.batchSize, b.seqLen];
    const sum = tf.tidy(() => {
      const ids = tf.tensor2d(b.inputs, shape, "int32");
      const targets = tf.tensor2d(b.targets, shape, "int32");
      const mask = tf.tensor2d(b.mask, shape, "float32");
      return tf.sum(tf.mul(model.perTokenLoss(ids, targets), mask));
    });
    try {
      lossSum += (await sum.data())[0];
    } finally {
      sum.dispose();
    }
    for (let i = 0; i < b.mask.length; i++) {
      if (b.mask[i] > 0) {
        tokens += b.mask[i];
        if (options.tokenizer) bytes += options.tokenizer.tokenBytes(b.targets[i]);
      }
    }
    sequences += b.batchSize;
  }
  const out: EvalResult = { loss: tokens > 0 ? lossSum / tokens : Number.NaN, lossSum, tokens, sequences };
  if (options.tokenizer) {
    out.bytes = bytes;
    out.bitsPerByte = bytes > 0 ? lossSum / (Math.LN2 * bytes) : Number.NaN;
  }
  return out;
}
