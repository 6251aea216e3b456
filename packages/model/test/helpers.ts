/** Test helpers: fixture loading, tolerance checks and a test-only AdamW. */
import { readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import * as tf from "@tensorflow/tfjs-core";
import { parseSafetensors, type SafeTensor } from "../src/index.js";

export const FIXTURE_DIR = join(dirname(fileURLToPath(import.meta.url)), "..", "fixtures", "parity");
export const FIXTURE_MODEL_DIR = join(FIXTURE_DIR, "model");

export interface Expected {
  loss: number;
  batch: number;
  time: number;
  adamw: { lr: number; beta1: number; beta2: number; eps: number; weight_decay: number; losses: number[] };
  grad_names: string[];
  tensors: Map<string, SafeTensor>;
}

export function loadExpected(): Expected {
  const json = JSON.parse(readFileSync(join(FIXTURE_DIR, "expected.json"), "utf8"));
  const { tensors } = parseSafetensors(new Uint8Array(readFileSync(join(FIXTURE_DIR, "expected.safetensors"))));
  return { ...json, tensors };
}

/** Largest |a - b| over two equal-length arrays (throws on length mismatch). */
export function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) throw new Error(`length mismatch ${a.length} vs ${b.length}`);
  let m = 0;
  for (let i = 0; i < a.length; i++) {
    const d = Math.abs(a[i] - b[i]);
    if (!(d <= m)) m = Number.isNaN(d) ? Number.POSITIVE_INFINITY : d;
  }
  return m;
}

export function maxAbs(a: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]));
  return m;
}

/**
 * TEST-ONLY AdamW with decoupled weight decay on every variable, the update of
 * torch.optim.AdamW: p -= lr*wd*p; p -= lr * mhat / (sqrt(vhat) + eps). The trainer package
 * owns the real optimizer.
 */
export class TestAdamW {
  private m = new Map<tf.Variable, tf.Tensor>();
  private v = new Map<tf.Variable, tf.Tensor>();
  private t = 0;
  constructor(private readonly o: { lr: number; beta1: number; beta2: number; eps: number; weight_decay: number }) {}

  step(grads: Map<tf.Variable, tf.Tensor>): void {
    this.t++;
    const { lr, beta1, beta2, eps, weight_decay } = this.o;
    const bc1 = 1 - beta1 ** this.t;
    const bc2 = 1 - beta2 ** this.t;
    for (const [p, g] of grads) {
      const mPrev = this.m.get(p);
      const vPrev = this.v.get(p);
      const [m, v] = tf.tidy(() => {
        const m0 = mPrev ?? tf.zerosLike(g);
        const v0 = vPrev ?? tf.zerosLike(g);
        return [tf.add(tf.mul(m0, beta1), tf.mul(g, 1 - beta1)), tf.add(tf.mul(v0, beta2), tf.mul(tf.square(g), 1 - beta2))];
      });
      mPrev?.dispose();
      vPrev?.dispose();
      this.m.set(p, m);
      this.v.set(p, v);
      tf.tidy(() => {
        const decayed = tf.mul(p, 1 - lr * weight_decay);
        const update = tf.div(tf.div(m, bc1), tf.add(tf.sqrt(tf.div(v, bc2)), eps));
        p.assign(tf.sub(decayed, tf.mul(update, lr)));
      });
    }
  }

  dispose(): void {
    for (const t of [...this.m.values(), ...this.v.values()]) t.dispose();
    this.m.clear();
    this.v.clear();
  }
}
