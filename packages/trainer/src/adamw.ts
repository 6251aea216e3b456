import { type AdamWUpdateAttrs, FUSED_KERNELS } from "@midtrain/common";
import * as tf from "@tensorflow/tfjs-core";
import { OptimizerStateError, TrainerConfigError } from "./errors.js";

/** Hyper-parameters of {@link AdamW} (JSON-serialisable; saved in checkpoints). */
export interface AdamWConfig {
  beta1: number;
  beta2: number;
  eps: number;
  /** Decoupled weight decay (torch.optim.AdamW `weight_decay`), applied as p -= lr * wd * p. */
  weightDecay: number;
  /**
   * Regular expressions (sources) matched against parameter names; a matching parameter gets
   * no weight decay. Default: biases and LayerNorm parameters.
   */
  noDecay: string[];
}

export type AdamWOptions = Partial<AdamWConfig>;

/** Moments by parameter name (in the layout of the variables) and the number of steps taken. */
export interface AdamWState {
  step: number;
  m: Record<string, Float32Array>;
  v: Record<string, Float32Array>;
}

/** Biases and LayerNorm parameters (Hugging Face GPT-NeoX names). */
export const DEFAULT_NO_DECAY: readonly string[] = Object.freeze(["\\.bias$", "layer_?norm"]);

export const ADAMW_DEFAULTS: Readonly<AdamWConfig> = Object.freeze({
  beta1: 0.9,
  beta2: 0.95,
  eps: 1e-8,
  weightDecay: 0.1,
  // Frozen too, so the shared defaults cannot be changed by a caller (AdamW copies them).
  noDecay: Object.freeze([...DEFAULT_NO_DECAY]) as string[],
});

function checkConfig(c: AdamWConfig): void {
  const inUnit = (k: "beta1" | "beta2") => {
    if (!(typeof c[k] === "number" && c[k] >= 0 && c[k] < 1)) {
      throw new TrainerConfigError(`AdamW ${k} must be in [0, 1), got ${c[k]}`);
    }
  };
  inUnit("beta1");
  inUnit("beta2");
  if (!(typeof c.eps === "number" && c.eps > 0 && Number.isFinite(c.eps))) {
    throw new TrainerConfigError(`AdamW eps must be a finite number > 0, got ${c.eps}`);
  }
  if (!(typeof c.weightDecay === "number" && c.weightDecay >= 0 && Number.isFinite(c.weightDecay))) {
    throw new TrainerConfigError(`AdamW weightDecay must be a finite number >= 0, got ${c.weightDecay}`);
  }
  if (!Array.isArray(c.noDecay) || c.noDecay.some((s) => typeof s !== "string")) {
    throw new TrainerConfigError("AdamW noDecay must be an array of regular-expression strings");
  }
}

function variableFrom(values: Float32Array, shape: number[]): tf.Variable {
  const init = tf.tensor(values, shape, "float32");
  const v = tf.variable(init, false);
  init.dispose();
  return v;
}

/** One parameter's update as tensor ops: [p', m', v']. */
export function adamwUpdateOps(p: tf.Tensor, g: tf.Tensor, m: tf.Tensor, v: tf.Tensor, f: AdamWUpdateAttrs): tf.Tensor[] {
  const { beta1, beta2, eps, decay, stepSize, sqrtBc2 } = f;
  return tf.tidy(() => {
    const m1 = tf.add(tf.mul(m, beta1), tf.mul(g, 1 - beta1));
    const v1 = tf.add(tf.mul(v, beta2), tf.mul(tf.square(g), 1 - beta2));
    const denom = tf.add(tf.div(tf.sqrt(v1), sqrtBc2), eps);
    const decayed = decay === 1 ? p : tf.mul(p, decay);
    const p1 = tf.sub(decayed, tf.mul(tf.div(m1, denom), stepSize));
    return [p1, m1, v1];
  });
}

/**
 * One parameter's update, fused when the active backend has @midtrain/backend's AdamW kernel
 * (looked up by its name, FUSED_KERNELS.adamw, so this package needs no import of the
 * backend): [p', m', v']. Other backends run the same formula as tensor ops.
 */
export function adamwUpdate(p: tf.Tensor, g: tf.Tensor, m: tf.Tensor, v: tf.Tensor, f: AdamWUpdateAttrs): tf.Tensor[] {
  if (g.dtype === "float32" && tf.getKernel(FUSED_KERNELS.adamw, tf.getBackend())) {
    return tf.engine().runKernel(FUSED_KERNELS.adamw, { p, g, m, v }, f as unknown as tf.NamedAttrMap) as unknown as tf.Tensor[];
  }
  return adamwUpdateOps(p, g, m, v, f);
}

/**
 * AdamW with decoupled weight decay, the update of `torch.optim.AdamW`:
 *
 *     m = b1 m + (1 - b1) g;  v = b2 v + (1 - b2) g²
 *     p = p (1 - lr wd) - lr / (1 - b1^t) · m / (sqrt(v) / sqrt(1 - b2^t) + eps)
 *
 * State is keyed by parameter name, the learning rate is passed to every {@link apply}, and
 * {@link getState}/{@link setState} move the moments in and out as Float32Arrays.
 */
export class AdamW {
  readonly config: AdamWConfig;
  private readonly noDecay: RegExp[];
  private readonly m = new Map<string, tf.Variable>();
  private readonly v = new Map<string, tf.Variable>();
  private t = 0;

