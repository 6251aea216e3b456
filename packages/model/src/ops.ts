/**
 * Ops with hand-written gradients. tfjs's own gradients for `gather` go through
 * `UnsortedSegmentSum`, which the cpu backend runs as one kernel launch per segment (per
 * vocabulary row, or per logit for a flat gather) and wasm lacks; these use `scatterND`,
 * which sums duplicate indices on cpu, wasm and webgpu.
 */
import { FUSED_KERNELS } from "@midtrain/common";
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
 * Whether the active backend has a fused kernel pair (forward, gradient) for float32 `x`. The
 * kernels are looked up by their names from @midtrain/common, so this package needs no import
 * of @midtrain/backend, which registers them.
 */
export function hasFusedKernels(x: tf.Tensor, forward: string, grad: string): boolean {
  const backend = tf.getBackend();
  return x.dtype === "float32" && tf.getKernel(forward, backend) !== undefined && tf.getKernel(grad, backend) !== undefined;
}

/**
 * Per-row cross-entropy through the fused kernels: one pass forward, one for the gradient, no
 * [N, V] log-probabilities kept. `undefined` when the active backend does not have them.
 */
export function fusedCrossEntropyPerRow(logits: tf.Tensor2D, targets: tf.Tensor1D): tf.Tensor1D | undefined {
  if (targets.dtype !== "int32" || !hasFusedKernels(logits, FUSED_KERNELS.xent, FUSED_KERNELS.xentGrad)) return undefined;
  const f = tf.customGrad((...args: Array<tf.Tensor | tf.GradSaveFunc>) => {
    const [z, save] = args as [tf.Tensor2D, tf.GradSaveFunc];
    const [nll, lse] = tf.engine().runKernel(FUSED_KERNELS.xent, { logits: z, targets }) as unknown as [tf.Tensor1D, tf.Tensor1D];
    save([z, targets, lse]);
    return {
      value: nll,
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => {
        const [zs, ts, l] = saved;
        const dy32 = dy.dtype === "float32" ? dy : tf.cast(dy, "float32");
        return [tf.engine().runKernel(FUSED_KERNELS.xentGrad, { logits: zs, targets: ts, lse: l, dy: dy32 }) as tf.Tensor];
      },
    };
  });
  return f(logits) as tf.Tensor1D;
}

/**
 * Negative log-likelihood of `targets` ([N] int32) under `logits` ([N, V]): logSoftmax and a
 * gather of one value per row — no one-hot tensor. Gradient: softmax * dy minus dy scattered
 * at the targets. Uses the fused kernels (above) when the active backend has them.
 */
export function crossEntropyPerRow(logits: tf.Tensor2D, targets: tf.Tensor1D): tf.Tensor1D {
  // wasm with @midtrain/native-blas: one fused pass each way (no [N, V] log-probabilities kept).
  const fused = fusedCrossEntropyPerRow(logits, targets);
  if (fused) return fused;
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

/**
 * `x @ m` for a constant square matrix `m` ([k, k]) applied to rows of `x` ([n, k]); the
 * gradient is only `dy @ mT` (no gradient for the constant). Used for the rotary pairing:
 * a per-head permutation as a tiny matmul, which is much faster on wasm than a gather along
 * the last axis.
 */
export function constMatMul(x: tf.Tensor2D, m: tf.Tensor2D, mT: tf.Tensor2D): tf.Tensor2D {
  const f = tf.customGrad((...args: Array<tf.Tensor | tf.GradSaveFunc>) => {
    const [t, save] = args as [tf.Tensor2D, tf.GradSaveFunc];
    save([mT]);
    return {
      value: tf.matMul(t, m),
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => [tf.matMul(dy as tf.Tensor2D, saved[0] as tf.Tensor2D)],
    };
  });
  return f(x) as tf.Tensor2D;
}

/** Column sums of a 2-D tensor as a [1, n] @ [n, k] matmul (reductions over rows are slow on wasm). */
function sumRows(t: tf.Tensor): tf.Tensor1D {
  const [n, k] = t.shape as [number, number];
  return tf.reshape(tf.matMul(tf.ones([1, n]), t as tf.Tensor2D), [k]);
}

/** `x + b` for x [n, k] and b [k], with the bias gradient as a matmul. */
export function addBias(x: tf.Tensor2D, b: tf.Tensor1D): tf.Tensor2D {
  const f = tf.customGrad((...args: Array<tf.Tensor | tf.GradSaveFunc>) => {
    const [xt, bt] = args as [tf.Tensor2D, tf.Tensor1D];
    return {
      value: tf.add(xt, bt),
      gradFunc: (dy: tf.Tensor) => [dy, sumRows(dy)],
    };
  });
  return f(x, b) as tf.Tensor2D;
}

/** `n * w + b` (LayerNorm's affine part) for n [rows, k], w and b [k]; parameter gradients as matmuls. */
export function affine(n: tf.Tensor2D, w: tf.Tensor1D, b: tf.Tensor1D): tf.Tensor2D {
  const f = tf.customGrad((...args: Array<tf.Tensor | tf.GradSaveFunc>) => {
    const [nt, wt, bt, save] = args as [tf.Tensor2D, tf.Tensor1D, tf.Tensor1D, tf.GradSaveFunc];
    save([nt, wt]);
    return {
      value: tf.add(tf.mul(nt, wt), bt),
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => {
        const [ns, ws] = saved;
        return [tf.mul(dy, ws), sumRows(tf.mul(dy, ns)), sumRows(dy)];
      },
    };
  });
  return f(n, w, b) as tf.Tensor2D;
}
