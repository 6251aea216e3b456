import * as tf from "@tensorflow/tfjs-core";
import { beforeAll, describe, expect, it } from "vitest";
import { AdamW, OptimizerStateError, TrainerConfigError } from "../src/index.js";
import { cpu } from "./helpers.js";

beforeAll(async () => {
  await cpu();
});

/** Float64 reference of torch.optim.AdamW for one tensor. */
function reference(p0: number[], grads: number[][], lrs: number[], o: { b1: number; b2: number; eps: number; wd: number }) {
  const p = p0.slice();
  const m = p.map(() => 0);
  const v = p.map(() => 0);
  grads.forEach((g, k) => {
    const t = k + 1;
    const lr = lrs[k];
    for (let i = 0; i < p.length; i++) {
      p[i] *= 1 - lr * o.wd;
      m[i] = o.b1 * m[i] + (1 - o.b1) * g[i];
      v[i] = o.b2 * v[i] + (1 - o.b2) * g[i] * g[i];
      const denom = Math.sqrt(v[i]) / Math.sqrt(1 - o.b2 ** t) + o.eps;
      p[i] -= (lr / (1 - o.b1 ** t)) * (m[i] / denom);
    }
  });
  return { p, m, v };
}

describe("AdamW", () => {
  const o = { beta1: 0.9, beta2: 0.95, eps: 1e-8, weightDecay: 0.1 };
  const p0 = [1, -2, 0.5];
  const g1 = [0.1, -0.2, 0.3];
  const g2 = [-0.4, 0.5, 0];

  it("matches a hand-computed 2-step update (decoupled decay, bias correction) within 1e-6", async () => {
    const w = tf.variable(tf.tensor1d(p0));
    const params = new Map([["layer.weight", w]]);
    const opt = new AdamW(o);
    const ga = tf.tensor1d(g1);
    opt.apply(params, new Map([["layer.weight", ga]]), 0.1);
    // Step 1 by hand: m̂ = g and v̂ = g², so p1 = p0 (1 - lr wd) - lr sign(g) (eps is negligible).
    const step1 = [1 * 0.99 - 0.1, -2 * 0.99 + 0.1, 0.5 * 0.99 - 0.1]; // [0.89, -1.88, 0.395]
    const got1 = await w.data();
    step1.forEach((x, i) => {
      expect(Math.abs(got1[i] - x)).toBeLessThan(1e-6);
    });
    const gb = tf.tensor1d(g2);
    opt.apply(params, new Map([["layer.weight", gb]]), 0.05);
    // Step 2 by hand for the first element: m = 0.9·0.01 + 0.1·(-0.4) = -0.031, v = 0.95·0.0005 + 0.05·0.16 = 0.008475,
    // m̂ = -0.031 / 0.19 = -0.163158, v̂ = 0.008475 / 0.0975 = 0.086923, sqrt = 0.294827,
    // p2 = 0.89 · (1 - 0.005) + 0.05 · 0.163158 / 0.294827 = 0.88555 + 0.027670 = 0.913220.
    const got2 = await w.data();
    expect(Math.abs(got2[0] - 0.91322)).toBeLessThan(2e-6);
    const ref = reference(p0, [g1, g2], [0.1, 0.05], { b1: 0.9, b2: 0.95, eps: 1e-8, wd: 0.1 });
    ref.p.forEach((x, i) => {
      expect(Math.abs(got2[i] - x)).toBeLessThan(1e-6);
    });
    const st = await opt.getState();
    expect(st.step).toBe(2);
    ref.m.forEach((x, i) => {
      expect(Math.abs(st.m["layer.weight"][i] - x)).toBeLessThan(1e-7);
    });
    ref.v.forEach((x, i) => {
      expect(Math.abs(st.v["layer.weight"][i] - x)).toBeLessThan(1e-7);
    });
    tf.dispose([w, ga, gb]);
    opt.dispose();
  });

  it("excludes biases and LayerNorm parameters from weight decay by default, configurably", async () => {
    const opt = new AdamW(o);
    expect(opt.decays("gpt_neox.layers.0.mlp.dense_h_to_4h.weight")).toBe(true);
    expect(opt.decays("gpt_neox.embed_in.weight")).toBe(true);
    expect(opt.decays("gpt_neox.layers.0.mlp.dense_h_to_4h.bias")).toBe(false);
    expect(opt.decays("gpt_neox.layers.0.input_layernorm.weight")).toBe(false);
    expect(opt.decays("gpt_neox.final_layer_norm.weight")).toBe(false);
    const all = new AdamW({ ...o, noDecay: [] });
    expect(all.decays("x.bias")).toBe(true);
    // A zero gradient isolates the decay: the bias keeps its value, the weight shrinks by lr·wd.
    const wv = tf.variable(tf.tensor1d([2]));
    const bv = tf.variable(tf.tensor1d([2]));
    const zero = tf.zeros([1]);
    opt.apply(
      new Map([
        ["a.weight", wv],
        ["a.bias", bv],
      ]),
      new Map([
        ["a.weight", zero],
        ["a.bias", zero],
      ]),
      0.5,
    );
    expect((await wv.data())[0]).toBeCloseTo(2 * (1 - 0.5 * 0.1), 6);
    expect((await bv.data())[0]).toBe(2);
    tf.dispose([wv, bv, zero]);
    opt.dispose();
    all.dispose();
  });

  it("state round-trips by name and continues identically; bad states are rejected", async () => {
    const mk = () => new Map([["w", tf.variable(tf.tensor1d(p0))]]);
    const pa = mk();
    const pb = mk();
    const a = new AdamW(o);
    const g = tf.tensor1d(g1);
    const h = tf.tensor1d(g2);
    a.apply(pa, new Map([["w", g]]), 0.1);
    const b = new AdamW(o);
    b.setState(await a.getState(), pa);
    await pb.get("w")!.assign(pa.get("w")!);
    a.apply(pa, new Map([["w", h]]), 0.05);
    b.apply(pb, new Map([["w", h]]), 0.05);
    expect(Array.from(await pb.get("w")!.data())).toEqual(Array.from(await pa.get("w")!.data()));
    expect(b.step).toBe(2);
    expect(() => b.setState({ step: 1, m: { nope: new Float32Array(3) }, v: { nope: new Float32Array(3) } }, pa)).toThrow(OptimizerStateError);
    expect(() => b.setState({ step: 1, m: { w: new Float32Array(2) }, v: { w: new Float32Array(2) } }, pa)).toThrow(/3 float32/);
    expect(() => new AdamW({ beta1: 1 })).toThrow(TrainerConfigError);
    expect(() => a.apply(pa, new Map([["w", h]]), Number.NaN)).toThrow(/learning rate/);
    tf.dispose([g, h, ...pa.values(), ...pb.values()]);
    a.dispose();
    b.dispose();
  });

  it("keeps the tensor count stable across steps", async () => {
    const params = new Map([["w", tf.variable(tf.tensor1d(p0))]]);
    const opt = new AdamW(o);
    const g = tf.tensor1d(g1);
    opt.apply(params, new Map([["w", g]]), 0.1);
    const n = tf.memory().numTensors;
    for (let i = 0; i < 5; i++) opt.apply(params, new Map([["w", g]]), 0.1);
    expect(tf.memory().numTensors).toBe(n);
    opt.dispose();
    tf.dispose([g, ...params.values()]);
  });
});
