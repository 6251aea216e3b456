import * as tf from "@tensorflow/tfjs-core";
import { TrainerConfigError } from "./errors.js";

/** What the trainer needs from a model (`GPTNeoXModel` from @midtrain/model satisfies it). */
export interface TrainableModel {
  readonly params: Map<string, tf.Variable>;
  readonly config: { seqLen: number };
  loss(ids: tf.Tensor2D, targets: tf.Tensor2D, mask?: tf.Tensor2D): tf.Scalar;
  perTokenLoss(ids: tf.Tensor2D, targets: tf.Tensor2D): tf.Tensor2D;
}

/** A batch of B rows of T tokens, row-major (a `Batch` from @midtrain/data fits). */
export interface MicroBatch {
  batchSize: number;
  seqLen: number;
  inputs: Int32Array;
  targets: Int32Array;
  mask: Float32Array;
}

/** Loss and gradients by parameter name; the caller disposes them (see {@link disposeGradients}). */
export interface Gradients {
  /** Masked mean cross-entropy over all micro-batches together. */
  loss: tf.Scalar;
  grads: Map<string, tf.Tensor>;
  /** Positions that carry loss (sum of the masks). */
  lossTokens: number;
  /**
   * With `perRow: true`: the masked loss sum of every row of every micro-batch, in order
   * ([total rows]); the caller disposes it.
   */
  rowLossSums?: tf.Tensor1D;
}

export interface ComputeGradientsOptions {
  /** Also return each row's masked loss sum (for per-source losses). */
  perRow?: boolean;
}

function maskSum(mask: Float32Array): number {
  let s = 0;
  for (let i = 0; i < mask.length; i++) s += mask[i];
  return s;
}

/**
 * Gradients of the masked mean loss over the union of `micro` batches, accumulated one
 * micro-batch at a time: micro-batch i's loss is weighted by its share of the loss tokens,
 * so accumulating 2 × B/2 rows gives the gradient of one batch of B rows.
 */
export function computeGradients(model: TrainableModel, micro: readonly MicroBatch[], options: ComputeGradientsOptions = {}): Gradients {
  const run = microBatchRunner(model, micro, options);
  const acc = new Map<string, tf.Tensor>();
  let loss: tf.Scalar | undefined;
  try {
    for (let i = 0; i < micro.length; i++) {
      const { value, grads } = run.step(i);
      for (const [name, g] of grads) {
        const prev = acc.get(name);
        if (prev) {
          acc.set(name, tf.add(prev, g));
          prev.dispose();
          g.dispose();
        } else acc.set(name, g);
      }
      loss = run.addLoss(loss, value);
    }
  } catch (e) {
    loss?.dispose();
    disposeGradients(acc);
    run.disposeRows();
    throw e;
  }
  return { loss: loss!, grads: acc, lossTokens: run.total, ...run.rowSums() };
}

/** {@link computeGradients} with the accumulated gradients in host memory (see {@link computeGradientsOnHost}). */
export interface HostGradients {
  /** Masked mean cross-entropy over all micro-batches together (a device scalar; dispose it). */
  loss: tf.Scalar;
  /** Accumulated gradients by parameter name, in the layout of the variables. */
  grads: Map<string, Float32Array>;
  lossTokens: number;
  rowLossSums?: tf.Tensor1D;
}

/**
 * {@link computeGradients} with the accumulator in host memory (gradient offload): after each
 * micro-batch's backward pass every gradient is read into a Float32Array and freed on the
 * device, so the device never holds more than one micro-batch's gradients (no second set while
 * accumulating). Accumulation is float32 addition in the same order as on the device
 * (`acc + g` per micro-batch), so the result is bitwise the device accumulator's. Awaits every
 * read; the caller disposes `loss` and `rowLossSums` (see {@link disposeGradients}).
 */
