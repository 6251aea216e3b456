import { describe, expect, it } from "vitest";
import { CUDA_PACKAGE } from "../src/cuda.js";
import { BackendUnavailableError, initBackend, UnknownBackendError } from "../src/index.js";
import { backendOrder, parseBackendName } from "../src/select.js";

const missing = async (name: string) => {
  throw new Error(`Cannot find package '${name}'`);
};

describe("backend names and order", () => {
  it("automatic order is cuda → webgpu → wasm → cpu", () => {
    expect(backendOrder({ env: {} })).toEqual(["cuda", "webgpu", "wasm", "cpu"]);
  });
  it("MIDTRAIN_BACKEND overrides automatic mode but not an explicit choice", () => {
    expect(backendOrder({ env: { MIDTRAIN_BACKEND: "wasm" } })).toEqual(["wasm"]);
    expect(backendOrder({ prefer: "cpu", env: { MIDTRAIN_BACKEND: "wasm" } })).toEqual(["cpu"]);
    expect(backendOrder({ env: { MIDTRAIN_BACKEND: "WebGPU" } })).toEqual(["webgpu"]);
  });
  it("unknown names suggest the closest one", () => {
    expect(() => parseBackendName("wsam")).toThrow(UnknownBackendError);
    expect(() => parseBackendName("wsam")).toThrow(/did you mean 'wasm'/);
    expect(() => backendOrder({ env: { MIDTRAIN_BACKEND: "gpu" } })).toThrow(/MIDTRAIN_BACKEND 'gpu'/);
    expect(() => parseBackendName("tpu-pod-v5")).toThrow(/choose one of: auto, cuda, webgpu, wasm, cpu/);
  });
});

describe("fallback", () => {
  it("explicit cuda without tfjs-node-gpu names the package and how to install it", async () => {
    const err = await initBackend({ prefer: "cuda", loadModule: missing }).catch((e) => e);
    expect(err).toBeInstanceOf(BackendUnavailableError);
    expect(err.message).toContain(CUDA_PACKAGE);
    expect(err.message).toMatch(/pnpm add @tensorflow\/tfjs-node-gpu/);
  });
  it("the real lazy import of tfjs-node-gpu fails cleanly here (it is not installed)", async () => {
    const err = await initBackend({ prefer: "cuda" }).catch((e) => e);
    expect(err).toBeInstanceOf(BackendUnavailableError);
    expect(err.message).toContain(CUDA_PACKAGE);
  });
  it("automatic mode with no tfjs-node-gpu and no GPU falls through to wasm with one-line notices", async () => {
    const notices: string[] = [];
    const noGpu = async (name: string) => {
      if (name === "webgpu") {
        return {
          globals: {},
          create: () => ({ requestAdapter: async () => null }),
        };
      }
      return missing(name);
    };
    const r = await initBackend({ env: {}, loadModule: noGpu, nativeBlas: false, onNotice: (m) => notices.push(m) });
    expect(r.backend).toBe("wasm");
    expect(r.tf.getBackend()).toBe("wasm");
    expect(notices).toHaveLength(2);
    expect(notices[0]).toMatch(/^cuda unavailable: .*tfjs-node-gpu/);
    expect(notices[1]).toMatch(/^webgpu unavailable: .*no usable adapter/);
    for (const n of notices) expect(n).not.toContain("\n");
  });
  it("explicit webgpu with no adapter says what to install", async () => {
    const noAdapter = async () => ({ globals: {}, create: () => ({ requestAdapter: async () => null }) });
    const err = await initBackend({ prefer: "webgpu", loadModule: noAdapter, env: {} }).catch((e) => e);
    expect(err).toBeInstanceOf(BackendUnavailableError);
    expect(err.message).toMatch(/libegl-mesa0/);
  });
  it("MIDTRAIN_BACKEND=cpu selects cpu in automatic mode", async () => {
    const r = await initBackend({ env: { MIDTRAIN_BACKEND: "cpu" } });
    expect(r.backend).toBe("cpu");
    expect(r.device.isCpu).toBe(true);
  });
});

describe("device info", () => {
  it("wasm reports SIMD and a single thread in Node", async () => {
    const r = await initBackend({ prefer: "wasm" });
    expect(r.device.tfjsBackend).toBe("wasm");
    expect(r.device.details?.threads).toBe(false);
    expect(typeof r.device.details?.simd).toBe("boolean");
  });
});

describe("wasm Identity shares the buffer", () => {
  it("clones survive disposal of the original and assignment of a variable, with no extra memory", async () => {
    const { tf } = await initBackend({ prefer: "wasm", onNotice: () => {} });
    const before = tf.memory();
    const a = tf.tensor1d([1, 2, 3]);
    const b = tf.clone(a);
    // One buffer for both: the clone adds a tensor but no data buffer (tfjs counts bytes per tensor).
    expect(tf.memory().numTensors).toBe(before.numTensors + 2);
    expect(tf.memory().numDataBuffers).toBe(before.numDataBuffers + 1);
    a.dispose();
    expect([...(await b.data())]).toEqual([1, 2, 3]);
    const init = tf.tensor1d([4, 5, 6]);
    const v = tf.variable(init);
    init.dispose();
    const c = tf.clone(v);
    const next = tf.tensor1d([7, 8, 9]);
    v.assign(next);
    next.dispose();
    expect([...(await c.data())]).toEqual([4, 5, 6]);
    expect([...(await v.data())]).toEqual([7, 8, 9]);
    tf.dispose([b, c, v]);
    expect(tf.memory().numTensors).toBe(before.numTensors);
    expect(tf.memory().numDataBuffers).toBe(before.numDataBuffers);
    expect(tf.memory().numBytes).toBe(before.numBytes);
  });
});
