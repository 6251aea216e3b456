import { getKernel, type KernelConfig, type KernelFunc, type NamedAttrMap, registerKernel, type TensorInfo, unregisterKernel } from "@tensorflow/tfjs-core";
import { batchedMatMulKernel } from "./wasm-batch-matmul.js";

/**
 * The parts of tfjs-backend-wasm's BackendWasm that the kernels below use. Kernels run
 * synchronously inside the engine, so reading the wasm heap here is not a user-facing
 * synchronous read: the data already lives in CPU memory.
 */
interface WasmBackendLike {
  readSync(dataId: object): ArrayLike<number>;
  makeOutput(shape: number[], dtype: string): TensorInfo;
  typedArrayFromHeap(info: TensorInfo): Float32Array | Int32Array | Uint8Array;
  disposeData(dataId: object, force?: boolean): boolean;
}

const PATCHED = Symbol.for("midtrain.wasmKernelsPatched");

function swapLastTwo(rank: number): number[] {
  const perm = Array.from({ length: rank }, (_, i) => i);
  perm[rank - 1] = rank - 2;
  perm[rank - 2] = rank - 1;
  return perm;
}

/**
 * Wraps a matmul kernel so that transposed operands are transposed explicitly first.
 * tfjs-backend-wasm's transposed matmul paths are 10-40x slower than the plain one, and
 * tfjs's matmul gradient always asks for them.
 */
function withoutTransposedOperands(orig: KernelConfig): KernelFunc {
  return (args) => {
    const attrs = args.attrs as NamedAttrMap & { transposeA?: boolean; transposeB?: boolean };
    if (!attrs?.transposeA && !attrs?.transposeB) return orig.kernelFunc(args);
    const backend = args.backend as unknown as WasmBackendLike;
    const transpose = getKernel("Transpose", "wasm")!.kernelFunc;
    const temps: TensorInfo[] = [];
    const explicit = (x: TensorInfo): TensorInfo => {
      const t = transpose({
        inputs: { x },
        backend: args.backend,
        attrs: { perm: swapLastTwo(x.shape.length) },
      }) as TensorInfo;
      temps.push(t);
      return t;
    };
    const inputs = { ...args.inputs };
    if (attrs.transposeA) inputs.a = explicit(args.inputs.a!);
    if (attrs.transposeB) inputs.b = explicit(args.inputs.b!);
    try {
      return orig.kernelFunc({
        inputs,
        backend: args.backend,
        attrs: { ...attrs, transposeA: false, transposeB: false },
      });
    } finally {
      for (const t of temps) backend.disposeData(t.dataId, true);
    }
  };
}

/** UnsortedSegmentSum is missing on wasm; it is the gradient of gather (embedding backprop). */
const unsortedSegmentSum: KernelFunc = ({ inputs, backend, attrs }) => {
  const b = backend as unknown as WasmBackendLike;
  const { x, segmentIds } = inputs as { x: TensorInfo; segmentIds: TensorInfo };
  const numSegments = (attrs as { numSegments: number }).numSegments;
  const nIds = segmentIds.shape.reduce((a, s) => a * s, 1);
  const xSize = x.shape.reduce((a, s) => a * s, 1);
  const inner = nIds === 0 ? 0 : xSize / nIds;
  const outShape = [numSegments, ...x.shape.slice(segmentIds.shape.length)];
  const xVals = b.readSync(x.dataId);
  const ids = b.readSync(segmentIds.dataId);
  const out = b.makeOutput(outShape, x.dtype);
  const o = b.typedArrayFromHeap(out);
  o.fill(0);
  for (let i = 0; i < nIds; i++) {
    const seg = ids[i];
    if (seg < 0 || seg >= numSegments) continue; // tfjs drops out-of-range ids
    const src = i * inner;
    const dst = seg * inner;
    for (let j = 0; j < inner; j++) o[dst + j] += xVals[src + j];
  }
  return out;
};

/**
 * Identity without a copy: the output shares the input's buffer and bumps its reference count,
 * as tfjs-backend-cpu and wasm's own Reshape do (tensors are immutable; a variable's assign
 * moves the variable to a new buffer). tfjs-backend-wasm 4.22 copies the whole tensor instead,
 * and training calls Identity hundreds of times a step (clones of saved tensors in customGrad,
 * gradient bookkeeping).
 */
function sharingIdentity(orig: KernelConfig): KernelFunc {
  return (args) => {
    const { x } = args.inputs as { x: TensorInfo };
    const backend = args.backend as unknown as { incRef?: (dataId: object) => void };
    if (x.dtype === "string" || typeof backend.incRef !== "function") return orig.kernelFunc(args);
    backend.incRef(x.dataId);
    return { dataId: x.dataId, shape: x.shape, dtype: x.dtype };
  };
}

/**
 * Fills the gaps tfjs-backend-wasm 4.22 has for training. Idempotent.
 * Call after `@tensorflow/tfjs-backend-wasm` is imported (it registers the originals).
 */
export function patchWasmKernels(): void {
  const g = globalThis as Record<symbol, unknown>;
  if (g[PATCHED]) return;
  for (const name of ["BatchMatMul", "_FusedMatMul"]) {
    const orig = getKernel(name, "wasm");
    if (!orig) continue;
    unregisterKernel(name, "wasm");
    // BatchMatMul: every batch slice on XNNPACK (see wasm-batch-matmul.ts). _FusedMatMul
    // (bias/activation epilogue) only gets explicit transposes.
    const kernelFunc = name === "BatchMatMul" ? batchedMatMulKernel(orig) : withoutTransposedOperands(orig);
    registerKernel({ ...orig, kernelFunc });
  }
  const identity = getKernel("Identity", "wasm");
  if (identity) {
    unregisterKernel("Identity", "wasm");
    registerKernel({ ...identity, kernelFunc: sharingIdentity(identity) });
  }
  if (!getKernel("UnsortedSegmentSum", "wasm")) {
    registerKernel({ kernelName: "UnsortedSegmentSum", backendName: "wasm", kernelFunc: unsortedSegmentSum });
  }
  g[PATCHED] = true;
}
