import { FUSED_KERNELS } from "@midtrain/common";
import { broadcast_util, getKernel, type KernelConfig, type KernelFunc, registerKernel, type TensorInfo, unregisterKernel } from "@tensorflow/tfjs-core";
import type { NativeBlas } from "@midtrain/native-blas";
import { setNativeAdamW } from "./adamw.js";

/**
 * What the kernels need from @midtrain/native-blas: its own declarations, imported as types
 * only, so this file still loads no Node module (the package is loaded at run time by native.ts).
 */
export type NativeKernels = Pick<
  NativeBlas,
  "sgemmBatch" | "xentForward" | "xentBackward" | "geluForward" | "geluBackward" | "layerNormForward" | "layerNormBackward" | "rotary" | "adamw"
>;

/** The parts of tfjs-backend-wasm 4.22's BackendWasm used here (internal API, checked at run time). */
interface WasmHeapBackend {
  wasm: { HEAPF32: Float32Array };
  dataIdMap: { get(dataId: object): { memoryOffset: number } | undefined };
  makeOutput(shape: number[], dtype: string): TensorInfo;
  typedArrayFromHeap(info: TensorInfo): Float32Array | Int32Array;
}

function hasHeap(b: unknown): b is WasmHeapBackend {
  const x = b as Partial<WasmHeapBackend> | undefined;
  return (
    x?.wasm?.HEAPF32 instanceof Float32Array &&
    typeof x.dataIdMap?.get === "function" &&
    typeof x.makeOutput === "function" &&
    typeof x.typedArrayFromHeap === "function"
  );
}

const sizeOf = (shape: readonly number[]) => shape.reduce((a, s) => a * s, 1);

/** The wasm backend of a native kernel call, or an error naming the kernel. */
function heapOf(backend: unknown, kernel: string): WasmHeapBackend {
  if (!hasHeap(backend)) throw new Error(`${kernel} needs tfjs-backend-wasm 4.22's heap`);
  return backend;
}

function dropLeadingOnes(shape: number[]): number[] {
  let i = 0;
  while (i < shape.length && shape[i] === 1) i++;
  return shape.slice(i);
}

/**
 * BatchMatMul for tfjs-backend-wasm that multiplies in place on the wasm heap through a native
 * sgemm (OpenBLAS): no copies, transposes are sgemm flags, batch slices share a broadcast
 * operand by stride 0. Shapes it cannot express as one strided batch (both operands batched
 * with different broadcast patterns) and non-float32 inputs go to `fallback`.
 */
export function nativeMatMulKernel(blas: Pick<NativeKernels, "sgemmBatch">, fallback: KernelFunc): KernelFunc {
  return (args) => {
    const { a, b } = args.inputs as { a: TensorInfo; b: TensorInfo };
    const attrs = args.attrs as { transposeA?: boolean; transposeB?: boolean };
    const backend = args.backend as unknown;
    if (!hasHeap(backend) || a.dtype !== "float32" || b.dtype !== "float32") return fallback(args);
    const ta = Boolean(attrs.transposeA);
    const tb = Boolean(attrs.transposeB);
    const ar = a.shape.length;
    const br = b.shape.length;
    // Shapes the tfjs kernel would reject (rank < 2, inner sizes that differ) go to it, so the
    // user gets tfjs's own error instead of a product that reads past b.
    if (ar < 2 || br < 2) return fallback(args);
    const M = ta ? a.shape[ar - 1] : a.shape[ar - 2];
    const K = ta ? a.shape[ar - 2] : a.shape[ar - 1];
    const N = tb ? b.shape[br - 2] : b.shape[br - 1];
    if ((tb ? b.shape[br - 1] : b.shape[br - 2]) !== K) return fallback(args);
    const outerA = a.shape.slice(0, -2);
    const outerB = b.shape.slice(0, -2);
    const nA = sizeOf(outerA);
    const nB = sizeOf(outerB);
    // One strided batch covers: equal batch shapes, or one side unbatched (broadcast).
    const tA = dropLeadingOnes(outerA);
    const tB = dropLeadingOnes(outerB);
    const sameOuter = tA.length === tB.length && tA.every((s, i) => s === tB[i]);
    if (!(sameOuter || nA === 1 || nB === 1)) return fallback(args);
    const outer = broadcast_util.assertAndGetBroadcastShape(outerA, outerB);
    const out = backend.makeOutput([...outer, M, N], "float32");
    const batch = sizeOf(outer);
    if (batch === 0 || M === 0 || N === 0) return out;
    const heap = backend.wasm.HEAPF32.buffer;
    const view = (t: TensorInfo, n: number) => new Float32Array(heap, backend.dataIdMap.get(t.dataId)!.memoryOffset, n);
    blas.sgemmBatch(
      batch,
      ta,
      tb,
      M,
      N,
      K,
      view(a, nA * M * K),
      nA === 1 ? 0 : M * K,
      view(b, nB * K * N),
      nB === 1 ? 0 : K * N,
      view(out, batch * M * N),
      M * N,
    );
    return out;
  };
}

