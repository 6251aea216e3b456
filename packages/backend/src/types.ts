import type * as tfc from "@tensorflow/tfjs-core";

/** The backends midtrain knows how to start, in automatic order. */
export const BACKENDS = ["cuda", "webgpu", "wasm", "cpu"] as const;
export type BackendName = (typeof BACKENDS)[number];

export type TF = typeof tfc;

export interface DeviceInfo {
  /** midtrain's name for the backend. */
  backend: BackendName;
  /** The name tfjs registered the backend under (`tensorflow` for cuda). */
  tfjsBackend: string;
  /** Human-readable adapter or runtime description. */
  description: string;
  vendor?: string;
  architecture?: string;
  /** True when the computation runs in software (Mesa llvmpipe, SwiftShader, plain JS, wasm on the CPU). */
  isSoftware: boolean;
  /** True when the device is a CPU (wasm, cpu, or a software WebGPU adapter). */
  isCpu: boolean;
  /** The adapter's own limits (WebGPU only); requested as the device's required limits. */
  limits?: Record<string, number>;
  /** Features the adapter offers (WebGPU only). */
  features?: string[];
  /** Extra facts: wasm SIMD/threads, Dawn backend type, ... */
  details?: Record<string, string | number | boolean>;
}

export interface InitOptions {
  /**
   * A backend name, or `auto` (default) for cuda → webgpu → wasm → cpu.
   * The `MIDTRAIN_BACKEND` environment variable overrides `auto` (not an explicit choice).
   */
  prefer?: BackendName | "auto";
  /** Environment to read `MIDTRAIN_*` variables from (defaults to `process.env` in Node). */
  env?: Record<string, string | undefined>;
  /** Receives one-line notices (a fallback in automatic mode, a software adapter). Defaults to console.warn. */
  onNotice?: (message: string) => void;
  /** For wasm in a browser bundle: where the .wasm files are served from (see tfjs setWasmPaths). */
  wasmPaths?: string | Record<string, string>;
  /** WebGPU in Node: `auto` (default GPU adapter, else Mesa OpenGL compatibility), `gpu` or `opengl`. */
  webgpuAdapter?: "auto" | "gpu" | "opengl";
  /**
   * wasm in Node: run matmuls on the machine's BLAS (OpenBLAS) through `@midtrain/native-blas`,
   * in place on the wasm heap. `auto` (default): when the addon builds and a BLAS library
   * opens, else XNNPACK with a notice; `true`: required (a BackendUnavailableError says what
   * is missing); `false`: never. The `MIDTRAIN_NATIVE_BLAS` variable (auto, 1, 0) applies
   * when this is not set.
   */
  nativeBlas?: "auto" | boolean;
  /** Threads of the native BLAS (default `MIDTRAIN_BLAS_THREADS`, else every core). */
  blasThreads?: number;
  /**
   * Loads the optional Node packages (`@tensorflow/tfjs-node-gpu`, `webgpu`, `@midtrain/native-blas`). Defaults to a
   * dynamic import; tests and unusual environments can substitute their own.
   */
  loadModule?: (name: string) => Promise<unknown>;
}

export interface InitResult {
  /** The tfjs-core namespace, with the chosen backend active. */
  tf: TF;
  backend: BackendName;
  device: DeviceInfo;
  /** Notices emitted while choosing (also passed to onNotice). */
  notices: string[];
}
