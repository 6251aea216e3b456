import { beforeAll, describe, expect, it } from "vitest";
import { type BackendName, initBackend, probeBackend, requiredBackends } from "../src/index.js";
import { CASES } from "./cases.js";

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
// machine without Mesa the suite is skipped with the reason printed.
const available: Record<string, boolean> = {};
for (const backend of ["wasm", "webgpu"] as const) {
  const probe = await probeBackend(backend);
  available[backend] = probe.ok;
  if (!probe.ok) {
    if (requiredBackends().includes(backend)) throw new Error(`required backend ${backend} cannot start: ${probe.reason}`);
    console.warn(`[midtrain] skipping ${backend} parity tests: ${probe.reason}`);
  }
}

for (const backend of ["wasm", "webgpu"] as const) {
  describe.skipIf(!available[backend])(`ops on ${backend} agree with cpu`, () => {
    for (const name of Object.keys(CASES)) {
      it(name, async () => {
        const { tf } = await initBackend({ prefer: backend });
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
    const { gelu } = await import("../src/index.js");
    const y = gelu(tf.tensor1d([-1, 0, 1, 2]));
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
    const a = tf.tensor2d([[1, 2], [3, 4], [5, 6]]);
    const b = tf.tensor2d([[1, 0], [2, -1]]);
    // L = sum(A·Bᵀ) → dL/dA = 1·B summed: each row of dA is the column sums of B... i.e. [3, -1]
    const ga = tf.grad((x) => tf.sum(tf.matMul(x, b, false, true)))(a);
    expect(Array.from(await ga.data())).toEqual([3, -1, 3, -1, 3, -1]);
    tf.dispose([a, b, ga]);
  });
});