export async function computeGradientsOnHost(
  model: TrainableModel,
  micro: readonly MicroBatch[],
  options: ComputeGradientsOptions = {},
): Promise<HostGradients> {
  const run = microBatchRunner(model, micro, options);
  const acc = new Map<string, Float32Array>();
  let loss: tf.Scalar | undefined;
  try {
    for (let i = 0; i < micro.length; i++) {
      const { value, grads } = run.step(i);
      loss = run.addLoss(loss, value);
      try {
        for (let k = 0; k < grads.length; k++) {
          const [name, g] = grads[k];
          const data = (await g.data()) as Float32Array;
          const prev = acc.get(name);
          if (prev) {
            for (let j = 0; j < prev.length; j++) prev[j] = Math.fround(prev[j] + data[j]);
          } else {
            const a = new Float32Array(data.length);
            a.set(data);
            acc.set(name, a);
          }
          g.dispose();
        }
      } finally {
        for (const [, g] of grads) if (!g.isDisposed) g.dispose();
      }
    }
  } catch (e) {
    loss?.dispose();
    run.disposeRows();
    throw e;
  }
  return { loss: loss!, grads: acc, lossTokens: run.total, ...run.rowSums() };
}

/** The per-micro-batch part shared by the device and host accumulators. */
function microBatchRunner(model: TrainableModel, micro: readonly MicroBatch[], options: ComputeGradientsOptions) {
  if (micro.length === 0) throw new TrainerConfigError("computeGradients needs at least one micro-batch");
  const counts = micro.map((b) => maskSum(b.mask));
  const total = counts.reduce((a, b) => a + b, 0);
  const names = [...model.params.keys()];
  const vars = names.map((n) => model.params.get(n)!);
  const byVarName = new Map(vars.map((v, i) => [v.name, names[i]]));
  const rows: tf.Tensor1D[] = [];
  return {
    total,
    /** Micro-batch i's weighted loss and its gradients by parameter name (the caller owns them). */
    step(i: number): { value: tf.Scalar; grads: Array<[string, tf.Tensor]> } {
      const b = micro[i];
      const w = total > 0 ? counts[i] / total : 1 / micro.length;
      const shape: [number, number] = [b.batchSize, b.seqLen];
      const ids = tf.tensor2d(b.inputs, shape, "int32");
      const targets = tf.tensor2d(b.targets, shape, "int32");
      const mask = tf.tensor2d(b.mask, shape, "float32");
      try {
        const f = options.perRow
          ? () => {
              const sums = tf.sum(tf.mul(model.perTokenLoss(ids, targets), mask), 1) as tf.Tensor1D;
              rows.push(tf.keep(sums));
              return tf.mul(tf.div(tf.sum(sums), Math.max(counts[i], 1)), w) as tf.Scalar;
            }
          : () => tf.mul(model.loss(ids, targets, mask), w) as tf.Scalar;
        const { value, grads } = tf.variableGrads(f, vars);
        const out: Array<[string, tf.Tensor]> = [];
        for (const [varName, g] of Object.entries(grads)) {
          const name = byVarName.get(varName);
          if (name === undefined) g.dispose();
          else out.push([name, g]);
        }
        return { value, grads: out };
      } finally {
        ids.dispose();
        targets.dispose();
        mask.dispose();
      }
    },
    addLoss(loss: tf.Scalar | undefined, value: tf.Scalar): tf.Scalar {
      if (!loss) return value;
      const next = tf.add(loss, value) as tf.Scalar;
      loss.dispose();
      value.dispose();
      return next;
    },
    rowSums(): { rowLossSums?: tf.Tensor1D } {
      if (!options.perRow) return {};
      const out = rows.length === 1 ? rows[0] : (tf.concat(rows) as tf.Tensor1D);
      if (rows.length > 1) tf.dispose(rows);
      return { rowLossSums: out };
    },
    disposeRows(): void {
      tf.dispose(rows);
    },
  };
}

/**
 * Global L2 norm of host gradients, summed in float64 (exact to float64 rounding; the device's
 * {@link squaredNormParts} adds float32 row partials in float64, which can differ in the last
 * float32 digits).
 */