/** Softmax cross-entropy (FUSED_KERNELS.xent / .xentGrad), registered for wasm when the native addon loads. */

function xentKernels(native: NativeKernels): KernelFunc[] {
  const forward: KernelFunc = ({ inputs, backend }) => {
    const b = heapOf(backend, FUSED_KERNELS.xent);
    const { logits, targets } = inputs as { logits: TensorInfo; targets: TensorInfo };
    if (logits.shape.length !== 2 || targets.shape.length !== 1 || targets.shape[0] !== logits.shape[0] || targets.dtype !== "int32") {
      throw new Error(
        `${FUSED_KERNELS.xent}: logits must be [N, V] float32 and targets [N] int32, got [${logits.shape}] and [${targets.shape}] ${targets.dtype}`,
      );
    }
    const [N, V] = logits.shape;
    const nll = b.makeOutput([N], "float32");
    const lse = b.makeOutput([N], "float32");
    native.xentForward(
      N,
      V,
      b.typedArrayFromHeap(logits) as Float32Array,
      b.typedArrayFromHeap(targets) as Int32Array,
      b.typedArrayFromHeap(nll) as Float32Array,
      b.typedArrayFromHeap(lse) as Float32Array,
    );
    return [nll, lse];
  };
  const backward: KernelFunc = ({ inputs, backend }) => {
    const b = heapOf(backend, FUSED_KERNELS.xentGrad);
    const { logits, targets, lse, dy } = inputs as { logits: TensorInfo; targets: TensorInfo; lse: TensorInfo; dy: TensorInfo };
    const [N, V] = logits.shape;
    const out = b.makeOutput([N, V], "float32");
    native.xentBackward(
      N,
      V,
      b.typedArrayFromHeap(logits) as Float32Array,
      b.typedArrayFromHeap(targets) as Int32Array,
      b.typedArrayFromHeap(lse) as Float32Array,
      b.typedArrayFromHeap(dy) as Float32Array,
      b.typedArrayFromHeap(out) as Float32Array,
    );
    return out;
  };
  return [forward, backward];
}

/** Exact GELU (FUSED_KERNELS.gelu / .geluGrad), registered for wasm when the native addon loads. */

function geluKernels(native: NativeKernels): KernelFunc[] {
  const forward: KernelFunc = ({ inputs, backend: be }) => {
    const backend = heapOf(be, FUSED_KERNELS.gelu);
    const { x } = inputs as { x: TensorInfo };
    const y = backend.makeOutput(x.shape, "float32");
    const yv = backend.typedArrayFromHeap(y) as Float32Array;
    native.geluForward(yv.length, backend.typedArrayFromHeap(x) as Float32Array, yv);
    return y;
  };
  const backward: KernelFunc = ({ inputs, backend: be }) => {
    const backend = heapOf(be, FUSED_KERNELS.geluGrad);
    const { x, dy } = inputs as { x: TensorInfo; dy: TensorInfo };
    const dx = backend.makeOutput(x.shape, "float32");
    const dxv = backend.typedArrayFromHeap(dx) as Float32Array;
    native.geluBackward(dxv.length, backend.typedArrayFromHeap(x) as Float32Array, backend.typedArrayFromHeap(dy) as Float32Array, dxv);
    return dx;
  };
  return [forward, backward];
}

/** LayerNorm over the last axis (FUSED_KERNELS.layerNorm / .layerNormGrad), registered for wasm when the native addon loads. */

