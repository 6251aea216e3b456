/**
 * The public API of `@midtrain/common`, the pieces several midtrain packages share. Everything
 * not listed here (the edit distance behind `suggest`) is internal to the package.
 */
export { hashString, permutation, Rng, type RngState } from "./random.js";
export { didYouMean, suggest } from "./suggest.js";
export { type AdamWUpdateAttrs, adamwUpdateLoop, FUSED_KERNELS } from "./kernels.js";