export function hostGradientNorm(grads: ReadonlyMap<string, Float32Array>): number {
  const parts: number[] = [];
  for (const g of grads.values()) {
    let s = 0;
    for (let i = 0; i < g.length; i++) s += g[i] * g[i];
    parts.push(s);
  }
  return Math.sqrt(sumFloat64(parts));
}

/**
 * {@link clipGradients} for host gradients, in place: the same factor and the same float32
 * product as on the device (`g × float32(factor)`). Returns the factor applied (1 = unchanged).
 */
export function clipHostGradients(grads: ReadonlyMap<string, Float32Array>, norm: number, maxNorm: number): number {
  if (!(maxNorm > 0) || !Number.isFinite(norm)) return 1;
  const coef = maxNorm / (norm + 1e-6);
  if (coef >= 1) return 1;
  const c = Math.fround(coef);
  for (const g of grads.values()) for (let i = 0; i < g.length; i++) g[i] = Math.fround(g[i] * c);
  return coef;
}

/** Sum of squares of every gradient, as a scalar tensor (sqrt it for the global norm). */
/**
 * Partial sums of squares of the gradients: one per row of each gradient (its last axis summed
 * on the device), one for each vector or scalar. Adding these few (≤ rows) partials in float64 on
 * the host keeps the global norm accurate at any size: a single float32 sum over tens of millions
 * of squares (a 50k-vocabulary embedding) is off by ~1e-3 relative.
 */
export function squaredNormParts(grads: ReadonlyMap<string, tf.Tensor>): tf.Tensor1D {
  return tf.tidy(() => {
    const parts: tf.Tensor[] = [];
    for (const g of grads.values()) {
      const sq = tf.square(g);
      parts.push(g.rank >= 2 ? tf.reshape(tf.sum(sq, -1), [-1]) : tf.reshape(tf.sum(sq), [1]));
    }
    return (parts.length ? tf.concat(parts) : tf.zeros([1])) as tf.Tensor1D;
  });
}

/** Sum of float32 partials in float64 with Neumaier's compensation. */
export function sumFloat64(xs: ArrayLike<number>): number {
  let sum = 0;
  let c = 0;
  for (let i = 0; i < xs.length; i++) {
    const x = xs[i];
    const t = sum + x;
    c += Math.abs(sum) >= Math.abs(x) ? sum - t + x : x - t + sum;
    sum = t;
  }
  return sum + c;
}

/** Global L2 norm of the gradients (awaits the read). */
export async function globalNorm(grads: ReadonlyMap<string, tf.Tensor>): Promise<number> {
  const parts = squaredNormParts(grads);
  try {
    return Math.sqrt(sumFloat64(await parts.data()));
  } finally {
    parts.dispose();
  }
}

/**
 * Scales the gradients in place (replacing the tensors in the map) so their global norm is at
 * most `maxNorm`, as `torch.nn.utils.clip_grad_norm_`: factor maxNorm / (norm + 1e-6) when that
 * is below 1. `norm` is the pre-clip global norm. Returns the factor applied (1 = unchanged).
 */
export function clipGradients(grads: Map<string, tf.Tensor>, norm: number, maxNorm: number): number {
  if (!(maxNorm > 0) || !Number.isFinite(norm)) return 1;
  const coef = maxNorm / (norm + 1e-6);
  if (coef >= 1) return 1;
  for (const [name, g] of grads) {
    grads.set(name, tf.mul(g, coef));
    g.dispose();
  }
  return coef;
}

export function disposeGradients(g: Gradients | HostGradients | Map<string, tf.Tensor>): void {
  if (g instanceof Map) {
    for (const t of g.values()) t.dispose();
    return;
  }
  g.loss.dispose();
  g.rowLossSums?.dispose();
  for (const t of g.grads.values()) if (!(t instanceof Float32Array)) t.dispose();
}
