import { broadcast_util, getKernel, type KernelConfig, type KernelFunc, type NamedAttrMap, type TensorInfo } from "@tensorflow/tfjs-core";

/**
 * The parts of tfjs-backend-wasm 4.22's BackendWasm used here (internal API, checked at run
 * time by {@link hasWasmInternals}).
 */
interface WasmModuleLike {
  cwrap(name: string, ret: null, args: string[]): (...args: unknown[]) => void;
  tfjs: {
    registerTensor(id: number, size: number, memoryOffset: number): void;
    disposeData(id: number): void;
  };
}
interface WasmBackendInternals {
  wasm: WasmModuleLike;
  dataIdMap: { get(dataId: object): { id: number; memoryOffset: number } | undefined };
  dataIdNextNumber: number;
  makeOutput(shape: number[], dtype: string): TensorInfo;
  disposeData(dataId: object, force?: boolean): boolean;
}

function hasWasmInternals(b: unknown): b is WasmBackendInternals {
  const x = b as Partial<WasmBackendInternals> | undefined;
  return (
    typeof x?.wasm?.cwrap === "function" &&
    typeof x.wasm.tfjs?.registerTensor === "function" &&
    typeof x.wasm.tfjs?.disposeData === "function" &&
    typeof x.dataIdMap?.get === "function" &&
    typeof x.dataIdNextNumber === "number"
  );
}

const sizeOf = (shape: readonly number[]) => shape.reduce((a, s) => a * s, 1);

function swapLastTwo(rank: number): number[] {
  const perm = Array.from({ length: rank }, (_, i) => i);
  perm[rank - 1] = rank - 2;
  perm[rank - 2] = rank - 1;
  return perm;
}

const wrapped = new WeakMap<object, (...args: unknown[]) => void>();

/**
 * BatchMatMul for tfjs-backend-wasm that keeps every product on XNNPACK.
 *
 * tfjs-backend-wasm 4.22 runs a matmul through XNNPACK's fully-connected operator only when
 * both operands have batch size 1 and neither is transposed; anything else (attention's
 * [B·H, T, hd] products, every transposed operand of a matmul gradient) goes to a scalar
 * blocked loop that is 10-40x slower. This kernel transposes operands explicitly, then runs
 * each batch slice through the XNNPACK path by registering zero-copy views of the slices
 * with the wasm module (`registerTensor(id, size, offset)` on the existing heap memory).
 * Plain 2-D products go to the original kernel, which caches the packed weights per tensor.
 * Broadcast batch dimensions (one side with batch 1) are supported; other broadcasts fall
 * back to the original kernel.
 */
export function batchedMatMulKernel(orig: KernelConfig): KernelFunc {
  return (args) => {
    const attrs = args.attrs as NamedAttrMap & { transposeA?: boolean; transposeB?: boolean };
    const backend = args.backend as unknown;
    if (!hasWasmInternals(backend)) return orig.kernelFunc(args);
    const transpose = getKernel("Transpose", "wasm")!.kernelFunc;
    const temps: TensorInfo[] = [];
    const explicit = (x: TensorInfo): TensorInfo => {
      const t = transpose({ inputs: { x }, backend: args.backend, attrs: { perm: swapLastTwo(x.shape.length) } }) as TensorInfo;
      temps.push(t);
      return t;
    };
    let a = args.inputs.a as TensorInfo;
    let b = args.inputs.b as TensorInfo;
    try {
      if (attrs.transposeA) a = explicit(a);
      if (attrs.transposeB) b = explicit(b);
      const plainAttrs = { ...attrs, transposeA: false, transposeB: false };
      const outerA = a.shape.slice(0, -2);
      const outerB = b.shape.slice(0, -2);
      const nA = sizeOf(outerA);
      const nB = sizeOf(outerB);
      if ((nA === 1 && nB === 1) || (nA !== nB && nA !== 1 && nB !== 1) || a.dtype !== "float32" || b.dtype !== "float32") {
        return orig.kernelFunc({ inputs: { a, b }, backend: args.backend, attrs: plainAttrs });
      }
      const M = a.shape[a.shape.length - 2];
      const K = a.shape[a.shape.length - 1];
      const N = b.shape[b.shape.length - 1];
      const outer = broadcast_util.assertAndGetBroadcastShape(outerA, outerB);
      if (b.shape[b.shape.length - 2] !== K) {
        throw new Error(
          `Error in matMul: inner shapes (${K}) and (${b.shape[b.shape.length - 2]}) of Tensors with shapes ${a.shape} and ${b.shape} must match.`,
        );
      }
      const out = backend.makeOutput([...outer, M, N], "float32");
      const batch = Math.max(nA, nB);
      if (batch === 0 || M === 0 || N === 0) return out;
      if (K === 0) return orig.kernelFunc({ inputs: { a, b }, backend: args.backend, attrs: plainAttrs });
      let mm = wrapped.get(backend.wasm);
      if (!mm) {
        mm = backend.wasm.cwrap("BatchMatMul", null, ["number", "array", "number", "number", "array", "number", "number", "number", "number"]);
        wrapped.set(backend.wasm, mm);
      }
      const aOff = backend.dataIdMap.get(a.dataId)!.memoryOffset;
      const bOff = backend.dataIdMap.get(b.dataId)!.memoryOffset;
      const oOff = backend.dataIdMap.get(out.dataId)!.memoryOffset;
      const aShape = new Uint8Array(new Int32Array([1, M, K]).buffer);
      const bShape = new Uint8Array(new Int32Array([1, K, N]).buffer);
      const { tfjs } = backend.wasm;
      const view = (offset: number, size: number): number => {
        const id = backend.dataIdNextNumber++;
        tfjs.registerTensor(id, size, offset);
        return id;
      };
      // A shared right operand keeps one view, so XNNPACK packs it once for every slice.
      const sharedB = nB === 1 ? view(bOff, K * N) : 0;
      try {
        for (let i = 0; i < batch; i++) {
          const aId = view(aOff + 4 * M * K * (nA === 1 ? 0 : i), M * K);
          const bId = sharedB || view(bOff + 4 * K * N * i, K * N);
          const oId = view(oOff + 4 * M * N * i, M * N);
          mm(aId, aShape, 3, bId, bShape, 3, 0, 0, oId);
          // Disposing a view on the wasm side drops its cached XNNPACK operator; the memory
          // belongs to the parent tensors and is not freed.
          tfjs.disposeData(aId);
          tfjs.disposeData(oId);
          if (!sharedB) tfjs.disposeData(bId);
        }
      } finally {
        if (sharedB) tfjs.disposeData(sharedB);
      }
      return out;
    } finally {
      for (const t of temps) backend.disposeData(t.dataId, true);
    }
  };
}
