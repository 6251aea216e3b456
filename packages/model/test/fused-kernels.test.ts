import { describe, expect, it } from "vitest";
import { FUSED_KERNELS, initBackend, probeBackend, type TF } from "@midtrain/backend";
import { fusedLayerNorm, gelu } from "../src/model.js";
import { createModel, getModelConfig } from "../src/index.js";
import { fusedCrossEntropyPerRow as fusedSoftmaxCrossEntropy } from "../src/ops.js";

const nativeRequired = process.env.CI === "true" || process.env.CI === "1" || process.env.MIDTRAIN_NATIVE_BLAS === "1";
const probe = await probeBackend("wasm", { nativeBlas: true });
if (!probe.ok && nativeRequired) throw new Error(`native BLAS required but unavailable: ${probe.reason}`);
if (!probe.ok) console.warn(`[midtrain] skipping fused cross-entropy tests: ${probe.reason}`);
/** Title of a test that needs the native kernels: says why it is skipped where they do not load. */
const native = (title: string) => (probe.ok ? title : `${title} [skipped: the native kernels do not load here: ${probe.reason}]`);

const N = 37;
const V = 259;

function inputs(tf: TF) {
  let s = 99;
  const z = Float32Array.from({ length: N * V }, () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return ((s / 2 ** 32) * 2 - 1) * 6;
  });
  const t = Int32Array.from({ length: N }, (_, i) => (i * 97) % V);
  const w = Float32Array.from({ length: N }, (_, i) => 0.5 + (i % 5) / 3);
  return { z: tf.tensor2d(z, [N, V]), t: tf.tensor1d(t, "int32"), w: tf.tensor1d(w) };
}

/** nll and d(Σ w·nll)/dlogits, through `ce`. */
async function lossAndGrad(tf: TF, ce: (z: ReturnType<TF["tensor2d"]>, t: ReturnType<TF["tensor1d"]>) => ReturnType<TF["tensor1d"]>) {
  const { z, t, w } = inputs(tf);
  const nll = ce(z, t);
  const g = tf.grad((x) => tf.sum(tf.mul(ce(x as typeof z, t), w)))(z);
  const out = [await nll.data(), await g.data()] as Float32Array[];
  tf.dispose([z, t, w, nll, g]);
  return out;
}

const composed = (tf: TF) => (z: ReturnType<TF["tensor2d"]>, t: ReturnType<TF["tensor1d"]>) =>
  tf.tidy(() => tf.neg(tf.sum(tf.mul(tf.logSoftmax(z), tf.oneHot(t, V)), 1))) as ReturnType<TF["tensor1d"]>;

