import { BackendUnavailableError, UnknownBackendError } from "./errors.js";
import { setWasmNativeKernels } from "./kernels/wasm-native.js";
import { importOptional, isNode } from "./runtime.js";
import type { InitOptions } from "./types.js";

export const NATIVE_BLAS_PACKAGE = "@midtrain/native-blas";
export const NATIVE_BLAS_ENV_VAR = "MIDTRAIN_NATIVE_BLAS";
export const BLAS_THREADS_ENV_VAR = "MIDTRAIN_BLAS_THREADS";

type NativeBlasModule = Pick<typeof import("@midtrain/native-blas"), "loadNativeBlas">;
type LoadedBlas = ReturnType<NativeBlasModule["loadNativeBlas"]>;

let loaded: LoadedBlas | undefined;
/** Why loading failed, per module loader: automatic mode does not retry (nor recompile) every call. */
const failures = new WeakMap<object, string>();

/** `auto`, true or false from InitOptions.nativeBlas, else MIDTRAIN_NATIVE_BLAS, else auto. */
export function nativeBlasMode(opts: Pick<InitOptions, "nativeBlas">, env: Record<string, string | undefined>): "auto" | boolean {
  if (opts.nativeBlas !== undefined) return opts.nativeBlas;
  const v = env[NATIVE_BLAS_ENV_VAR]?.trim().toLowerCase();
  if (v === undefined || v === "" || v === "auto") return "auto";
  if (["1", "true", "on", "yes"].includes(v)) return true;
  if (["0", "false", "off", "no"].includes(v)) return false;
  throw new UnknownBackendError(`${NATIVE_BLAS_ENV_VAR}='${env[NATIVE_BLAS_ENV_VAR]}' is not one of auto, 1, 0`);
}

/** Threads to set: the option, else MIDTRAIN_BLAS_THREADS, else (unless OPENBLAS_NUM_THREADS is set) every core. */
function threadCount(opts: Pick<InitOptions, "blasThreads">, env: Record<string, string | undefined>, cores: number): number | undefined {
  if (opts.blasThreads === undefined && !env[BLAS_THREADS_ENV_VAR] && env.OPENBLAS_NUM_THREADS) return undefined;
  const raw = opts.blasThreads ?? (env[BLAS_THREADS_ENV_VAR] ? Number(env[BLAS_THREADS_ENV_VAR]) : cores);
  if (!Number.isInteger(raw) || raw < 1) {
    throw new UnknownBackendError(
      `${opts.blasThreads !== undefined ? "blasThreads" : BLAS_THREADS_ENV_VAR} must be a whole number ≥ 1 (got '${opts.blasThreads ?? env[BLAS_THREADS_ENV_VAR]}')`,
    );
  }
  return raw;
}

/**
 * Chooses the wasm backend's matmul: the machine's BLAS through @midtrain/native-blas (Node
 * only; in `auto` mode when it loads, with a one-line notice when it does not) or tfjs's own
 * XNNPACK. Returns the facts for DeviceInfo.details.
 */
export async function configureWasmMatMul(
  opts: InitOptions,
  env: Record<string, string | undefined>,
  notice: (m: string) => void,
): Promise<Record<string, string | number | boolean>> {
  const mode = nativeBlasMode(opts, env);
  if (mode === false || !isNode()) {
    if (mode === true) throw new BackendUnavailableError("wasm", "native BLAS matmuls need Node.js (this is a browser)");
    setWasmNativeKernels(null);
    return { matmul: "xnnpack" };
  }
  const os = await importOptional<{ availableParallelism?: () => number; cpus: () => unknown[] }>("node:os");
  const threads = threadCount(opts, env, os.availableParallelism?.() ?? os.cpus().length);
  const loader = opts.loadModule ?? importOptional;
  if (!loaded) {
    if (mode === "auto" && failures.has(loader)) {
      setWasmNativeKernels(null);
      return { matmul: "xnnpack" };
    }
    try {
      const mod = (await loader(NATIVE_BLAS_PACKAGE)) as NativeBlasModule;
      loaded = mod.loadNativeBlas({ env });
    } catch (err) {
      const reason = err instanceof Error ? err.message : String(err);
      setWasmNativeKernels(null);
      if (mode === true) {
        throw new BackendUnavailableError("wasm", `native BLAS matmuls were required (${NATIVE_BLAS_ENV_VAR}=1 or nativeBlas: true) but ${reason}`, err);
      }
      if (!failures.has(loader)) notice(`native BLAS unavailable, wasm matmuls run on XNNPACK (about 2x slower): ${reason}`);
      failures.set(loader, reason);
      return { matmul: "xnnpack" };
    }
  }
  if (threads !== undefined) loaded.setThreads(threads);
  setWasmNativeKernels(loaded);
  const actual = loaded.threads();
  return { matmul: "native-blas", blasLibrary: loaded.library, blasThreads: actual > 0 ? actual : (threads ?? -1), blasConfig: loaded.config };
}
