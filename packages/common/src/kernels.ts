/**
 * Names and contracts of the fused kernels. @midtrain/backend registers kernels under these
 * names (AdamW on wasm and cpu; the others on wasm when its native addon loads);
 * @midtrain/model and @midtrain/trainer look them up by name with tfjs-core's `getKernel` and
 * fall back to plain tensor ops when the active backend lacks them, so they need no import of
 * the backend itself. Shapes are row-major; every tensor is float32 unless said otherwise.
 */

/**
 * One AdamW step for one parameter: inputs { p, g, m, v } (same shape), attrs
 * {@link AdamWUpdateAttrs}, outputs [p', m', v'].
 */
export const ADAMW_KERNEL = "MidtrainAdamW";

/**
 * Attributes of {@link ADAMW_KERNEL}, every factor precomputed by the caller:
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

/** Softmax cross-entropy: { logits [N, V], targets [N] int32 } → [nll [N], lse [N]]. */
export const XENT_KERNEL = "MidtrainSoftmaxXent";
/** Its gradient: { logits, targets, lse, dy [N] } → dlogits [N, V]. */
export const XENT_GRAD_KERNEL = "MidtrainSoftmaxXentGrad";

/** Exact GELU: { x } → y = 0.5·x·(1 + erf(x/√2)). */
export const GELU_KERNEL = "MidtrainGelu";
/** Its gradient: { x, dy } → dx. */
export const GELU_GRAD_KERNEL = "MidtrainGeluGrad";

/** LayerNorm over the last axis: { x [R, C], gamma [C], beta [C] }, attrs { eps } → [y [R, C], mean [R], rstd [R]]. */
export const LAYER_NORM_KERNEL = "MidtrainLayerNorm";
/** Its gradient: { x, gamma, mean, rstd, dy } → [dx, dgamma, dbeta]. */
export const LAYER_NORM_GRAD_KERNEL = "MidtrainLayerNormGrad";

/**
 * Rotate-half rotary embedding: { x [R, D], cos [T, D], sin [T, D] }, attrs { headDim, half } →
 * y [R, D] = x·cos + pair(x)·sin, row r at position r mod T; pair swaps dims i and i + half of
 * each head for i < half.
 */
export const ROTARY_KERNEL = "MidtrainRotary";
/** Its gradient: { dy, cos, sin }, same attrs → dx. */
export const ROTARY_GRAD_KERNEL = "MidtrainRotaryGrad";
