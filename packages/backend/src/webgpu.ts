import type { DeviceInfo, InitOptions, TF } from "./types.js";
import { BackendUnavailableError } from "./errors.js";
import { guardWebgpuSplitKMatMul } from "./kernels/webgpu-matmul.js";
import { untimedWhenNoTimestamps } from "./kernels/webgpu-timer.js";
import { importOptional, isNode } from "./runtime.js";

/** The one command that adds WebGPU in Node: Dawn is an optional peer dependency of this package. */
const WEBGPU_INSTALL = "npm install webgpu@^0.6.2";

const SOFTWARE = /llvmpipe|lavapipe|swiftshader|softpipe|software|mesa offscreen|basic render/i;

const LIMIT_NAMES = [
  "maxBufferSize",
  "maxStorageBufferBindingSize",
  "maxComputeWorkgroupStorageSize",
  "maxComputeInvocationsPerWorkgroup",
  "maxComputeWorkgroupSizeX",
  "maxComputeWorkgroupSizeY",
  "maxComputeWorkgroupSizeZ",
  "maxComputeWorkgroupsPerDimension",
  "maxStorageBuffersPerShaderStage",
  "maxUniformBufferBindingSize",
  "maxBindGroups",
] as const;

interface NodeGpu {
  gpu: GPU;
  dawnBackend: string;
}

/** WebGPU in Node through Dawn (the `webgpu` package): a GPU adapter first, else Mesa OpenGL in compatibility mode. */
async function nodeGpu(
  mode: NonNullable<InitOptions["webgpuAdapter"]>,
  env: Record<string, string | undefined>,
  load: (name: string) => Promise<unknown>,
): Promise<{ node: NodeGpu; adapter: GPUAdapter }> {
  let mod: { create: (flags: string[]) => GPU; globals: Record<string, unknown> };
  try {
    mod = (await load("webgpu")) as typeof mod;
  } catch (err) {
    const why = (err as Error).message.split("\n")[0];
    const missing = /Cannot find (package|module) 'webgpu'/.test(why);
    throw new BackendUnavailableError(
      "webgpu",
      missing
        ? `backend 'webgpu' in Node needs the optional package 'webgpu' (Dawn), which is not installed: install webgpu with \`${WEBGPU_INSTALL}\` (or pnpm add / yarn add webgpu)`
        : `backend 'webgpu' in Node needs the 'webgpu' package (Dawn), which failed to load: ${why}`,
      err,
    );
  }
  // tfjs-backend-webgpu reads GPUBufferUsage & co. from the global scope.
  for (const [k, v] of Object.entries(mod.globals)) {
    if (!(k in globalThis)) (globalThis as Record<string, unknown>)[k] = v;
  }
  const tries: Array<{ dawnBackend: string; flags: string[]; request: GPURequestAdapterOptions }> = [];
  if (mode !== "opengl") tries.push({ dawnBackend: "default", flags: [], request: { powerPreference: "high-performance" } });
  if (mode !== "gpu") {
    // Mesa's EGL needs a platform without a display server.
    if (env.EGL_PLATFORM === undefined && typeof process !== "undefined") process.env.EGL_PLATFORM = "surfaceless";
    tries.push({
      dawnBackend: "opengl",
      flags: ["backend=opengl"],
      request: { featureLevel: "compatibility" } as GPURequestAdapterOptions,
    });
  }
  const failures: string[] = [];
  for (const t of tries) {
    try {
      const gpu = mod.create(t.flags);
      const adapter = await gpu.requestAdapter(t.request);
      if (adapter) return { node: { gpu, dawnBackend: t.dawnBackend }, adapter };
      failures.push(`${t.dawnBackend}: no adapter`);
    } catch (err) {
      failures.push(`${t.dawnBackend}: ${(err as Error).message.split("\n")[0]}`);
    }
  }
  const hint =
    mode === "gpu"
      ? "no GPU adapter found: check the GPU driver and Vulkan ICD (vulkaninfo)"
      : "without a GPU, install Mesa's EGL/GL drivers: apt-get install libegl1 libegl-mesa0 libgles2 libgl1-mesa-dri";
  throw new BackendUnavailableError("webgpu", `backend 'webgpu' found no usable adapter (${failures.join("; ")}); ${hint}`);
}