function layerNormKernels(native: NativeKernels): KernelFunc[] {
  const f32 = (b: WasmHeapBackend, t: TensorInfo) => b.typedArrayFromHeap(t) as Float32Array;
  const forward: KernelFunc = ({ inputs, backend, attrs }) => {
    const b = heapOf(backend, FUSED_KERNELS.layerNorm);
    const { x, gamma, beta } = inputs as { x: TensorInfo; gamma: TensorInfo; beta: TensorInfo };
    const C = x.shape[x.shape.length - 1];
    const R = sizeOf(x.shape) / C;
    if (sizeOf(gamma.shape) !== C || sizeOf(beta.shape) !== C) {
      throw new Error(
        `${FUSED_KERNELS.layerNorm}: gamma and beta must hold ${C} values (the last axis of x [${x.shape}]), got [${gamma.shape}] and [${beta.shape}]`,
      );
    }
    const outs = [b.makeOutput(x.shape, "float32"), b.makeOutput([R], "float32"), b.makeOutput([R], "float32")];
    const [y, mean, rstd] = outs.map((o) => f32(b, o));
    native.layerNormForward(R, C, f32(b, x), f32(b, gamma), f32(b, beta), (attrs as { eps: number }).eps, y, mean, rstd);
    return outs;
  };
  const backward: KernelFunc = ({ inputs, backend }) => {
    const b = heapOf(backend, FUSED_KERNELS.layerNormGrad);
    const { x, gamma, mean, rstd, dy } = inputs as Record<"x" | "gamma" | "mean" | "rstd" | "dy", TensorInfo>;
    const C = x.shape[x.shape.length - 1];
    const R = sizeOf(x.shape) / C;
    const outs = [b.makeOutput(x.shape, "float32"), b.makeOutput([C], "float32"), b.makeOutput([C], "float32")];
    const [dx, dgamma, dbeta] = outs.map((o) => f32(b, o));
    native.layerNormBackward(R, C, f32(b, x), f32(b, gamma), f32(b, mean), f32(b, rstd), f32(b, dy), dx, dgamma, dbeta);
    return outs;
  };
  return [forward, backward];
}

/** Rotate-half rotary embedding (FUSED_KERNELS.rotary / .rotaryGrad), registered for wasm when the native addon loads. */

function rotaryKernels(native: NativeKernels): KernelFunc[] {
  const make =
    (grad: boolean): KernelFunc =>
    ({ inputs, backend: be, attrs }) => {
      const backend = heapOf(be, grad ? FUSED_KERNELS.rotaryGrad : FUSED_KERNELS.rotary);
      const x = (grad ? inputs.dy : inputs.x) as TensorInfo;
      const { cos, sin } = inputs as { cos: TensorInfo; sin: TensorInfo };
      const { headDim, half } = attrs as { headDim: number; half: number };
      if (x.shape.length !== 2 || cos.shape.length !== 2 || cos.shape[1] !== x.shape[1] || sin.shape.join() !== cos.shape.join()) {
        throw new Error(
          `${grad ? FUSED_KERNELS.rotaryGrad : FUSED_KERNELS.rotary}: x [R, D] with cos and sin [T, D] expected, got [${x.shape}], [${cos.shape}], [${sin.shape}]`,
        );
      }
      const [R, D] = x.shape;
      const out = backend.makeOutput([R, D], "float32");
      const v = (t: TensorInfo) => backend.typedArrayFromHeap(t) as Float32Array;
      native.rotary(R, cos.shape[0], D, headDim, half, v(x), v(cos), v(sin), v(out), grad);
      return out;
    };
  return [make(false), make(true)];
}

const ORIGINAL = Symbol.for("midtrain.wasmBatchMatMulBeforeNative");

/**
 * Routes wasm BatchMatMul through `native`'s sgemm, registers the fused cross-entropy, GELU,
 * LayerNorm and rotary kernels and runs the AdamW kernel's loop natively (or, with `null`, restores the
 * XNNPACK matmul and the JavaScript AdamW loop and removes the others). Process-wide,
 * like every tfjs kernel registration.
 */
export function setWasmNativeKernels(native: NativeKernels | null): void {
  const g = globalThis as Record<symbol, KernelConfig | undefined>;
  const current = getKernel("BatchMatMul", "wasm");
  if (!current) throw new Error("tfjs-backend-wasm is not loaded: no BatchMatMul kernel to replace");
  const base = g[ORIGINAL] ?? current;
  g[ORIGINAL] = base;
  unregisterKernel("BatchMatMul", "wasm");
  registerKernel(native ? { ...base, kernelFunc: nativeMatMulKernel(native, base.kernelFunc) } : base);
  const names = [
    FUSED_KERNELS.xent,
    FUSED_KERNELS.xentGrad,
    FUSED_KERNELS.gelu,
    FUSED_KERNELS.geluGrad,
    FUSED_KERNELS.layerNorm,
    FUSED_KERNELS.layerNormGrad,
    FUSED_KERNELS.rotary,
    FUSED_KERNELS.rotaryGrad,
  ];
  for (const name of names) if (getKernel(name, "wasm")) unregisterKernel(name, "wasm");
  setNativeAdamW(native ? native.adamw : null);
  if (native) {
    const funcs = [...xentKernels(native), ...geluKernels(native), ...layerNormKernels(native), ...rotaryKernels(native)];
    names.forEach((kernelName, i) => {
      registerKernel({ kernelName, backendName: "wasm", kernelFunc: funcs[i] });
    });
  }
}
