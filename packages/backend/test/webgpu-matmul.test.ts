import { describe, expect, it } from "vitest";
import { initBackend, probeBackend, requiredBackends } from "../src/index.js";
import { webgpuPicksSplitK } from "../src/kernels/webgpu-matmul.js";

// tfjs-backend-webgpu 4.22's split-K matmul (a small output, an inner dimension of 2,000 or
// more) is wrong when B is transposed: `dlogits @ Wᵀ` of the output layer, for a loss chunk of
// few rows, came back with relative errors of order 1 (pythia-14m's gradients on WebGPU were
// 0.8% off in norm at 512 tokens). @midtrain/backend guards those products
// (src/kernels/webgpu-matmul.ts). Without the guard the transposed products here are off by
// 100-250% (measured on Mesa llvmpipe); with it they agree with a float64 product to ~3e-7.
// Its own file (own process, as webgpu-mesa.test.ts); required under CI, elsewhere skipped
// with the reason in its title.
const gpu = await probeBackend("webgpu");
if (!gpu.ok && requiredBackends().includes("webgpu")) throw new Error(`required backend webgpu cannot start: ${gpu.reason}`);
const skip = gpu.ok ? undefined : `webgpu cannot start here: ${gpu.reason}`;
const title = "webgpu matmuls that tfjs runs split-K are right with a transposed operand";

function lcg(n: number, seed: number): Float32Array {
  const out = new Float32Array(n);
  let s = seed >>> 0;
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1103515245) + 12345) >>> 0;
    out[i] = s / 2 ** 32 - 0.5;
  }
  return out;
}

/** max |got − ref| / max |ref| against a float64 product of row-major a [M, K] and b [K, N] given by an accessor. */
function relErr(got: ArrayLike<number>, M: number, N: number, K: number, a: (i: number, k: number) => number, b: (k: number, j: number) => number): number {
  let worst = 0;
  let scale = 0;
  for (let i = 0; i < M; i++) {
    for (let j = 0; j < N; j++) {
      let s = 0;
      for (let k = 0; k < K; k++) s += a(i, k) * b(k, j);
      worst = Math.max(worst, Math.abs(got[i * N + j] - s));
      scale = Math.max(scale, Math.abs(s));
    }
  }
  return worst / scale;
}

describe("tfjs-backend-webgpu split-K guard", () => {
  it("restates tfjs's choice of the split-K program", () => {
    expect(webgpuPicksSplitK([28, 4096], [128, 4096], false, true)).toBe(true); // 1 × 4 tiles, K 4096
    expect(webgpuPicksSplitK([166, 50304], [128, 50304], false, true)).toBe(false); // 6 × 4 tiles: packed
    expect(webgpuPicksSplitK([28, 1024], [128, 1024], false, true)).toBe(false); // K < 2000
    expect(webgpuPicksSplitK([2, 28, 4096], [2, 128, 4096], false, true)).toBe(false); // batched
    expect(webgpuPicksSplitK([4, 4096], [4096, 8], false, false)).toBe(false); // 32 outputs: reduce program
  });

  it.skipIf(skip !== undefined)(skip === undefined ? title : `${title} [skipped: ${skip}]`, async () => {
    const { tf } = await initBackend({ prefer: "webgpu" });
    const before = tf.memory().numTensors;
    const [M, K, N] = [28, 4096, 128];
    const A = lcg(M * K, 1);
    const B = lcg(K * N, 2);
    const bias = lcg(N, 3);
    const a = tf.tensor2d(A, [M, K]);
    const bT = tf.tensor2d(B, [N, K]); // B stored transposed: [N, K]
    const bPlain = tf.tensor2d(B, [K, N]);
    const viaT = (i: number, k: number) => A[i * K + k];
    // a @ bTᵀ: the transposed product (BatchMatMul)
    const c = tf.matMul(a, bT, false, true);
    const e1 = relErr(await c.data(), M, N, K, viaT, (k, j) => B[j * K + k]);
    // the same through _FusedMatMul (bias added)
    const biasT = tf.tensor1d(bias);
    const f = tf.fused.matMul({ a, b: bT, transposeB: true, bias: biasT });
    const fused = await f.data();
    const cData = await c.data();
    let e2 = 0;
    for (let i = 0; i < M * N; i++) e2 = Math.max(e2, Math.abs(fused[i] - cData[i] - bias[i % N]));
    // the gradient of a @ W for a wide W [K, N] flows back as dy @ Wᵀ (inner dimension N):
    // da of sum((x @ W) * r) for x [M, N'], W [N', K] with N' small, K wide
    const x = tf.tensor2d(lcg(M * N, 4), [M, N]);
    const r = tf.tensor2d(A, [M, K]);
    const dx = tf.grad((xv) => tf.sum(tf.mul(tf.matMul(xv as typeof x, bT), r)))(x);
    const e3 = relErr(await dx.data(), M, N, K, viaT, (k, j) => B[j * K + k]);
    // and a plain B (not transposed), which tfjs always got right
    const p = tf.matMul(a, bPlain);
    const e4 = relErr(await p.data(), M, N, K, viaT, (k, j) => B[k * N + j]);
    tf.dispose([a, bT, bPlain, biasT, c, f, x, r, dx, p]);
    console.log(
      `[webgpu] split-K shapes: a @ bT ${e1.toExponential(2)}, fused ${e2.toExponential(2)}, gradient ${e3.toExponential(2)}, plain ${e4.toExponential(2)}`,
    );
    expect(e1).toBeLessThan(1e-5);
    expect(e2).toBeLessThan(1e-4);
    expect(e3).toBeLessThan(1e-5);
    expect(e4).toBeLessThan(1e-5);
    expect(tf.memory().numTensors).toBe(before);
  });
});
