/**
 * Parity with the independent PyTorch reference (reference/pythia_ref.py, float64 math from
 * the same float32 weights). Fixture: fixtures/parity. Tolerances per backend are below; the
 * measured differences are printed.
 */
import * as tf from "@tensorflow/tfjs-core";
import { probeBackend, requiredBackends } from "@midtrain/backend";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createModel, getModelConfig, type GPTNeoXModel, toFloat32 } from "../src/index.js";
import { loadHf } from "../src/node.js";
import { type BackendName, useBackend } from "./backends.js";
import { FIXTURE_MODEL_DIR, loadExpected, maxAbs, maxAbsDiff, TestAdamW } from "./helpers.js";

interface Tolerance {
  /** max |logit - ref| (logits have magnitude ~10) */
  logits: number;
  /** |loss - ref| and per-token nll */
  loss: number;
  /** max |g - ref| / max |ref| per named gradient */
  gradRel: number;
  /** |loss after k AdamW steps - ref| */
  steps: number;
}

// Measured here (2-core x86, Node 20): cpu logits 1.2e-6, grads 2.6e-7 rel, step losses 6.7e-7;
// wasm logits 3.3e-6, grads 9.1e-7 rel, step losses 6.4e-7; webgpu (Dawn on Mesa llvmpipe)
// logits 2.9e-6, grads 8.1e-7 rel, step losses 6.4e-7. Bounds leave ~10x margin; webgpu's are
// looser because GPU drivers may use fast-math exp/log/erf and other reduction orders.
const TOL: Record<BackendName, Tolerance> = {
  cpu: { logits: 1e-5, loss: 5e-6, gradRel: 5e-6, steps: 1e-5 },
  wasm: { logits: 3e-5, loss: 2e-5, gradRel: 1e-5, steps: 2e-5 },
  webgpu: { logits: 1e-4, loss: 5e-5, gradRel: 1e-4, steps: 1e-4 },
  cuda: { logits: 1e-4, loss: 5e-5, gradRel: 1e-4, steps: 1e-4 },
};

// cpu and wasm run everywhere; webgpu where Dawn finds an adapter (a GPU, or Mesa's llvmpipe):
// required under CI (which installs Mesa), elsewhere skipped with the reason in the suite's
// title (scripts/test-all.mjs lists it). cuda only where tfjs-node-gpu exists.
const BACKENDS: BackendName[] = ["cpu", "wasm", "webgpu"];
const webgpu = await probeBackend("webgpu");
if (!webgpu.ok && requiredBackends().includes("webgpu")) throw new Error(`required backend webgpu cannot start: ${webgpu.reason}`);
const unavailable: Partial<Record<BackendName, string>> = webgpu.ok ? {} : { webgpu: `webgpu cannot start here: ${webgpu.reason}` };