function readLimits(adapter: GPUAdapter): Record<string, number> {
  const limits: Record<string, number> = {};
  for (const name of LIMIT_NAMES) {
    const v = (adapter.limits as unknown as Record<string, number | undefined>)[name];
    if (typeof v === "number") limits[name] = v;
  }
  return limits;
}

/** Starts tfjs-backend-webgpu on the best adapter, requesting the adapter's own limits. */
export async function startWebgpu(tf: TF, opts: InitOptions, env: Record<string, string | undefined>): Promise<DeviceInfo> {
  let adapter: GPUAdapter | null = null;
  let dawnBackend: string | undefined;
  const nav = (globalThis as { navigator?: { gpu?: GPU } }).navigator;
  if (nav?.gpu && !isNode()) {
    adapter = await nav.gpu.requestAdapter({ powerPreference: "high-performance" });
    if (!adapter) {
      throw new BackendUnavailableError("webgpu", "backend 'webgpu': navigator.gpu gave no adapter (WebGPU disabled or blocklisted in this browser)");
    }
  } else if (isNode()) {
    const mode = opts.webgpuAdapter ?? (env.MIDTRAIN_WEBGPU_ADAPTER as InitOptions["webgpuAdapter"]) ?? "auto";
    if (!["auto", "gpu", "opengl"].includes(mode)) {
      throw new BackendUnavailableError("webgpu", `MIDTRAIN_WEBGPU_ADAPTER must be auto, gpu or opengl, got '${mode}'`);
    }
    const found = await nodeGpu(mode, env, opts.loadModule ?? importOptional);
    adapter = found.adapter;
    dawnBackend = found.node.dawnBackend;
    const g = globalThis as { navigator?: { gpu?: GPU } };
    if (!g.navigator) {
      Object.defineProperty(globalThis, "navigator", { value: { gpu: found.node.gpu }, configurable: true, writable: true });
    } else if (!g.navigator.gpu) {
      Object.defineProperty(g.navigator, "gpu", { value: found.node.gpu, configurable: true });
    }
  } else {
    throw new BackendUnavailableError("webgpu", "backend 'webgpu': this browser has no navigator.gpu (WebGPU not available)");
  }

  const limits = readLimits(adapter);
  const features = [...adapter.features].map(String);
  const wanted: GPUFeatureName[] = [];
  if (adapter.features.has("timestamp-query")) wanted.push("timestamp-query");
  const device = await adapter.requestDevice({ requiredLimits: limits, requiredFeatures: wanted });
  const info = (adapter as GPUAdapter & { info?: GPUAdapterInfo }).info;

  const { WebGPUBackend } = await import("@tensorflow/tfjs-backend-webgpu");
  // tfjs-backend-webgpu 4.22's split-K matmul is wrong for a transposed B (see the guard).
  guardWebgpuSplitKMatMul();
  // findBackendFactory (not findBackend, which would initialise the package's own factory).
  if (tf.findBackendFactory("webgpu")) tf.removeBackend("webgpu");
  tf.registerBackend(
    "webgpu",
    () => {
      const backend = new WebGPUBackend(device, info);
      // Without timestamp queries, tf.profile would keep every buffer of the profiled code alive.
      untimedWhenNoTimestamps(backend as unknown as Parameters<typeof untimedWhenNoTimestamps>[0]);
      return backend;
    },
    3,
  );
  if (!(await tf.setBackend("webgpu"))) {
    throw new BackendUnavailableError("webgpu", "backend 'webgpu' failed to initialise tfjs-backend-webgpu on the adapter");
  }
  await tf.ready();

  const description = [info?.vendor, info?.architecture, info?.device, info?.description].filter(Boolean).join(" ") || "unknown adapter";
  const isSoftware = SOFTWARE.test(description) || (adapter as GPUAdapter & { isFallbackAdapter?: boolean }).isFallbackAdapter === true;
  return {
    backend: "webgpu",
    tfjsBackend: "webgpu",
    description,
    vendor: info?.vendor || undefined,
    architecture: info?.architecture || undefined,
    isSoftware,
    isCpu: isSoftware,
    limits,
    features,
    details: dawnBackend ? { dawnBackend } : {},
  };
}
