/**
 * Names and contracts of the fused kernels. @midtrain/backend registers kernels under these
 * names (AdamW on wasm and cpu; the others on wasm when its native addon loads);
 * @midtrain/model and @midtrain/trainer look them up by name with tfjs-core's `getKernel` and
 * fall back to plain tensor ops when the active backend lacks them, so they need no import of
 * the backend itself. Shapes are row-major; every tensor is float32 unless said otherwise.
 */
export const FUSED_KERNELS = Object.freeze({
  /** One AdamW step for one parameter: { p, g, m, v } (same shape), attrs {@link AdamWUpdateAttrs} → [p', m', v']. */
  adamw: "MidtrainAdamW",
  /** Softmax cross-entropy: { logits [N, V], targets [N] int32 } → [nll [N], lse [N]]. */
  xent: "MidtrainSoftmaxXent",
  /** Its gradient: { logits, targets, lse, dy [N] } → dlogits [N, V]. */
  xentGrad: "MidtrainSoftmaxXentGrad",
  /** Exact GELU: { x } → y = 0.5·x·(1 + erf(x/√2)). */
  gelu: "MidtrainGelu",
  /** Its gradient: { x, dy } → dx. */
  geluGrad: "MidtrainGeluGrad",
  /** LayerNorm over the last axis: { x [R, C], gamma [C], beta [C] }, attrs { eps } → [y [R, C], mean [R], rstd [R]]. */
  layerNorm: "MidtrainLayerNorm",
  /** Its gradient: { x, gamma, mean, rstd, dy } → [dx, dgamma, dbeta]. */
  layerNormGrad: "MidtrainLayerNormGrad",
  /**
   * Rotate-half rotary embedding: { x [R, D], cos [T, D], sin [T, D] }, attrs { headDim, half }
   * → y [R, D] = x·cos + pair(x)·sin, row r at position r mod T; pair swaps dims i and
   * i + half of each head for i < half.
   */
  rotary: "MidtrainRotary",
  /** Its gradient: { dy, cos, sin }, same attrs → dx. */
  rotaryGrad: "MidtrainRotaryGrad",
} as const);

/**
 * Attributes of the AdamW kernel, every factor precomputed by the caller:
 *   m' = β1·m + (1-β1)·g
 *   v' = β2·v + (1-β2)·g²
 *   p' = decay·p − stepSize · m' / (√v' / sqrtBc2 + eps)
 * with decay = 1 − lr·weightDecay (1 for parameters without decay), stepSize = lr / (1 − β1^t)
 * and sqrtBc2 = √(1 − β2^t).
 */
export interface AdamWUpdateAttrs {
  beta1: number;
  beta2: number;
  eps: number;
  decay: number;
  stepSize: number;
  sqrtBc2: number;
}

/**
 * The AdamW update of {@link AdamWUpdateAttrs} as one pass over plain arrays: float64 arithmetic
 * with float32 rounding of each stored moment, writing P, M, V (M and V may be m and v). The
 * fused kernel's JavaScript path and the trainer's host (offload) update both run this loop, so
 * they agree bitwise with each other and with the native kernel.
 */
export function adamwUpdateLoop(
  p: ArrayLike<number>,
  g: ArrayLike<number>,
  m: ArrayLike<number>,
  v: ArrayLike<number>,
  P: Float32Array,
  M: Float32Array,
  V: Float32Array,
  a: AdamWUpdateAttrs,
): void {
  const { beta1, beta2, eps, decay, stepSize, sqrtBc2 } = a;
  const c1 = 1 - beta1;
  const c2 = 1 - beta2;
  const n = P.length;
  for (let i = 0; i < n; i++) {
    const gi = g[i];
    const mi = Math.fround(m[i] * beta1 + gi * c1);
    const vi = Math.fround(v[i] * beta2 + gi * gi * c2);
    M[i] = mi;
    V[i] = vi;
    P[i] = p[i] * decay - (mi / (Math.sqrt(vi) / sqrtBc2 + eps)) * stepSize;
  }
}
