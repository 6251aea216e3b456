import { type AdamWUpdateAttrs, adamwUpdateLoop, FUSED_KERNELS } from "@midtrain/common";
import type { NativeBlas } from "@midtrain/native-blas";
import { getKernel, type KernelFunc, registerKernel, type TensorInfo } from "@tensorflow/tfjs-core";

interface WasmBackendLike {
  makeOutput(shape: number[], dtype: string): TensorInfo;
  typedArrayFromHeap(info: TensorInfo): Float32Array;
}
interface CpuBackendLike {
  readSync(dataId: object): ArrayLike<number>;
  makeTensorInfo(shape: number[], dtype: string, values: Float32Array): TensorInfo;
}
type Inputs = { p: TensorInfo; g: TensorInfo; m: TensorInfo; v: TensorInfo };

/** The native addon's AdamW loop (same formula, compiled C); see @midtrain/native-blas. */
export type NativeAdamW = NativeBlas["adamw"];
// Process-wide (like the kernel registry): if both the ESM and CJS builds of this package are
// loaded, the registered kernel and the setter still share the choice.
const NATIVE_ADAMW = Symbol.for("midtrain.nativeAdamW");
const shared = globalThis as Record<symbol, NativeAdamW | null | undefined>;

/** Runs the wasm kernel's loop in native code (or back in JavaScript with `null`). */
export function setNativeAdamW(f: NativeAdamW | null): void {
  shared[NATIVE_ADAMW] = f;
}

const wasmAdamW: KernelFunc = ({ inputs, backend, attrs }) => {
  const { p, g, m, v } = inputs as Inputs;
  const b = backend as unknown as WasmBackendLike;
  const a = attrs as unknown as AdamWUpdateAttrs;
  // Every output first: an allocation may grow the wasm heap and detach earlier views.
  const outs = [b.makeOutput(p.shape, "float32"), b.makeOutput(p.shape, "float32"), b.makeOutput(p.shape, "float32")];
  const [P, M, V] = outs.map((o) => b.typedArrayFromHeap(o));
  const [pv, gv, mv, vv] = [p, g, m, v].map((t) => b.typedArrayFromHeap(t));
  const nativeAdamW = shared[NATIVE_ADAMW];
  if (nativeAdamW) nativeAdamW(P.length, pv, gv, mv, vv, P, M, V, a.beta1, a.beta2, a.eps, a.decay, a.stepSize, a.sqrtBc2);
  else adamwUpdateLoop(pv, gv, mv, vv, P, M, V, a);
  return outs;
};

const cpuAdamW: KernelFunc = ({ inputs, backend, attrs }) => {
  const { p, g, m, v } = inputs as Inputs;
  const b = backend as unknown as CpuBackendLike;
  const n = p.shape.reduce((x, s) => x * s, 1);
  const [P, M, V] = [new Float32Array(n), new Float32Array(n), new Float32Array(n)];
  adamwUpdateLoop(b.readSync(p.dataId), b.readSync(g.dataId), b.readSync(m.dataId), b.readSync(v.dataId), P, M, V, attrs as unknown as AdamWUpdateAttrs);
  return [P, M, V].map((x) => b.makeTensorInfo(p.shape, "float32", x));
};

/** Registers the fused kernel for wasm and cpu (idempotent). */
export function registerAdamWKernels(): void {
  for (const [backendName, kernelFunc] of [
    ["wasm", wasmAdamW],
    ["cpu", cpuAdamW],
  ] as const) {
    if (!getKernel(FUSED_KERNELS.adamw, backendName)) registerKernel({ kernelName: FUSED_KERNELS.adamw, backendName, kernelFunc });
  }
}
