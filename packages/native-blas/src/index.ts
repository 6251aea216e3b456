/**
 * @midtrain/native-blas — native kernels for tfjs-backend-wasm in Node: single-precision matrix
 * products on the machine's BLAS (OpenBLAS), and fused softmax cross-entropy, exact GELU,
 * LayerNorm, rotary embedding and AdamW loops over Float32Arrays. They live in a small Node-API
 * addon that is compiled from `native/midtrain_blas.c` the first time it is needed (a C compiler
 * is the only build requirement: the Node-API headers come from the `node-api-headers` package,
 * and the BLAS library is opened at run time).
 *
 * `@midtrain/backend` uses it to run tfjs-backend-wasm's matmuls and its fused kernels in place
 * on the wasm heap. The entry exports `loadNativeBlas`, `tryLoadNativeBlas`, their types and
 * `NativeBlasUnavailableError`; finding and compiling the addon is internal (./addon.ts).
 */
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { addonPath, buildAddon, type LoadOptions, packageRoot } from "./addon.js";
import { LIBRARY_HINT, NativeBlasUnavailableError } from "./errors.js";

export type { LoadOptions } from "./addon.js";
export { NativeBlasUnavailableError } from "./errors.js";

/** The addon's own functions (see native/midtrain_blas.c). */
interface Addon {
  open(path?: string): string | null;
  sgemmBatch(
    batch: number,
    transA: boolean,
    transB: boolean,
    M: number,
    N: number,
    K: number,
    A: Float32Array,
    strideA: number,
    B: Float32Array,
    strideB: number,
    C: Float32Array,
    strideC: number,
  ): void;
  setThreads(n: number): void;
  info(): { library: string; threads: number; config: string };
  xentForward(N: number, V: number, logits: Float32Array, targets: Int32Array, nll: Float32Array, lse: Float32Array): void;
  xentBackward(N: number, V: number, logits: Float32Array, targets: Int32Array, lse: Float32Array, dy: Float32Array, dlogits: Float32Array): void;
  layerNormForward(
    R: number,
    C: number,
    x: Float32Array,
    gamma: Float32Array,
    beta: Float32Array,
    eps: number,
    y: Float32Array,
    mean: Float32Array,
    rstd: Float32Array,
  ): void;
  layerNormBackward(
    R: number,
    C: number,
    x: Float32Array,
    gamma: Float32Array,
    mean: Float32Array,
    rstd: Float32Array,
    dy: Float32Array,
    dx: Float32Array,
    dgamma: Float32Array,
    dbeta: Float32Array,
  ): void;
  rotary(
    R: number,
    T: number,
    D: number,
    headDim: number,
    half: number,
    x: Float32Array,
    cos: Float32Array,
    sin: Float32Array,
    out: Float32Array,
    grad: boolean,
  ): void;
  geluForward(n: number, x: Float32Array, y: Float32Array): void;
  geluBackward(n: number, x: Float32Array, dy: Float32Array, dx: Float32Array): void;
  adamw(
    n: number,
    p: Float32Array,
    g: Float32Array,
    m: Float32Array,
    v: Float32Array,
    pOut: Float32Array,
    mOut: Float32Array,
    vOut: Float32Array,
    beta1: number,
    beta2: number,
    eps: number,
    decay: number,
    stepSize: number,
    sqrtBc2: number,
  ): void;
}

