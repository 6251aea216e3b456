import { beforeAll, describe, expect, it } from "vitest";
import { type BackendName, initBackend, probeBackend, requiredBackends } from "../src/index.js";
import { CASES, gelu, UPSTREAM_GAPS } from "./cases.js";

// Reference: tfjs-backend-cpu (float32 JS). Tolerances: |got - ref| <= atol + rtol·|ref|.
// wasm runs the same float32 math in a different order (XNNPACK); WebGPU on llvmpipe
// additionally uses GPU-style exp/erf approximations, so it gets a looser bound.
const TOL: Record<Exclude<BackendName, "cpu" | "cuda">, { atol: number; rtol: number }> = {
  wasm: { atol: 1e-5, rtol: 1e-4 },
  webgpu: { atol: 1e-4, rtol: 1e-3 },
};

const reference: Record<string, Float32Array[]> = {};

beforeAll(async () => {
  const { tf } = await initBackend({ prefer: "cpu" });
  for (const [name, run] of Object.entries(CASES)) reference[name] = await run(tf);
});

function worst(got: Float32Array, ref: Float32Array, atol: number, rtol: number) {
  let excess = Number.NEGATIVE_INFINITY;
  for (let i = 0; i < ref.length; i++) {
    const d = Math.abs(got[i] - ref[i]) - (atol + rtol * Math.abs(ref[i]));
    if (!(d <= excess)) excess = Number.isNaN(d) ? Number.POSITIVE_INFINITY : Math.max(excess, d);
  }
  return excess;
}

// WebGPU in Node needs Mesa's EGL/GL (or a GPU). Under CI it is required; on a developer's
// machine without Mesa the suite is skipped, its title carrying the reason ("[skipped: …]",
// which scripts/test-all.mjs lists). wasm runs twice: matmuls on tfjs's XNNPACK, and on the
// machine's BLAS through @midtrain/native-blas (required under CI, where .ci/run installs a C
// compiler and OpenBLAS).
const nativeRequired = process.env.CI === "true" || process.env.CI === "1" || process.env.MIDTRAIN_NATIVE_BLAS === "1";
const VARIANTS = [
  { label: "wasm (XNNPACK matmul)", backend: "wasm", nativeBlas: false },
  { label: "wasm (native BLAS matmul)", backend: "wasm", nativeBlas: true },
  { label: "webgpu", backend: "webgpu", nativeBlas: undefined },
] as const;
const unavailable: Record<string, string | undefined> = {};
for (const v of VARIANTS) {
  const probe = await probeBackend(v.backend, { nativeBlas: v.nativeBlas });
  if (probe.ok && v.nativeBlas) expect(probe.device.details?.matmul).toBe("native-blas");
  if (!probe.ok) {
    if (requiredBackends().includes(v.backend) && (v.nativeBlas !== true || nativeRequired)) {
      throw new Error(`required backend ${v.label} cannot start: ${probe.reason}`);
    }
    unavailable[v.label] = `${v.label} cannot start here: ${probe.reason}`;
    console.warn(`[midtrain] skipping ${v.label} parity tests: ${probe.reason}`);
  }
}

/** A title that says why the test or suite is skipped (scripts/test-all.mjs lists these). */
const titled = (title: string, skipReason: string | undefined) => (skipReason === undefined ? title : `${title} [skipped: ${skipReason}]`);

for (const { label, backend, nativeBlas } of VARIANTS) {
  const reason = unavailable[label];
  describe.skipIf(reason !== undefined)(titled(`ops on ${label} agree with cpu`, reason), () => {
    for (const name of Object.keys(CASES)) {
      const gap = UPSTREAM_GAPS[backend]?.[name];
      it.skipIf(gap !== undefined)(titled(name, gap), async () => {
        const { tf, device } = await initBackend({ prefer: backend, nativeBlas });
        if (nativeBlas !== undefined) expect(device.details?.matmul).toBe(nativeBlas ? "native-blas" : "xnnpack");
        const before = tf.memory().numTensors;
        const got = await CASES[name](tf);
        expect(tf.memory().numTensors).toBe(before);
        const ref = reference[name];
        expect(got.length).toBe(ref.length);
        const { atol, rtol } = TOL[backend];
        got.forEach((g, i) => {
          expect(g.length, `output ${i} size`).toBe(ref[i].length);
          expect(worst(g, ref[i], atol, rtol), `output ${i} exceeds tolerance by`).toBeLessThanOrEqual(0);
        });
      });
    }
  });
}

describe("cpu reference sanity", () => {
  it("GELU matches hand-computed values", async () => {
    const { tf } = await initBackend({ prefer: "cpu" });
    const y = gelu(tf, tf.tensor1d([-1, 0, 1, 2]));
    const v = await y.data();
    y.dispose();
    // 0.5·x·(1+erf(x/√2)): Φ(1)=0.841344746, Φ(2)=0.977249868
    expect(v[0]).toBeCloseTo(-0.158655254, 6);
    expect(v[1]).toBe(0);
    expect(v[2]).toBeCloseTo(0.841344746, 6);
    expect(v[3]).toBeCloseTo(1.954499736, 5);
  });
  it("transposed matmul gradient equals the explicit formula", async () => {
    const { tf } = await initBackend({ prefer: "cpu" });
    const a = tf.tensor2d([
      [1, 2],
      [3, 4],
      [5, 6],
    ]);
    const b = tf.tensor2d([
      [1, 0],
      [2, -1],
    ]);
    // L = sum(A·Bᵀ) → dL/dA = 1·B summed: each row of dA is the column sums of B... i.e. [3, -1]
    const ga = tf.grad((x) => tf.sum(tf.matMul(x, b, false, true)))(a);
    expect(Array.from(await ga.data())).toEqual([3, -1, 3, -1, 3, -1]);
    tf.dispose([a, b, ga]);
  });
});
