import { env, getKernel, type KernelConfig, type KernelFunc, registerKernel, type TensorInfo, unregisterKernel } from "@tensorflow/tfjs-core";

/**
 * tfjs-backend-webgpu 4.22 picks its split-K matmul program (`MatMulSplitKProgram`) for a
 * single matrix product with a small output (at most 8 tiles of 32 × 32, or a few rows) and an
 * inner dimension of at least 2,000. That program reads B four elements at a time along the
 * output column whenever the output width is a multiple of 4 — also when B is transposed, where
 * those four elements are not adjacent: `matMul(a, b, false, true)` then returns wrong values
 * (relative errors of order 1, not rounding). The packed program guards its vec4 path with
 * `!transposeB`; the split-K one does not. This hits the output layer's gradient
 * `dlogits @ Wᵀ` (inner dimension = the vocabulary) whenever a loss chunk has few rows.
 *
 * The guard below runs such products as `matMul(a, transpose(b))` — split-K reads an
 * untransposed B correctly, and keeps its accuracy over long inner dimensions (it sums blocks
 * of 128 products; the small-output program would sum all 50,304 in one f32 chain). The
 * transposed copy of B lives only for that kernel call. Every other product, and any program
 * type forced through tfjs's `WEBGPU_MATMUL_PROGRAM_TYPE` flag, is left as it is.
 */

const FLAG = "WEBGPU_MATMUL_PROGRAM_TYPE";
const GUARDED = Symbol.for("midtrain.webgpuSplitKGuard");

interface MatMulAttrs {
  transposeA?: boolean;
  transposeB?: boolean;
}

/**
 * Whether tfjs-backend-webgpu 4.22's automatic choice for this product is the split-K program
 * (the decision in its BatchMatMul_impl, restated).
 */
export function webgpuPicksSplitK(aShape: readonly number[], bShape: readonly number[], transposeA: boolean, transposeB: boolean, threshold = 8): boolean {
  const ar = aShape.length;
  const br = bShape.length;
  const outerA = transposeA ? aShape[ar - 1] : aShape[ar - 2];
  const outerB = transposeB ? bShape[br - 2] : bShape[br - 1];
  const inner = transposeB ? bShape[br - 1] : bShape[br - 2];
  const size = (s: readonly number[]) => s.slice(0, -2).reduce((p, d) => p * d, 1);
  const batch = Math.max(size(aShape), size(bShape));
  const workgroups = batch * Math.ceil(outerA / 32) * Math.ceil(outerB / 32);
  const few = workgroups <= threshold || (outerA <= 8 && workgroups <= threshold * 2);
  return few && batch * outerA * outerB > 128 && batch === 1 && inner >= 2000;
}

function guard(orig: KernelFunc): KernelFunc {
  const f: KernelFunc = (args) => {
    const attrs = (args.attrs ?? {}) as MatMulAttrs;
    const { a, b } = args.inputs as { a?: TensorInfo; b?: TensorInfo };
    const flags = env();
    if (!attrs.transposeB || !a || !b || (flags.getNumber(FLAG) as number) >= 0) return orig(args);
    const forced = flags.getNumber("WEBGPU_THRESHOLD_TO_INCREASE_WORKGROUPS_FOR_MATMUL");
    const backend = args.backend as { thresholdToIncreaseWorkgroups?: number; disposeData(id: object): void };
    const threshold = forced > 0 ? forced : (backend.thresholdToIncreaseWorkgroups ?? 8);
    if (!webgpuPicksSplitK(a.shape, b.shape, attrs.transposeA === true, true, threshold)) return orig(args);
    // The same product with B transposed explicitly: split-K reads a plain B correctly.
    const transpose = getKernel("Transpose", "webgpu");
    if (!transpose) return orig(args);
    const r = b.shape.length;
    const perm = [...Array.from({ length: r - 2 }, (_, i) => i), r - 1, r - 2];
    const bt = transpose.kernelFunc({ inputs: { x: b }, backend: args.backend, attrs: { perm } }) as TensorInfo;
    try {
      return orig({ ...args, inputs: { ...args.inputs, b: bt }, attrs: { ...args.attrs, transposeB: false } });
    } finally {
      backend.disposeData(bt.dataId);
    }
  };
  (f as unknown as Record<symbol, boolean>)[GUARDED] = true;
  return f;
}

/**
 * Replaces the webgpu BatchMatMul and _FusedMatMul kernels by guarded ones (see above). Call
 * after tfjs-backend-webgpu is imported; idempotent. Returns the kernels it guarded.
 */
export function guardWebgpuSplitKMatMul(): string[] {
  const done: string[] = [];
  for (const name of ["BatchMatMul", "_FusedMatMul"]) {
    const k = getKernel(name, "webgpu") as KernelConfig | undefined;
    if (!k) continue;
    if ((k.kernelFunc as unknown as Record<symbol, boolean>)[GUARDED]) {
      done.push(name);
      continue;
    }
    unregisterKernel(name, "webgpu");
    registerKernel({ ...k, kernelFunc: guard(k.kernelFunc) });
    done.push(name);
  }
  return done;
}
