/**
 * @midtrain/native-blas — single-precision matrix products on the machine's BLAS (OpenBLAS)
 * for Node, through a small Node-API addon that is compiled from `native/midtrain_blas.c` the
 * first time it is needed (a C compiler is the only build requirement: the Node-API headers come
 * from the `node-api-headers` package, and the BLAS library is opened at run time).
 *
 * `@midtrain/backend` uses it to run tfjs-backend-wasm's matmuls in place on the wasm heap.
 */
import { createHash, randomBytes } from "node:crypto";
import { execFileSync } from "node:child_process";
import { accessSync, constants, existsSync, mkdirSync, readFileSync, renameSync, rmSync } from "node:fs";
import { createRequire } from "node:module";
import { homedir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { threadId } from "node:worker_threads";
import { fileURLToPath } from "node:url";

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
  layerNormForward(R: number, C: number, x: Float32Array, gamma: Float32Array, beta: Float32Array, eps: number, y: Float32Array, mean: Float32Array, rstd: Float32Array): void;
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
  rotary(R: number, T: number, D: number, headDim: number, half: number, x: Float32Array, cos: Float32Array, sin: Float32Array, out: Float32Array, grad: boolean): void;
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

export interface LoadOptions {
  /** Environment to read MIDTRAIN_BLAS_LIB / MIDTRAIN_NATIVE_BLAS_DIR / CC from (default process.env). */
  env?: Record<string, string | undefined>;
  /** BLAS library to open (path or soname). Default: MIDTRAIN_BLAS_LIB, else libopenblas.so.0 and friends. */
  library?: string;
  /** Compile the addon when no built copy exists (default true). */
  build?: boolean;
  /** Where a compiled addon is looked for and written. Default: MIDTRAIN_NATIVE_BLAS_DIR, the package's build/ folder, then ~/.cache/midtrain. */
  cacheDir?: string;
  /** C compiler (default: CC, else cc, gcc, clang). */
  compiler?: string;
  /** Threads for the BLAS library (default: leave the library's own default). */
  threads?: number;
}

/** Why the native path cannot be used here, with what to do about it. */
export class NativeBlasUnavailableError extends Error {
  override name = "NativeBlasUnavailableError";
  constructor(
    message: string,
    /** `build`: no addon and it could not be compiled; `library`: no usable BLAS library. */
    readonly stage: "build" | "library",
  ) {
    super(message);
  }
}

export const LIBRARY_HINT =
  "install OpenBLAS (Debian/Ubuntu: apt-get install libopenblas0-pthread; macOS: brew install openblas) or set MIDTRAIN_BLAS_LIB to a CBLAS library";
export const COMPILER_HINT = "install a C compiler (Debian/Ubuntu: apt-get install gcc; macOS: xcode-select --install) or set CC";

function packageRoot(): string {
  // src/index.ts in the workspace, dist/index.{js,cjs} when installed: the root is one level up.
  const here = typeof __dirname === "string" ? __dirname : dirname(fileURLToPath(import.meta.url));
  return resolve(here, "..");
}

const SOURCE_NAME = "native/midtrain_blas.c";

/** Compiler flags after the source and output (platform-specific linking). */
function compileFlags(include: string, src: string, out: string): string[] {
  // -fno-trapping-math / -fno-math-errno let the element-wise loops vectorize (no FP traps or errno
  // to preserve); they do not change any IEEE result.
  const flags = ["-O3", "-fno-trapping-math", "-fno-math-errno", "-shared", "-fPIC", "-I", include, src, "-o", out];
  if (process.platform === "darwin") flags.push("-undefined", "dynamic_lookup");
  else flags.push("-ldl");
  flags.push("-lm");
  return flags;
}

/** The addon's file name: it changes with the C source, the compiler flags, the platform and the architecture. */
export function addonFileName(root = packageRoot()): string {
  const src = readFileSync(join(root, SOURCE_NAME));
  const h = createHash("sha256")
    .update(src)
    .update(compileFlags("", "", "").join(" "))
    .update(`${process.platform}-${process.arch}`)
    .digest("hex");
  return `midtrain_blas-${h.slice(0, 12)}.node`;
}

function cacheDirs(opts: LoadOptions, root: string): string[] {
  const env = opts.env ?? process.env;
  if (opts.cacheDir) return [opts.cacheDir];
  if (env.MIDTRAIN_NATIVE_BLAS_DIR) return [env.MIDTRAIN_NATIVE_BLAS_DIR];
  const home = env.XDG_CACHE_HOME || join(env.HOME || homedir(), ".cache");
  return [join(root, "build"), join(home, "midtrain", "native-blas")];
}

function writable(dir: string): boolean {
  try {
    mkdirSync(dir, { recursive: true });
    accessSync(dir, constants.W_OK);
    return true;
  } catch {
    return false;
  }
}

function nodeApiInclude(): string {
  const require = createRequire(join(packageRoot(), "package.json"));
  try {
    const dir = (require("node-api-headers") as { include_dir: string }).include_dir;
    if (existsSync(join(dir, "node_api.h"))) return dir;
  } catch {
    // fall through to Node's own headers
  }
  const own = resolve(process.execPath, "../../include/node");
  if (existsSync(join(own, "node_api.h"))) return own;
  throw new NativeBlasUnavailableError("Node-API headers not found (the node-api-headers package is missing and Node ships no include/node)", "build");
}

/**
 * Compiles the addon into `dir` (written to a temporary name, then renamed, so a failed or
 * concurrent build never leaves a partial file behind). Returns the addon's path.
 */
export function buildAddon(dir: string, opts: Pick<LoadOptions, "compiler" | "env"> = {}): string {
  const env = opts.env ?? process.env;
  const root = packageRoot();
  const out = join(dir, addonFileName(root));
  mkdirSync(dir, { recursive: true });
  // Unique per process and thread (worker_threads may build at the same time).
  const tmp = `${out}.${process.pid}.${threadId}.${randomBytes(4).toString("hex")}.tmp`;
  const include = nodeApiInclude();
  const compilers = opts.compiler ? [opts.compiler] : env.CC ? [env.CC] : ["cc", "gcc", "clang"];
  const flags = compileFlags(include, join(root, SOURCE_NAME), tmp);
  const failures: string[] = [];
  for (const cc of compilers) {
    try {
      execFileSync(cc, flags, { stdio: "pipe" });
      renameSync(tmp, out);
      return out;
    } catch (err) {
      rmSync(tmp, { force: true });
      const e = err as NodeJS.ErrnoException & { stderr?: Buffer };
      const text = e.stderr?.length ? String(e.stderr) : String(e.message);
      failures.push(e.code === "ENOENT" ? `${cc}: not found` : `${cc}: ${text.trim().split("\n").slice(0, 3).join(" ")}`);
    }
  }
  throw new NativeBlasUnavailableError(`the native BLAS addon could not be compiled (${failures.join("; ")}); ${COMPILER_HINT}`, "build");
}

/** Finds the compiled addon, compiling it when allowed. */
export function addonPath(opts: LoadOptions = {}): string {
  const root = packageRoot();
  const name = addonFileName(root);
  const dirs = cacheDirs(opts, root);
  for (const d of dirs) if (existsSync(join(d, name))) return join(d, name);
  if (opts.build === false) {
    throw new NativeBlasUnavailableError(`the native BLAS addon is not built (looked in ${dirs.join(", ")}); load with build: true`, "build");
  }
  const target = dirs.find(writable);
  if (!target) throw new NativeBlasUnavailableError(`no writable folder for the native BLAS addon (tried ${dirs.join(", ")}); set MIDTRAIN_NATIVE_BLAS_DIR`, "build");
  return buildAddon(target, opts);
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
      throw new NativeBlasUnavailableError(`the native BLAS addon ${path} did not load: ${(err as Error).message}; rebuilding it failed: ${(err2 as Error).message}`, "build");
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
