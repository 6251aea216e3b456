export { hashString, permutation, Rng, type RngState } from "./random.js";
export { didYouMean, editDistance, suggest } from "./suggest.js";
export {
  ADAMW_KERNEL,
  type AdamWUpdateAttrs,
  GELU_GRAD_KERNEL,
  GELU_KERNEL,
  LAYER_NORM_GRAD_KERNEL,
  LAYER_NORM_KERNEL,
  ROTARY_GRAD_KERNEL,
  ROTARY_KERNEL,
  XENT_GRAD_KERNEL,
  XENT_KERNEL,
} from "./kernels.js";