  constructor(options: AdamWOptions = {}) {
    this.config = { ...ADAMW_DEFAULTS, ...options, noDecay: [...(options.noDecay ?? ADAMW_DEFAULTS.noDecay)] };
    checkConfig(this.config);
    this.noDecay = this.config.noDecay.map((s) => {
      try {
        return new RegExp(s);
      } catch (e) {
        throw new TrainerConfigError(`AdamW noDecay pattern '${s}' is not a valid regular expression: ${(e as Error).message}`);
      }
    });
  }

  /** Optimizer steps taken (the `t` of the bias corrections). */
  get step(): number {
    return this.t;
  }

  /** Whether parameter `name` gets weight decay. */
  decays(name: string): boolean {
    return this.config.weightDecay > 0 && !this.noDecay.some((r) => r.test(name));
  }

  /** Names of the parameters that have moments. */
  names(): string[] {
    return [...this.m.keys()];
  }

  private slot(map: Map<string, tf.Variable>, name: string, p: tf.Tensor): tf.Variable {
    let s = map.get(name);
    if (!s) {
      const zeros = tf.zerosLike(p);
      s = tf.variable(zeros, false);
      zeros.dispose();
      map.set(name, s);
    } else if (s.shape.join(",") !== p.shape.join(",")) {
      throw new OptimizerStateError(
        `parameter '${name}' has shape [${p.shape}] but its optimizer moment has shape [${s.shape}]; the optimizer belongs to another model`,
      );
    }
    return s;
  }

  /**
   * One update with learning rate `lr`. Parameters without a gradient are left alone (their
   * moments too). Does not dispose `grads`.
   */
  apply(params: ReadonlyMap<string, tf.Variable>, grads: ReadonlyMap<string, tf.Tensor>, lr: number): void {
    if (!(typeof lr === "number" && Number.isFinite(lr) && lr >= 0)) {
      throw new TrainerConfigError(`learning rate must be a finite number >= 0, got ${lr}`);
    }
    for (const name of grads.keys()) {
      if (!params.has(name)) throw new OptimizerStateError(`gradient for unknown parameter '${name}'`);
    }
    this.t++;
    const { beta1, beta2, eps, weightDecay } = this.config;
    const bc1 = 1 - beta1 ** this.t;
    const sqrtBc2 = Math.sqrt(1 - beta2 ** this.t);
    const stepSize = lr / bc1;
    for (const [name, g] of grads) {
      const p = params.get(name)!;
      if (g.shape.join(",") !== p.shape.join(",")) {
        throw new OptimizerStateError(`gradient of '${name}' has shape [${g.shape}], the parameter [${p.shape}]`);
      }
      const m = this.slot(this.m, name, p);
      const v = this.slot(this.v, name, p);
      const decay = this.decays(name) ? 1 - lr * weightDecay : 1;
      // One fused pass where the backend has the kernel (wasm, cpu); tensor ops elsewhere.
      const [p1, m1, v1] = adamwUpdate(p, g, m, v, { beta1, beta2, eps, decay, stepSize, sqrtBc2 });
      m.assign(m1);
      v.assign(v1);
      p.assign(p1);
      tf.dispose([p1, m1, v1]);
    }
  }

  /** Reads the moments (awaits every read; never synchronous). */
  async getState(): Promise<AdamWState> {
    const m: Record<string, Float32Array> = {};
    const v: Record<string, Float32Array> = {};
    for (const [name, t] of this.m) m[name] = (await t.data()) as Float32Array;
    for (const [name, t] of this.v) v[name] = (await t.data()) as Float32Array;
    return { step: this.t, m, v };
  }

  /** Shapes of the moments by name. */
  shapes(): Record<string, number[]> {
    return Object.fromEntries([...this.m].map(([k, t]) => [k, t.shape.slice()]));
  }

  /**
   * Replaces the state. `params` gives the shape of each moment (the model's variables);
   * every moment must name a parameter and hold as many values as it has.
   */
  setState(state: AdamWState, params: ReadonlyMap<string, tf.Tensor>): void {
    if (!state || !Number.isInteger(state.step) || state.step < 0) {
      throw new OptimizerStateError(`optimizer state needs an integer step >= 0, got ${state?.step}`);
    }
    const names = Object.keys(state.m ?? {});
    const vNames = Object.keys(state.v ?? {});
    if (names.length !== vNames.length || names.some((n) => !Object.hasOwn(state.v, n))) {
      throw new OptimizerStateError("optimizer state has first and second moments for different parameters");
    }
    for (const n of names) {
      const p = params.get(n);
      if (!p) throw new OptimizerStateError(`optimizer state has moments for '${n}', which the model does not have`);
      for (const [which, arr] of [
        ["m", state.m[n]],
        ["v", state.v[n]],
      ] as const) {
        if (!(arr instanceof Float32Array) || arr.length !== p.size) {
          throw new OptimizerStateError(`optimizer moment ${which} of '${n}' must hold ${p.size} float32 values`);
        }
      }
    }
    this.disposeSlots();
    for (const n of names) {
      const shape = params.get(n)!.shape;
      this.m.set(n, variableFrom(state.m[n], shape));
      this.v.set(n, variableFrom(state.v[n], shape));
    }
    this.t = state.step;
  }

  private disposeSlots(): void {
    for (const s of this.m.values()) s.dispose();
    for (const s of this.v.values()) s.dispose();
    this.m.clear();
    this.v.clear();
  }

  /** Frees the moments; the step count is reset. */
  dispose(): void {
    this.disposeSlots();
    this.t = 0;
  }
}
