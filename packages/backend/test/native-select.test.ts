import { spawnSync } from "node:child_process";
import { describe, expect, it } from "vitest";
import { BackendUnavailableError, initBackend, UnknownBackendError } from "../src/index.js";

// Its own file (own process): the native BLAS, once loaded, stays loaded for the process.
const nativeRequired = process.env.CI === "true" || process.env.CI === "1" || process.env.MIDTRAIN_NATIVE_BLAS === "1";
const broken = async (name: string) => {
  throw new Error(`Cannot find package '${name}'`);
};

// Probed in a child process, so this process's first load is the one the tests below make.
// Without it (and not required) the test that needs it is skipped with why in its title.
const nativeMissing = (() => {
  const r = spawnSync(process.execPath, ["-e", "require('@midtrain/native-blas').loadNativeBlas()"], { cwd: import.meta.dirname, encoding: "utf8" });
  if (r.status === 0 || nativeRequired) return undefined;
  return `the native BLAS does not load here: ${
    r.stderr
      .trim()
      .split("\n")
      .find((l) => /^\w*Error\b/.test(l)) ?? `exit ${r.status}`
  }`;
})();
const autoTitle = "auto mode picks the native BLAS when it loads; threads and MIDTRAIN_NATIVE_BLAS=0 are honoured";

describe("choosing the wasm matmul", () => {
  it("a native BLAS that cannot load is a notice in auto mode (once), and matmuls stay on XNNPACK", async () => {
    const notices: string[] = [];
    const opts = { prefer: "wasm" as const, env: {}, loadModule: broken, onNotice: (m: string) => notices.push(m) };
    const r = await initBackend(opts);
    expect(r.device.details?.matmul).toBe("xnnpack");
    expect(notices).toHaveLength(1);
    expect(notices[0]).toMatch(/^native BLAS unavailable, wasm matmuls run on XNNPACK .*Cannot find package '@midtrain\/native-blas'/);
    await initBackend(opts);
    expect(notices).toHaveLength(1);
    const x = r.tf.tensor2d([1, 2, 3, 4], [2, 2]);
    const y = r.tf.matMul(x, x);
    expect([...(await y.data())]).toEqual([7, 10, 15, 22]);
    r.tf.dispose([x, y]);
  });

  it("required native BLAS that cannot load is an error that says why", async () => {
    const err = await initBackend({ prefer: "wasm", env: { MIDTRAIN_NATIVE_BLAS: "1" }, loadModule: broken }).catch((e) => e);
    expect(err).toBeInstanceOf(BackendUnavailableError);
    expect(err.message).toMatch(/native BLAS matmuls were required \(MIDTRAIN_NATIVE_BLAS=1 or nativeBlas: true\) but Cannot find package/);
  });

  it("bad settings are rejected with the accepted values", async () => {
    await expect(initBackend({ prefer: "wasm", env: { MIDTRAIN_NATIVE_BLAS: "maybe" } })).rejects.toThrow(UnknownBackendError);
    await expect(initBackend({ prefer: "wasm", env: { MIDTRAIN_NATIVE_BLAS: "maybe" } })).rejects.toThrow(/is not one of auto, 1, 0/);
    await expect(initBackend({ prefer: "wasm", env: {}, blasThreads: 0 })).rejects.toThrow(/blasThreads must be a whole number/);
    await expect(initBackend({ prefer: "wasm", env: { MIDTRAIN_BLAS_THREADS: "two" } })).rejects.toThrow(/MIDTRAIN_BLAS_THREADS must be a whole number.*'two'/);
  });

  it.skipIf(nativeMissing !== undefined)(nativeMissing === undefined ? autoTitle : `${autoTitle} [skipped: ${nativeMissing}]`, async () => {
    const r = await initBackend({ prefer: "wasm", env: {}, blasThreads: 1 });
    expect(r.device.details).toMatchObject({ matmul: "native-blas", blasThreads: 1 });
    expect(r.device.description).toMatch(/matmuls on .*blas.* \(1 thread\)/i);
    const r2 = await initBackend({ prefer: "wasm", env: { MIDTRAIN_BLAS_THREADS: "2" } });
    expect(r2.device.details?.blasThreads).toBe(2);
    // OPENBLAS_NUM_THREADS alone: the library's own setting is kept (not reset to every core).
    await initBackend({ prefer: "wasm", env: {}, blasThreads: 1 });
    const keep = await initBackend({ prefer: "wasm", env: { OPENBLAS_NUM_THREADS: "1" } });
    expect(keep.device.details?.blasThreads).toBe(1);
    // Shapes tfjs rejects are still rejected (not multiplied past the end of b).
    const { tf: t2 } = keep;
    const p = t2.ones([2, 5]);
    const q = t2.ones([3, 2]);
    expect(() => t2.matMul(p, q)).toThrow(/inner shapes|must match|5.*3|3.*5/i);
    t2.dispose([p, q]);
    const off = await initBackend({ prefer: "wasm", env: { MIDTRAIN_NATIVE_BLAS: "0" } });
    expect(off.device.details?.matmul).toBe("xnnpack");
    expect(off.device.description).not.toMatch(/blas/i);
    // The same product on both paths, and no tensors left behind by either kernel.
    const tf = off.tf;
    const a = tf.randomNormal([4, 33, 20], 0, 1, "float32", 1);
    const b = tf.randomNormal([20, 17], 0, 1, "float32", 2);
    const before = tf.memory().numTensors;
    const viaXnn = await tf.matMul(a, b).data();
    await initBackend({ prefer: "wasm", env: {} });
    const viaBlas = await tf.matMul(a, b).data();
    expect(tf.memory().numTensors).toBe(before + 2);
    let worst = 0;
    for (let i = 0; i < viaXnn.length; i++) worst = Math.max(worst, Math.abs(viaXnn[i] - viaBlas[i]));
    expect(worst).toBeLessThan(1e-4);
  });
});