for (const backend of BACKENDS) {
  const skip = unavailable[backend];
  const title = `parity with the PyTorch reference on ${backend}`;
  describe.skipIf(skip !== undefined)(skip === undefined ? title : `${title} [skipped: ${skip}]`, () => {
    const tol = TOL[backend];
    const expected = loadExpected();
    let model: GPTNeoXModel;
    let ids: tf.Tensor2D;
    let targets: tf.Tensor2D;
    let mask: tf.Tensor2D;
    let startTensors = 0;
    const B = expected.batch;
    const T = expected.time;
    const ref = (name: string) => toFloat32(expected.tensors.get(name)!);

    beforeAll(async () => {
      await useBackend(backend);
      startTensors = tf.memory().numTensors;
      model = await loadHf(FIXTURE_MODEL_DIR);
      ids = tf.tensor2d(expected.tensors.get("ids")!.data as Int32Array, [B, T], "int32");
      targets = tf.tensor2d(expected.tensors.get("targets")!.data as Int32Array, [B, T], "int32");
      mask = tf.tensor2d(ref("mask"), [B, T], "float32");
    });

    afterAll(() => {
      model?.dispose();
      ids?.dispose();
      targets?.dispose();
      mask?.dispose();
      expect(tf.memory().numTensors).toBe(startTensors);
    });

    it("logits match", async () => {
      const logits = model.forward(ids);
      expect(logits.shape).toEqual([B, T, 384]);
      const got = await logits.data();
      logits.dispose();
      const d = maxAbsDiff(got, ref("logits"));
      console.log(`[${backend}] logits max abs diff ${d.toExponential(2)} (max |ref| ${maxAbs(ref("logits")).toFixed(2)})`);
      expect(d).toBeLessThanOrEqual(tol.logits);
    });

    it("masked loss and per-token losses match", async () => {
      const loss = model.loss(ids, targets, mask);
      const l = (await loss.data())[0];
      loss.dispose();
      const nll = model.perTokenLoss(ids, targets);
      const dn = maxAbsDiff(await nll.data(), ref("nll"));
      nll.dispose();
      console.log(`[${backend}] loss ${l} ref ${expected.loss} diff ${Math.abs(l - expected.loss).toExponential(2)}; nll max diff ${dn.toExponential(2)}`);
      expect(Math.abs(l - expected.loss)).toBeLessThanOrEqual(tol.loss);
      expect(dn).toBeLessThanOrEqual(tol.loss);
    });

    it("gradients of named parameters match (HF layout)", async () => {
      const { value, grads } = tf.variableGrads(() => model.loss(ids, targets, mask), model.variables());
      value.dispose();
      // variableGrads keys by tfjs variable name; map back to HF names explicitly
      const gradOf = (name: string) => grads[model.params.get(name)!.name];
      for (const name of expected.grad_names) {
        const g = gradOf(name);
        expect(g, name).toBeDefined();
        const hf = model.toHfLayout(name, g);
        const got = await hf.data();
        hf.dispose();
        const r = ref(`grad.${name}`);
        const rel = maxAbsDiff(got, r) / maxAbs(r);
        console.log(`[${backend}] grad ${name} rel diff ${rel.toExponential(2)}`);
        expect(rel, name).toBeLessThanOrEqual(tol.gradRel);
      }
      tf.dispose(Object.values(grads));
    });

    it("with the chunked loss and per-block recomputation, loss and gradients still match", async () => {
      model.setMemoryOptions({ recompute: true, lossChunkTokens: 5 }); // 32 tokens: 7 chunks, the last short
      try {
        const { value, grads } = tf.variableGrads(() => model.loss(ids, targets, mask), model.variables());
        const l = (await value.data())[0];
        value.dispose();
        expect(Math.abs(l - expected.loss)).toBeLessThanOrEqual(tol.loss);
        let worst = 0;
        for (const name of expected.grad_names) {
          const hf = model.toHfLayout(name, grads[model.params.get(name)!.name]);
          const r = ref(`grad.${name}`);
          worst = Math.max(worst, maxAbsDiff(await hf.data(), r) / maxAbs(r));
          hf.dispose();
        }
        tf.dispose(Object.values(grads));
        console.log(
          `[${backend}] chunked + recomputed: loss diff ${Math.abs(l - expected.loss).toExponential(2)}, grads max rel diff ${worst.toExponential(2)}`,
        );
        expect(worst).toBeLessThanOrEqual(tol.gradRel);
      } finally {
        model.setMemoryOptions({ recompute: false, lossChunkTokens: "auto" });
      }
    });

    // Same shapes as the fixture, so this runs on warm kernels (compiled webgpu shaders).
    it("no leaks: many forward/backward/update steps keep the tensor count constant", async () => {
      const before = tf.memory().numTensors;
      const m = createModel(getModelConfig("tiny-1m", { nLayer: 2, dModel: 64, nHead: 4, seqLen: 32 }), { seed: 9 });
      const opt = new TestAdamW(expected.adamw);
      const vars = m.variables();
      const counts: number[] = [];
      const losses: number[] = [];
      for (let step = 0; step < 4; step++) {
        const { value, grads } = tf.variableGrads(() => m.loss(ids, targets, mask), vars);
        losses.push((await value.data())[0]);
        opt.step(new Map(vars.map((v) => [v, grads[v.name]])));
        tf.dispose([value, ...Object.values(grads)]);
        const logits = m.forward(ids);
        const per = m.perTokenLoss(ids, targets);
        const hs = m.hidden(ids);
        tf.dispose([logits, per, ...hs]);
        counts.push(tf.memory().numTensors);
      }
      // after the first step (optimizer slots created) the count no longer changes
      expect(new Set(counts.slice(1)).size).toBe(1);
      expect(losses[3]).toBeLessThan(losses[0]); // and it trains
      opt.dispose();
      m.dispose();
      expect(tf.memory().numTensors).toBe(before);
    });

    it("losses over 3 AdamW steps match", async () => {
      const fresh = await loadHf(FIXTURE_MODEL_DIR);
      const opt = new TestAdamW(expected.adamw);
      const losses: number[] = [];
      const vars = fresh.variables();
      for (let step = 0; step < 3; step++) {
        const { value, grads } = tf.variableGrads(() => fresh.loss(ids, targets, mask), vars);
        losses.push((await value.data())[0]);
        value.dispose();
        opt.step(new Map(vars.map((v) => [v, grads[v.name]])));
        tf.dispose(Object.values(grads));
      }
      const last = fresh.loss(ids, targets, mask);
      losses.push((await last.data())[0]);
      last.dispose();
      opt.dispose();
      fresh.dispose();
      const diffs = losses.map((l, i) => Math.abs(l - expected.adamw.losses[i]));
      console.log(`[${backend}] AdamW losses ${losses.map((l) => l.toFixed(6))} diffs ${diffs.map((d) => d.toExponential(2))}`);
      for (const d of diffs) expect(d).toBeLessThanOrEqual(tol.steps);
    });
  });
}
