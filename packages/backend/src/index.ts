/**
 * The public API of `@midtrain/backend`: `initBackend` and what it takes and returns,
 * `probeBackend`, `requiredBackends`, the errors, and the fused-kernel names. Importing it
 * registers the kernels it adds to tfjs (see the README); everything not listed here is internal.
 */
import * as tf from "@tensorflow/tfjs-core";
// Every gradient and the chained tensor methods (x.add(y), ...): tfjs-core's Node entry registers
// neither. These two files are ES modules with extensionless imports that Node cannot load, so
// tsup bundles them into dist (see tsup.config.ts); bundlers and vitest resolve them as they are.
// (This replaces the @tensorflow/tfjs umbrella, which also pulled in layers, converter, data and
// webgl: about 200 MB of install that training never uses.)
import "@tensorflow/tfjs-core/dist/register_all_gradients";
import "@tensorflow/tfjs-core/dist/public/chained_ops/register_all_chained_ops";
import "@tensorflow/tfjs-backend-cpu";
import "@tensorflow/tfjs-backend-wasm";
import { setWasmPaths } from "@tensorflow/tfjs-backend-wasm";
import { patchWasmKernels } from "./kernels/wasm.js";
import { registerAdamWKernels } from "./kernels/adamw.js";
import { startCuda } from "./cuda.js";
import { startWebgpu } from "./webgpu.js";
import { configureWasmMatMul } from "./native.js";
import { BackendUnavailableError } from "./errors.js";
import { defaultEnv, isNode } from "./runtime.js";
import { backendOrder } from "./select.js";
import type { BackendName, DeviceInfo, InitOptions, InitResult, TF } from "./types.js";

export { BACKENDS, type BackendName, type DeviceInfo, type InitOptions, type InitResult, type TF } from "./types.js";
export { BackendError, BackendUnavailableError, UnknownBackendError } from "./errors.js";
export { requiredBackends } from "./select.js";
// The names (and contracts) of the fused kernels registered here; model and trainer look them up by name.
export { type AdamWUpdateAttrs, FUSED_KERNELS } from "@midtrain/common";

patchWasmKernels();
registerAdamWKernels();

/** Backends started in this process, so switching back does not start a second device. */
const started = new Map<BackendName, DeviceInfo>();

async function startWasm(opts: InitOptions, env: Record<string, string | undefined>, notice: (m: string) => void): Promise<DeviceInfo> {
  if (opts.wasmPaths) setWasmPaths(opts.wasmPaths as string);
  patchWasmKernels();
  registerAdamWKernels();
  let ok = false;
  try {
    ok = await tf.setBackend("wasm");
  } catch (err) {
    throw new BackendUnavailableError("wasm", `backend 'wasm' failed to start: ${(err as Error).message}`, err);
  }
  if (!ok) {
    throw new BackendUnavailableError(
      "wasm",
      "backend 'wasm' failed to start (in a browser bundle pass `wasmPaths` pointing at the served tfjs-backend-wasm .wasm files)",
    );
  }
  await tf.ready();
  const simd = Boolean(await tf.env().getAsync("WASM_HAS_SIMD_SUPPORT"));
  const threads = Boolean(await tf.env().getAsync("WASM_HAS_MULTITHREAD_SUPPORT"));
  const matmul = await configureWasmMatMul(opts, env, notice);
  const blas = matmul.matmul === "native-blas" ? `; matmuls on ${matmul.blasLibrary} (${matmul.blasThreads} thread${matmul.blasThreads === 1 ? "" : "s"})` : "";
  return {
    backend: "wasm",
    tfjsBackend: "wasm",
    description: `WebAssembly${simd ? " SIMD" : ""}${threads && !isNode() ? " multi-threaded" : ", one thread"}${blas}`,
    isSoftware: true,
    isCpu: true,
    details: { simd, threads: threads && !isNode(), ...matmul },
  };
}

async function startCpu(): Promise<DeviceInfo> {
  await tf.setBackend("cpu");
  await tf.ready();
  return { backend: "cpu", tfjsBackend: "cpu", description: "plain JavaScript (tfjs-backend-cpu)", isSoftware: true, isCpu: true };
}

/**
 * Chooses and starts a tfjs backend. With `prefer` (or `MIDTRAIN_BACKEND`) naming one backend,
 * a failure throws a BackendUnavailableError that says how to fix it; in automatic mode each
 * failure is a one-line notice and the next backend is tried (cuda → webgpu → wasm → cpu).
 */
export async function initBackend(opts: InitOptions = {}): Promise<InitResult> {
  const env = opts.env ?? defaultEnv();
  const order = backendOrder(opts);
  const notices: string[] = [];
  const notice = (m: string) => {
    notices.push(m);
    (opts.onNotice ?? ((s: string) => console.warn(`[midtrain] ${s}`)))(m);
  };
  for (const name of order) {
    const cached = started.get(name);
    // wasm is set up again on every call: its matmul choice (native BLAS or not) may differ.
    if (cached && name !== "wasm" && tf.findBackendFactory(cached.tfjsBackend)) {
      // Started before in this process: switch back instead of creating a second device.
      await tf.setBackend(cached.tfjsBackend);
      await tf.ready();
      if (name === "webgpu" && cached.isSoftware && order.length > 1) continue;
      return { tf: tf as TF, backend: name, device: cached, notices };
    }
    try {
      let device: DeviceInfo;
      if (name === "cuda") device = await startCuda(tf as TF, opts.loadModule);
      else if (name === "webgpu") device = await startWebgpu(tf as TF, opts, env);
      else if (name === "wasm") device = await startWasm(opts, env, notice);
      else device = await startCpu();
      started.set(name, device);
      if (name === "webgpu" && device.isSoftware && order.length > 1) {
        // A software WebGPU adapter is slower than wasm for training; automatic mode moves on.
        notice(`webgpu adapter '${device.description}' is software-only; trying the next backend`);
        continue;
      }
      return { tf: tf as TF, backend: name, device, notices };
    } catch (err) {
      if (order.length === 1) throw err;
      const msg = err instanceof Error ? err.message : String(err);
      notice(`${name} unavailable: ${msg.split("\n")[0]}`);
    }
  }
  throw new BackendUnavailableError("cpu", `no backend could start (${notices.join("; ")})`);
}

/**
 * Whether a backend can start here, without leaving it active: the previously active
 * backend is restored. Tests use it to tell "no Mesa/GPU on this machine" from a failure.
 */
export async function probeBackend(
  name: BackendName,
  opts: Omit<InitOptions, "prefer"> = {},
): Promise<{ ok: true; device: DeviceInfo } | { ok: false; reason: string }> {
  const previous = tf.getBackend();
  try {
    const r = await initBackend({ ...opts, prefer: name, onNotice: () => {} });
    return { ok: true, device: r.device };
  } catch (err) {
    return { ok: false, reason: err instanceof Error ? err.message : String(err) };
  } finally {
    if (previous && previous !== tf.getBackend()) await tf.setBackend(previous);
  }
}
