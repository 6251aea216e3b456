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
  const f = tf.customGrad((...args: Array<tf.Tensor | tf.GradSaveFunc>) => {
    const [z, save] = args as [tf.Tensor2D, tf.GradSaveFunc];
    const { logp, nll, idxCol } = xentRows(z, targets);
    save([logp, idxCol]);
    return {
      value: nll,
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => xentRowsGrad(saved[0] as tf.Tensor2D, saved[1], dy),
    };
  });
  return f(logits) as tf.Tensor1D;
}

/**
 * Tensor-op cross-entropy of one block of rows: log-probabilities, the NLL of each target
 * (a gather from the flat log-probabilities, no one-hot) and the flat target indices as a
 * column for the gradient's scatter.
 */
function xentRows(z: tf.Tensor2D, targets: tf.Tensor1D): { logp: tf.Tensor2D; nll: tf.Tensor1D; idxCol: tf.Tensor2D } {
  const [N, V] = z.shape;
  const logp = tf.logSoftmax(z, -1);
  const flatIdx = flatTargets(N, V, targets);
  const nll = tf.neg(tf.gather(tf.reshape(logp, [N * V]), flatIdx)) as tf.Tensor1D;
  return { logp, nll, idxCol: tf.reshape(flatIdx, [N, 1]) };
}

/** d(Σ dy·nll)/dz from the rows' log-probabilities: softmax·dy minus dy scattered at the targets. */
function xentRowsGrad(logp: tf.Tensor2D, idxCol: tf.Tensor, dy: tf.Tensor): tf.Tensor2D {
  const [N, V] = logp.shape;
  const soft = tf.mul(tf.exp(logp), tf.reshape(dy, [N, 1]));
  const picked = tf.reshape(tf.scatterND(idxCol, dy, [N * V]), [N, V]);
  return tf.sub(soft, picked);
}

/** Flat indices row·V + target of a block of rows. */
function flatTargets(N: number, V: number, targets: tf.Tensor1D): tf.Tensor1D {
  return tf.add(tf.mul(tf.range(0, N, 1, "int32"), tf.scalar(V, "int32")), targets) as tf.Tensor1D;
}

/**
 * NLL and log-sum-exp of each row of one chunk of logits, with at most three [n, V] tensors
 * alive at once (intermediates are freed as soon as they are used): lse = max + log Σ exp(z − max),
 * nll = lse − z[target].
 */
function chunkNllLse(z: tf.Tensor2D, targets: tf.Tensor1D): [tf.Tensor1D, tf.Tensor1D] {
  const [N, V] = z.shape;
  const m = tf.max(z, 1, true);
  const shifted = tf.sub(z, m);
  const e = tf.exp(shifted);
  shifted.dispose();
  const s = tf.sum(e, 1, true);
  e.dispose();
  const lse = tf.reshape(tf.add(m, tf.log(s)), [N]) as tf.Tensor1D;
  const picked = tf.gather(tf.reshape(z, [N * V]), flatTargets(N, V, targets));
  return [tf.sub(lse, picked) as tf.Tensor1D, lse];
}

/**
 * d(Σ dy·nll)/dz for one chunk from its logits and log-sum-exp: exp(z − lse)·dy minus dy
 * scattered at the targets; frees z and each intermediate as soon as it is used (at most
 * three [n, V] tensors alive at once).
 */
function chunkXentGrad(z: tf.Tensor2D, targets: tf.Tensor1D, lse: tf.Tensor1D, dy: tf.Tensor1D): tf.Tensor2D {
  const [N, V] = z.shape;
  const shifted = tf.sub(z, tf.reshape(lse, [N, 1]));
  z.dispose();
  const p = tf.exp(shifted);
  shifted.dispose();
  const soft = tf.mul(p, tf.reshape(dy, [N, 1]));
  p.dispose();
  const picked = tf.reshape(tf.scatterND(tf.reshape(flatTargets(N, V, targets), [N, 1]), dy, [N * V]), [N, V]);
  const dz = tf.sub(soft, picked) as tf.Tensor2D;
  soft.dispose();
  picked.dispose();
  return dz;
}

