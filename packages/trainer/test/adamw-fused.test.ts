import { describe, expect, it } from "vitest";
import { FUSED_KERNELS, initBackend, type TF } from "@midtrain/backend";
import { adamwUpdate, adamwUpdateOps } from "../src/adamw.js";

function seeded(n: number, seed: number, scale = 1): Float32Array {
  let x = seed >>> 0 || 1;
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    x = (Math.imul(x, 1664525) + 1013904223) >>> 0;
    out[i] = ((x / 2 ** 32) * 2 - 1) * scale;
  }
  return out;
}

const ATTRS = [
  { beta1: 0.9, beta2: 0.95, eps: 1e-8, decay: 1 - 3e-4 * 0.1, stepSize: 3e-4 / (1 - 0.9 ** 3), sqrtBc2: Math.sqrt(1 - 0.95 ** 3) },
  { beta1: 0.8, beta2: 0.999, eps: 1e-6, decay: 1, stepSize: 1e-2, sqrtBc2: Math.sqrt(1 - 0.999) },
];

async function run(tf: TF, f: typeof adamwUpdate, attrs: (typeof ATTRS)[number]) {
  const n = 4099;
  const p = tf.tensor(seeded(n, 1), [n]);
  const g = tf.tensor(seeded(n, 2, 0.1), [n]);
  const m = tf.tensor(seeded(n, 3, 0.01), [n]);
  const v = tf.tensor(seeded(n, 4, 1e-4).map(Math.abs), [n]);
  const outs = f(p, g, m, v, attrs);
  const data = await Promise.all(outs.map((t) => t.data() as Promise<Float32Array>));
  tf.dispose([p, g, m, v, ...outs]);
  return data;
}

describe("fused AdamW kernel", () => {
  for (const backend of ["cpu", "wasm"] as const) {
    it(`on ${backend} equals the tensor-op composition (to float32 rounding) and leaks nothing`, async () => {
      const { tf } = await initBackend({ prefer: backend, onNotice: () => {} });
      expect(tf.getKernel(FUSED_KERNELS.adamw, backend)).toBeDefined();
      for (const attrs of ATTRS) {
        const before = tf.memory().numTensors;
        const fused = await run(tf, adamwUpdate, attrs);
        const ops = await run(tf, adamwUpdateOps, attrs);
        expect(tf.memory().numTensors).toBe(before);
        for (let k = 0; k < 3; k++) {
          // Rounding-level agreement: within a few float32 ulps of the array's own magnitude.
          const scale = ops[k].reduce((x, y) => Math.max(x, Math.abs(y)), 0);
          let worst = 0;
          for (let i = 0; i < fused[k].length; i++) {
            worst = Math.max(worst, Math.abs(fused[k][i] - ops[k][i]) / (Math.abs(ops[k][i]) + scale));
          }
          expect(worst, `output ${k}`).toBeLessThan(1e-6);
        }
      }
    });
  }

  it("matches a float64 hand computation of one element", async () => {
    const { tf } = await initBackend({ prefer: "wasm", onNotice: () => {} });
    const a = ATTRS[0];
    const [P, M, V] = adamwUpdate(tf.tensor([0.5]), tf.tensor([0.2]), tf.tensor([0.01]), tf.tensor([0.003]), a);
    const m1 = 0.9 * 0.01 + 0.1 * 0.2;
    const v1 = 0.95 * 0.003 + 0.05 * 0.04;
    const p1 = 0.5 * a.decay - (a.stepSize * m1) / (Math.sqrt(v1) / a.sqrtBc2 + a.eps);
    expect((await M.data())[0]).toBeCloseTo(m1, 7);
    expect((await V.data())[0]).toBeCloseTo(v1, 7);
    expect((await P.data())[0]).toBeCloseTo(p1, 6);
    tf.dispose([P, M, V]);
  });
});
