import type { Tensor } from "@tensorflow/tfjs-core";
import type { TF } from "../src/index.js";

/** Exact GELU, 0.5·x·(1 + erf(x/√2)), composed of tfjs ops (tfjs-core 4.22 has no GELU op). */
export function gelu(tf: TF, x: Tensor): Tensor {
  return tf.tidy(() => tf.mul(tf.mul(x, 0.5), tf.add(tf.erf(tf.mul(x, Math.SQRT1_2)), 1)));
}

/** Deterministic inputs that do not depend on any backend's random ops. */
export function seeded(n: number, seed: number, scale = 1): Float32Array {
  let s = seed >>> 0;
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    out[i] = ((((t ^ (t >>> 14)) >>> 0) / 4294967296) * 2 - 1) * scale;
  }
  return out;
}

export type Case = (tf: TF) => Promise<Float32Array[]>;

/** Runs f on fresh tensors and returns every output and gradient as arrays (async reads only). */
async function run(tf: TF, f: () => Array<import("@tensorflow/tfjs-core").Tensor>): Promise<Float32Array[]> {
  const outs = tf.tidy(f);
  const data = await Promise.all(outs.map((t) => t.data() as Promise<Float32Array>));
  tf.dispose(outs);
  return data.map((d) => Float32Array.from(d));
}

function t(tf: TF, shape: number[], seed: number, scale = 1) {
  return tf.tensor(
    seeded(
      shape.reduce((a, b) => a * b, 1),
      seed,
      scale,
    ),
    shape,
  );
}

/** `grads: false` for broadcast batch shapes: tfjs 4.22's matmul gradient does not reduce them. */
function matmulCase(shapeA: number[], shapeB: number[], ta: boolean, tb: boolean, grads = true): Case {
  return (tf) =>
    run(tf, () => {
      const a = t(tf, shapeA, 1);
      const b = t(tf, shapeB, 2);
      const w = t(tf, [1], 3); // makes the loss depend on every output element unevenly
      const f = (x: typeof a, y: typeof b) => {
        const out = tf.matMul(x, y, ta, tb);
        return tf.sum(tf.mul(out, tf.add(tf.sin(out), w)));
      };
      const out = tf.matMul(a, b, ta, tb);
      if (!grads) return [out];
      const [ga, gb] = tf.grads((x, y) => f(x as typeof a, y as typeof b))([a, b]);
      return [out, ga, gb];
    });
}

/**
 * Cases a backend's own tfjs kernels get wrong upstream (not midtrain code; the model never
 * uses these shapes), by backend and case name, with what goes wrong. ops.test.ts registers
 * each as a skipped test that carries this reason.
 */
export const UPSTREAM_GAPS: Record<string, Record<string, string>> = {
  webgpu: {
    "broadcast matmul: both sides broadcast": "upstream gap: tfjs-backend-webgpu 4.22 mis-sizes the matmul output when both operands broadcast",
    "matmul with an empty dimension": "upstream gap: tfjs-backend-webgpu 4.22 cannot create a zero-size buffer",
  },
};