/**
 * Fused output projection + cross-entropy: the NLL of `targets` ([N] int32) under the logits
 * `h @ w` (h [N, d], w [d, V]), computed `chunkRows` rows at a time so that no [N, V] tensor
 * ever exists. Only h, w, the targets (and, with the fused kernels, one log-sum-exp per row)
 * are kept for the backward pass, which recomputes each chunk's logits and accumulates
 * dh = dz @ wᵀ and dw = Σ h_chunkᵀ @ dz. Memory: O(chunkRows × V) besides h and w.
 *
 * Gives the values of `crossEntropyPerRow(h @ w, targets)` up to fp32 rounding, and the
 * gradient for any upstream dy ([N]), so masks and loss weights applied to the result keep
 * their meaning. Working set of one chunk: at most three [chunkRows, V] float32 tensors
 * (two with the fused kernels), plus the running dw [d, V] and its next value. Uses the fused softmax-xent kernels (FUSED_KERNELS.xent / .xentGrad) per
 * chunk when the active backend has them.
 */
export function linearCrossEntropyPerRow(h: tf.Tensor2D, w: tf.Tensor2D, targets: tf.Tensor1D, chunkRows: number): tf.Tensor1D {
  const [N, d] = h.shape;
  if (w.shape[0] !== d) throw new Error(`internal: linearCrossEntropyPerRow h [${h.shape}] vs w [${w.shape}]`);
  if (!Number.isInteger(chunkRows) || chunkRows < 1) throw new Error(`internal: chunkRows must be a positive integer, got ${chunkRows}`);
  const C = Math.min(chunkRows, N);
  const chunks: Array<[number, number]> = [];
  for (let r = 0; r < N; r += C) chunks.push([r, Math.min(C, N - r)]);
  const fused = targets.dtype === "int32" && hasFusedKernels(h, FUSED_KERNELS.xent, FUSED_KERNELS.xentGrad);
  const rows = <T extends tf.Tensor>(t: T, r0: number, n: number): T =>
    (chunks.length === 1 ? t : t.rank === 1 ? tf.slice(t, [r0], [n]) : tf.slice(t, [r0, 0], [n, t.shape[1] as number])) as T;
  const f = tf.customGrad((...args: Array<tf.Tensor | tf.GradSaveFunc>) => {
    const [ht, wt, save] = args as [tf.Tensor2D, tf.Tensor2D, tf.GradSaveFunc];
    const nlls: tf.Tensor1D[] = [];
    const lses: tf.Tensor1D[] = [];
    for (const [r0, n] of chunks) {
      // One chunk's logits live only inside this tidy.
      const [nll, lse] = tf.tidy(() => {
        const z = tf.matMul(rows(ht, r0, n), wt) as tf.Tensor2D;
        const t = rows(targets, r0, n);
        if (fused) return tf.engine().runKernel(FUSED_KERNELS.xent, { logits: z, targets: t }) as unknown as tf.Tensor1D[];
        return chunkNllLse(z, t);
      });
      nlls.push(nll);
      lses.push(lse);
    }
    const nll = nlls.length === 1 ? nlls[0] : (tf.concat(nlls) as tf.Tensor1D);
    const lse = lses.length === 1 ? lses[0] : tf.concat(lses);
    save([ht, wt, targets, lse]);
    return {
      value: nll,
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => {
        const [hs, ws, ts, ls] = saved as [tf.Tensor2D, tf.Tensor2D, tf.Tensor1D, tf.Tensor1D];
        const dy32 = dy.dtype === "float32" ? dy : tf.cast(dy, "float32");
        const dhs: tf.Tensor[] = [];
        let dw: tf.Tensor | undefined;
        for (const [r0, n] of chunks) {
          const prev = dw;
          const [dh, next] = tf.tidy(() => {
            const hc = rows(hs, r0, n);
            const z = tf.matMul(hc, ws) as tf.Tensor2D;
            const t = rows(ts, r0, n);
            const g = rows(dy32 as tf.Tensor1D, r0, n);
            const l = rows(ls, r0, n);
            const dz = fused
              ? (tf.engine().runKernel(FUSED_KERNELS.xentGrad, { logits: z, targets: t, lse: l, dy: g }) as tf.Tensor2D)
              : chunkXentGrad(z, t, l, g);
            if (fused) z.dispose();
            const dwc = tf.matMul(hc, dz, true, false);
            return [tf.matMul(dz, ws, false, true), prev ? tf.add(prev, dwc) : dwc];
          });
          prev?.dispose();
          dw = next;
          dhs.push(dh);
        }
        const dh = dhs.length === 1 ? dhs[0] : tf.concat(dhs);
        if (dhs.length > 1) tf.dispose(dhs);
        return [dh, dw as tf.Tensor];
      },
    };
  });
  return f(h, w) as tf.Tensor1D;
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