describe("fused softmax cross-entropy", () => {
  it("is not used where no fused kernel is registered (cpu, wasm without native BLAS)", async () => {
    for (const opts of [{ prefer: "cpu" as const }, { prefer: "wasm" as const, nativeBlas: false }]) {
      const { tf } = await initBackend({ ...opts, onNotice: () => {} });
      const { z, t, w } = inputs(tf);
      expect(fusedSoftmaxCrossEntropy(z, t)).toBeUndefined();
      tf.dispose([z, t, w]);
    }
  });

  it.skipIf(!probe.ok)(native("on wasm with native BLAS: loss and gradient equal the composition on cpu, no leaks"), async () => {
    const cpu = await initBackend({ prefer: "cpu" });
    const [refNll, refGrad] = await lossAndGrad(cpu.tf, composed(cpu.tf));
    const { tf } = await initBackend({ prefer: "wasm", nativeBlas: true });
    const before = tf.memory().numTensors;
    const [nll, grad] = await lossAndGrad(tf, (z, t) => {
      const r = fusedSoftmaxCrossEntropy(z, t);
      if (!r) throw new Error("fused kernel missing on wasm with native BLAS");
      return r;
    });
    expect(tf.memory().numTensors).toBe(before);
    let e1 = 0;
    let e2 = 0;
    for (let i = 0; i < N; i++) e1 = Math.max(e1, Math.abs(nll[i] - refNll[i]) / (1 + Math.abs(refNll[i])));
    for (let i = 0; i < N * V; i++) e2 = Math.max(e2, Math.abs(grad[i] - refGrad[i]));
    expect(e1).toBeLessThan(1e-5);
    expect(e2).toBeLessThan(1e-6);
  });

  it.skipIf(!probe.ok)(native("GELU on wasm with native BLAS: value and gradient equal the tensor-op GELU on cpu, no leaks"), async () => {
    const run = async (tf: TF) => {
      const x = tf.tensor2d(
        Float32Array.from({ length: 64 * 33 }, (_, i) => Math.sin(i * 0.37) * 4),
        [64, 33],
      );
      const w = tf.tensor2d(
        Float32Array.from({ length: 64 * 33 }, (_, i) => Math.cos(i * 0.11)),
        [64, 33],
      );
      const y = gelu(x);
      const g = tf.grad((t) => tf.sum(tf.mul(gelu(t), w)))(x);
      const out = [await y.data(), await g.data()] as Float32Array[];
      tf.dispose([x, w, y, g]);
      return out;
    };
    const cpu = await initBackend({ prefer: "cpu" });
    const [refY, refG] = await run(cpu.tf);
    const { tf } = await initBackend({ prefer: "wasm", nativeBlas: true });
    expect(tf.getKernel(FUSED_KERNELS.gelu, "wasm")).toBeDefined();
    const before = tf.memory().numTensors;
    const [y, g] = await run(tf);
    expect(tf.memory().numTensors).toBe(before);
    // Both erfs are the same 1.5e-7-accurate approximation (Abramowitz & Stegun 7.1.26); the native
    // one is computed from its own vectorizable exp, so the two differ by float rounding only.
    for (let i = 0; i < y.length; i++) {
      expect(Math.abs(y[i] - refY[i])).toBeLessThan(2e-6);
      expect(Math.abs(g[i] - refG[i])).toBeLessThan(2e-6);
    }
  });

  it.skipIf(!probe.ok)(native("LayerNorm on wasm with native BLAS: value and gradients (x, gamma, beta) equal tensor ops on cpu"), async () => {
    const R = 24;
    const C = 40;
    const run = async (tf: TF, fused: boolean) => {
      const x = tf.tensor2d(
        Float32Array.from({ length: R * C }, (_, i) => Math.sin(i * 0.71) * 3 + (i % 7)),
        [R, C],
      );
      const g = tf.tensor1d(Float32Array.from({ length: C }, (_, i) => 1 + Math.cos(i) / 2));
      const b = tf.tensor1d(Float32Array.from({ length: C }, (_, i) => Math.sin(i) / 3));
      const w = tf.tensor2d(
        Float32Array.from({ length: R * C }, (_, i) => Math.cos(i * 0.13)),
        [R, C],
      );
      const ln = (xt: typeof x, gt: typeof g, bt: typeof b) => {
        if (fused) {
          const r = fusedLayerNorm(xt, gt, bt, 1e-5);
          if (!r) throw new Error("fused LayerNorm kernel missing");
          return r;
        }
        return tf.tidy(() => {
          const xc = tf.sub(xt, tf.mean(xt, -1, true));
          const v = tf.mean(tf.square(xc), -1, true);
          return tf.add(tf.mul(tf.mul(xc, tf.rsqrt(tf.add(v, 1e-5))), gt), bt) as typeof x;
        });
      };
      const y = ln(x, g, b);
      const grads = tf.grads((xt, gt, bt) => tf.sum(tf.mul(ln(xt as typeof x, gt as typeof g, bt as typeof b), w)))([x, g, b]);
      const out = (await Promise.all([y, ...grads].map((t) => t.data()))) as Float32Array[];
      tf.dispose([x, g, b, w, y, ...grads]);
      return out;
    };
    const cpu = await initBackend({ prefer: "cpu" });
    const ref = await run(cpu.tf, false);
    const { tf } = await initBackend({ prefer: "wasm", nativeBlas: true });
    const before = tf.memory().numTensors;
    const got = await run(tf, true);
    expect(tf.memory().numTensors).toBe(before);
    got.forEach((arr, k) => {
      for (let i = 0; i < arr.length; i++) expect(Math.abs(arr[i] - ref[k][i]), `output ${k}[${i}]`).toBeLessThan(2e-5 * (1 + Math.abs(ref[k][i])));
    });
  });

  it.skipIf(!probe.ok)(native("a whole model: loss and every gradient with all fused kernels equal tfjs's own kernels on wasm"), async () => {
    const cfg = getModelConfig("tiny-1m", { nLayer: 2, dModel: 64, nHead: 4, seqLen: 16 });
    const B = 3;
    const T = 16;
    const ids = Int32Array.from({ length: B * T }, (_, i) => (i * 37 + 11) % 258);
    const tg = Int32Array.from({ length: B * T }, (_, i) => (i * 53 + 5) % 258);
    const run = async (nativeBlas: boolean) => {
      const { tf } = await initBackend({ prefer: "wasm", nativeBlas, onNotice: () => {} });
      const model = createModel(cfg, { seed: 3 });
      const idsT = tf.tensor2d(ids, [B, T], "int32");
      const tgT = tf.tensor2d(tg, [B, T], "int32");
      const names = [...model.params.keys()];
      const { value, grads } = tf.variableGrads(
        () => model.loss(idsT, tgT),
        names.map((n) => model.params.get(n)!),
      );
      const byVar = new Map(names.map((n) => [model.params.get(n)!.name, n]));
      const out = new Map<string, Float32Array>();
      for (const [k, g] of Object.entries(grads)) out.set(byVar.get(k)!, (await g.data()) as Float32Array);
      const loss = (await value.data())[0];
      tf.dispose([value, idsT, tgT, ...Object.values(grads)]);
      model.dispose();
      return { loss, out };
    };
    const ref = await run(false);
    const got = await run(true);
    expect(Math.abs(got.loss - ref.loss)).toBeLessThan(1e-5);
    expect(got.out.size).toBe(ref.out.size);
    for (const [name, g] of got.out) {
      const r = ref.out.get(name)!;
      let num = 0;
      let den = 0;
      for (let i = 0; i < g.length; i++) {
        num += (g[i] - r[i]) ** 2;
        den += r[i] ** 2;
      }
      expect(Math.sqrt(num / Math.max(den, 1e-30)), name).toBeLessThan(1e-4);
    }
  });
});