export const CASES: Record<string, Case> = {
  "matmul NN": matmulCase([17, 33], [33, 9], false, false),
  "matmul NT": matmulCase([17, 33], [9, 33], false, true),
  "matmul TN": matmulCase([33, 17], [33, 9], true, false),
  "matmul TT": matmulCase([33, 17], [9, 33], true, true),
  "batched matmul NN": matmulCase([3, 5, 16, 8], [3, 5, 8, 12], false, false),
  "batched matmul NT (attention scores)": matmulCase([2, 4, 16, 8], [2, 4, 16, 8], false, true),
  "batched matmul TN": matmulCase([2, 4, 8, 16], [2, 4, 8, 12], true, false),
  "batched matmul TT": matmulCase([6, 8, 16], [6, 12, 8], true, true),
  "broadcast matmul: batched A, 2-D B": matmulCase([3, 7, 16], [16, 5], false, false, false),
  "broadcast matmul: 2-D A, batched B (transposed)": matmulCase([7, 16], [4, 5, 16], false, true, false),
  "broadcast matmul: leading 1s": matmulCase([1, 4, 7, 16], [4, 16, 5], false, false, false),
  "broadcast matmul: both sides broadcast": matmulCase([2, 1, 7, 16], [1, 3, 16, 5], false, false, false),
  "matmul with an empty dimension": matmulCase([3, 0, 16], [3, 16, 5], false, false),
  "softmax and logSoftmax": (tf) =>
    run(tf, () => {
      const x = t(tf, [4, 7, 33], 4, 3);
      const g = t(tf, [4, 7, 33], 5);
      const sm = tf.softmax(x);
      const lsm = tf.logSoftmax(x);
      const dsm = tf.grad((y) => tf.sum(tf.mul(tf.softmax(y), g)))(x);
      const dlsm = tf.grad((y) => tf.sum(tf.mul(tf.logSoftmax(y), g)))(x);
      return [sm, lsm, dsm, dlsm];
    }),
  "gather (embedding) and its gradient": (tf) =>
    run(tf, () => {
      const table = t(tf, [50, 16], 6);
      const ids = tf.tensor2d(
        [
          [3, 7, 7, 0],
          [49, 3, 12, 3],
        ],
        [2, 4],
        "int32",
      );
      const g = t(tf, [2, 4, 16], 7);
      const out = tf.gather(table, ids);
      const d = tf.grad((e) => tf.sum(tf.mul(tf.gather(e, ids), g)))(table);
      // Loss-style gather along the last axis (logSoftmax + gather of targets).
      const logits = t(tf, [8, 50], 8);
      const targets = tf.tensor1d([1, 4, 9, 0, 49, 33, 2, 2], "int32");
      const pick = (l: typeof logits) =>
        tf.sum(tf.gather(tf.reshape(tf.logSoftmax(l), [-1]), tf.add(tf.mul(tf.range(0, 8, 1, "int32"), tf.scalar(50, "int32")), targets)));
      const dl = tf.grad((l) => pick(l as typeof logits))(logits);
      return [out, d, pick(logits), dl];
    }),
  "layer norm composition": (tf) =>
    run(tf, () => {
      const x = t(tf, [6, 10, 24], 9, 2);
      const gamma = t(tf, [24], 10);
      const beta = t(tf, [24], 11);
      const g = t(tf, [6, 10, 24], 12);
      const ln = (y: typeof x, ga: typeof gamma, be: typeof beta) => {
        const mean = tf.mean(y, -1, true);
        const c = tf.sub(y, mean);
        const v = tf.mean(tf.square(c), -1, true);
        return tf.add(tf.mul(tf.mul(c, tf.rsqrt(tf.add(v, 1e-5))), ga), be);
      };
      const [dx, dg, db] = tf.grads((y, ga, be) => tf.sum(tf.mul(ln(y as typeof x, ga as typeof gamma, be as typeof beta), g)))([x, gamma, beta]);
      return [ln(x, gamma, beta), dx, dg, db];
    }),
  "GELU (exact, erf)": (tf) =>
    run(tf, () => {
      const x = t(tf, [1000], 13, 4);
      const d = tf.grad((y) => tf.sum(gelu(tf, y)))(x);
      return [gelu(tf, x), tf.erf(x), d];
    }),
  "causal masking": (tf) =>
    run(tf, () => {
      const s = t(tf, [2, 3, 8, 8], 14, 2);
      const keep = tf.linalg.bandPart(tf.ones([8, 8]), -1, 0);
      const masked = (y: typeof s) => tf.softmax(tf.where(tf.cast(keep, "bool"), y, tf.fill(y.shape, -1e9)));
      const g = t(tf, [2, 3, 8, 8], 15);
      const d = tf.grad((y) => tf.sum(tf.mul(masked(y as typeof s), g)))(s);
      return [masked(s), d];
    }),
  reductions: (tf) =>
    run(tf, () => {
      const x = t(tf, [5, 6, 7], 16, 3);
      const m = tf.tensor(
        seeded(5 * 6, 17).map((v) => (v > 0 ? 1 : 0)),
        [5, 6],
      );
      const f = (y: typeof x) => tf.add(tf.add(tf.sum(tf.mul(tf.sum(y, -1), m)), tf.mean(tf.max(y, 1))), tf.div(tf.sum(tf.mul(tf.mean(y, -1), m)), tf.sum(m)));
      return [tf.sum(x, 0), tf.mean(x, [1, 2]), tf.max(x, -1), f(x), tf.grad((y) => f(y as typeof x))(x)];
    }),
};
