/**
 * Ops with hand-written gradients. tfjs's own gradients for `gather` go through
 * `UnsortedSegmentSum`, which the cpu backend runs as one kernel launch per segment (per
 * vocabulary row, or per logit for a flat gather) and wasm lacks; these use `scatterND`,
 * which sums duplicate indices on cpu, wasm and webgpu.
 */
import * as tf from "@tensorflow/tfjs-core";

/** Rows `ids` of `table` ([V, d] -> [N, d]); the gradient scatters-adds into [V, d]. */
export function embeddingLookup(table: tf.Tensor2D, ids: tf.Tensor1D): tf.Tensor2D {
  const f = tf.customGrad((...args: Array<tf.Tensor | tf.GradSaveFunc>) => {
    const [t, save] = args as [tf.Tensor, tf.GradSaveFunc];
    const idx = tf.reshape(ids, [-1, 1]);
    save([idx]);
    return {
      value: tf.gather(t, ids),
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => [tf.scatterND(saved[0], dy, t.shape)],
    };
  });
  return f(table) as tf.Tensor2D;
}

/**
 * Negative log-likelihood of `targets` ([N] int32) under `logits` ([N, V]): logSoftmax and a
 * gather of one value per row — no one-hot tensor. Gradient: softmax * dy minus dy scattered
 * at the targets.
 */
export function crossEntropyPerRow(logits: tf.Tensor2D, targets: tf.Tensor1D): tf.Tensor1D {
  const [N, V] = logits.shape;
  const f = tf.customGrad((...args: Array<tf.Tensor | tf.GradSaveFunc>) => {
    const [z, save] = args as [tf.Tensor, tf.GradSaveFunc];
    const logp = tf.logSoftmax(z, -1);
    const flatIdx = tf.add(tf.mul(tf.range(0, N, 1, "int32"), tf.scalar(V, "int32")), targets);
    const flatIdxCol = tf.reshape(flatIdx, [N, 1]);
    save([logp, flatIdxCol]);
    return {
      value: tf.neg(tf.gather(tf.reshape(logp, [N * V]), flatIdx)),
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => {
        const [lp, idx] = saved;
        const soft = tf.mul(tf.exp(lp), tf.reshape(dy, [N, 1]));
        const picked = tf.reshape(tf.scatterND(idx, dy, [N * V]), [N, V]);
        return [tf.sub(soft, picked)];
      },
    };
  });
  return f(logits) as tf.Tensor1D;
}
