export { hashString, permutation, Rng, type RngState } from "./random.js";
export { didYouMean, editDistance, suggest } from "./suggest.js";
export { type AdamWUpdateAttrs, FUSED_KERNELS, type FusedKernelName } from "./kernels.js";
