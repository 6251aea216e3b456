import { LossAccumulator } from "@midtrain/metrics";
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
 * a mean of batch means). Every read is awaited. The sums, the mean and bits per byte are
 * @midtrain/metrics' `LossAccumulator`; a diverged model (a NaN or infinite batch sum) gives
 * a NaN or infinite loss instead of an error, so a training run can log it and go on.
 */
export async function evaluate(model: TrainableModel, batches: Iterable<MicroBatch>, options: EvaluateOptions = {}): Promise<EvalResult> {
  const acc = new LossAccumulator();
  let nonFinite = 0;
  let sequences = 0;
  for (const b of batches) {
    const shape: [number, number] = [b.batchSize, b.seqLen];
    const sum = tf.tidy(() => {
      const ids = tf.tensor2d(b.inputs, shape, "int32");
      const targets = tf.tensor2d(b.targets, shape, "int32");
      const mask = tf.tensor2d(b.mask, shape, "float32");
      return tf.sum(tf.mul(model.perTokenLoss(ids, targets), mask));
    });
    let batchSum: number;
    try {
      batchSum = (await sum.data())[0];
    } finally {
      sum.dispose();
    }
    let tokens = 0;
    let bytes = 0;
    for (let i = 0; i < b.mask.length; i++) {
      if (b.mask[i] > 0) {
        tokens += b.mask[i];
        if (options.tokenizer) bytes += options.tokenizer.tokenBytes(b.targets[i]);
      }
    }
    if (Number.isFinite(batchSum)) acc.addSums(batchSum, tokens, bytes);
    else {
      nonFinite += batchSum;
      acc.addSums(0, tokens, bytes);
    }
    sequences += b.batchSize;
  }
  const { sumNats, tokens, bytes } = acc.toJSON();
  const lossSum = sumNats + nonFinite;
  // The summary needs a finite sum and at least one token; otherwise the loss is that NaN/±Infinity (or NaN for no tokens).
  const summary = tokens > 0 && Number.isFinite(lossSum) ? acc.result() : undefined;
  const out: EvalResult = { loss: summary?.meanNats ?? (tokens > 0 ? lossSum : Number.NaN), lossSum, tokens, sequences };
  if (options.tokenizer) {
    out.bytes = bytes;
    out.bitsPerByte = summary?.bitsPerByte ?? (bytes > 0 ? lossSum : Number.NaN);
  }
  return out;
}