export interface NativeBlas {
  /**
   * For i < batch: C[i] = op(A[i])·op(B[i]) (row-major; op transposes when the flag is set).
   * Slice i of A starts at element i·strideA (0 = the same matrix for every i), likewise B, C.
   * Throws a RangeError (never reads or writes out of bounds) when a view is too short.
   */
  sgemmBatch: Addon["sgemmBatch"];
  /**
   * Softmax cross-entropy of N rows of V logits against `targets` (each in [0, V)): writes
   * lse[i] = log Σ_j exp(logits[i,j]) and nll[i] = lse[i] − logits[i, targets[i]].
   */
  xentForward: Addon["xentForward"];
  /** Its gradient: dlogits[i,j] = dy[i]·(exp(logits[i,j] − lse[i]) − [j = targets[i]]). */
  xentBackward: Addon["xentBackward"];
  /**
   * LayerNorm over the last axis of R rows of C: mean[r], rstd[r] = 1/√(var + eps),
   * y = (x − mean)·rstd·gamma + beta.
   */
  layerNormForward: Addon["layerNormForward"];
  /** Its gradient: dx, and dgamma/dbeta summed over the rows (overwritten, not accumulated). */
  layerNormBackward: Addon["layerNormBackward"];
  /**
   * Rotate-half rotary embedding on R rows of D = heads·headDim (row r at position r mod T; the
   * first 2·half dims of each head rotated): out = x·cos + pair(x)·sin, or with `grad` the
   * gradient dx = dy·cos + pair(dy·sin). `out` must not alias `x`.
   */
  rotary: Addon["rotary"];
  /** Exact GELU y = 0.5·x·(1 + erf(x/√2)) over n floats. */
  geluForward: Addon["geluForward"];
  /** Its gradient dx = dy·(Φ(x) + x·φ(x)). */
  geluBackward: Addon["geluBackward"];
  /**
   * One AdamW step over n floats: M = β1·m + (1−β1)·g, V = β2·v + (1−β2)·g²,
   * P = decay·p − stepSize·M / (√V / sqrtBc2 + eps). Outputs may alias inputs.
   */
  adamw: Addon["adamw"];
  /** Threads the BLAS library uses from now on (OpenBLAS; ignored by libraries that cannot set it). */
  setThreads(n: number): void;
  /** Threads the BLAS library uses now (-1 when the library cannot say). */
  threads(): number;
  /** The library that was opened (a soname or a path). */
  library: string;
  /** OpenBLAS's build description (kernel, threading), or "" for other libraries. */
  config: string;
  /** The compiled addon file. */
  addonPath: string;
}

/**
 * Loads the addon (compiling it on first use) and opens the BLAS library. Throws a
 * NativeBlasUnavailableError that says what to install when either step fails.
 */
export function loadNativeBlas(opts: LoadOptions = {}): NativeBlas {
  const env = opts.env ?? process.env;
  let path = addonPath(opts);
  const require = createRequire(join(packageRoot(), "package.json"));
  let addon: Addon;
  try {
    addon = require(path) as Addon;
  } catch (err) {
    // A cached build that does not load (copied from another machine, truncated by a full disk)
    // is rebuilt once in place, when building is allowed.
    if (opts.build === false) throw new NativeBlasUnavailableError(`the native BLAS addon ${path} did not load: ${(err as Error).message}`, "build");
    try {
      path = buildAddon(dirname(path), opts);
      addon = require(path) as Addon;
    } catch (err2) {
      throw new NativeBlasUnavailableError(
        `the native BLAS addon ${path} did not load: ${(err as Error).message}; rebuilding it failed: ${(err2 as Error).message}`,
        "build",
      );
    }
  }
  const lib = opts.library ?? env.MIDTRAIN_BLAS_LIB;
  const error = addon.open(lib || undefined);
  if (error) throw new NativeBlasUnavailableError(`no BLAS library: ${error}; ${LIBRARY_HINT}`, "library");
  const info = addon.info();
  if (lib && info.library !== lib) {
    throw new NativeBlasUnavailableError(`this process already opened ${info.library}; a second BLAS library (${lib}) cannot be opened`, "library");
  }
  if (opts.threads !== undefined) addon.setThreads(opts.threads);
  return {
    sgemmBatch: addon.sgemmBatch,
    xentForward: addon.xentForward,
    xentBackward: addon.xentBackward,
    layerNormForward: addon.layerNormForward,
    layerNormBackward: addon.layerNormBackward,
    rotary: addon.rotary,
    geluForward: addon.geluForward,
    geluBackward: addon.geluBackward,
    adamw: addon.adamw,
    setThreads: (n) => addon.setThreads(n),
    threads: () => addon.info().threads,
    library: info.library,
    config: info.config.trim(),
    addonPath: path,
  };
}

/** loadNativeBlas without the throw: `{ blas }` or `{ reason }`. */
export function tryLoadNativeBlas(opts: LoadOptions = {}): { blas: NativeBlas; reason?: undefined } | { blas?: undefined; reason: string } {
  try {
    return { blas: loadNativeBlas(opts) };
  } catch (err) {
    return { reason: err instanceof Error ? err.message : String(err) };
  }
}
