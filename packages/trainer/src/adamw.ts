import { type AdamWUpdateAttrs, adamwUpdateLoop, FUSED_KERNELS } from "@midtrain/common";
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

/**
 * Hyper-parameters, and where the optimizer keeps its state: `offload: true` keeps the moments
 * in host memory (see {@link AdamW}). The placement is not a hyper-parameter: it is not part of
 * {@link AdamW.config} and not saved in checkpoints, which are the same whichever placement wrote them.
 */
export type AdamWOptions = Partial<AdamWConfig> & {
  /**
   * Keep the two moments as Float32Arrays in host (JavaScript) memory instead of device tensors,
   * and update one parameter at a time on the host (ZeRO-offload style): the device holds no
   * optimizer state, and during the update only one parameter's new values beyond the
   * parameters. For a backend whose memory is smaller than the host's (the 4 GiB wasm heap, a
   * GPU). `trainPhase` then also accumulates the gradients on the host. Default false.
   */
  offload?: boolean;
};

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
 * One parameter's update on the host, in place of {@link adamwUpdate}: reads p, g, m, v and writes
 * P, M, V (M and V may be m and v). The same arithmetic as the fused kernel of @midtrain/backend
 * (float64 with float32 rounding at each stored value; its JavaScript and native loops agree), so
 * the result is bitwise the device update's on wasm and cpu (both run `adamwUpdateLoop` of
 * @midtrain/common).
 */
export const adamwHostUpdate = adamwUpdateLoop;

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
 * State is keyed by parameter name, the learning rate is passed to every {@link apply} (or
 * {@link update}), and {@link getState}/{@link setState} move the moments in and out as Float32Arrays.
 *
 * With `offload: true` the moments live in host memory and {@link update} (async) reads each
 * parameter and its gradient, updates it on the host with the kernel's arithmetic
 * ({@link adamwHostUpdate}) and writes the parameter back, one parameter at a time;
 * {@link apply} (synchronous) is refused, since it cannot await the reads.
 */
export class AdamW {
  readonly config: AdamWConfig;
  /** Whether the moments are kept in host memory (the `offload` option). */
  readonly offload: boolean;
  private readonly noDecay: RegExp[];
  private readonly m = new Map<string, tf.Variable>();
  private readonly v = new Map<string, tf.Variable>();
  /** Host moments and their shapes (`offload: true`). */
  private readonly hm = new Map<string, Float32Array>();
  private readonly hv = new Map<string, Float32Array>();
  private readonly hostShapes = new Map<string, number[]>();
  private t = 0;

  constructor(options: AdamWOptions = {}) {
    const { offload, ...hyper } = options;
    if (offload !== undefined && typeof offload !== "boolean") {
      throw new TrainerConfigError(`AdamW offload must be true or false, got ${JSON.stringify(offload)}`);
    }
    this.offload = offload ?? false;
    this.config = { ...ADAMW_DEFAULTS, ...hyper, noDecay: [...(hyper.noDecay ?? ADAMW_DEFAULTS.noDecay)] };
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
    return this.offload ? [...this.hm.keys()] : [...this.m.keys()];
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
    if (this.offload) {
      throw new TrainerConfigError("this AdamW keeps its moments in host memory (offload: true): use `await optimizer.update(params, grads, lr)`");
    }
    this.checkStep(params, grads, lr);
    const attrs = this.nextStep(lr);
    for (const [name, g] of grads) {
      const p = params.get(name)!;
      if (g.shape.join(",") !== p.shape.join(",")) {
        throw new OptimizerStateError(`gradient of '${name}' has shape [${g.shape}], the parameter [${p.shape}]`);
      }
      this.deviceUpdate(name, p, g, attrs(name));
    }
  }

  /**
   * One update with learning rate `lr`, in either placement; gradients may be tensors or
   * Float32Arrays (in the layout of the variables; a host accumulator's). With `offload: true`
   * each parameter is read, updated on the host and written back before the next one, so the
   * device holds at most one parameter's new values at a time. Does not dispose `grads`.
   */
  async update(params: ReadonlyMap<string, tf.Variable>, grads: ReadonlyMap<string, tf.Tensor | Float32Array>, lr: number): Promise<void> {
    this.checkStep(params, grads, lr);
    for (const [name, g] of grads) {
      const p = params.get(name)!;
      const ok = g instanceof Float32Array ? g.length === p.size : g.shape.join(",") === p.shape.join(",");
      if (!ok) {
        const what = g instanceof Float32Array ? `${g.length} values` : `shape [${g.shape}]`;
        throw new OptimizerStateError(`gradient of '${name}' has ${what}, the parameter [${p.shape}]`);
      }
    }
    const attrs = this.nextStep(lr);
    for (const [name, g] of grads) {
      const p = params.get(name)!;
      if (!this.offload) {
        const gt = g instanceof Float32Array ? tf.tensor(g, p.shape, "float32") : g;
        try {
          this.deviceUpdate(name, p, gt, attrs(name));
        } finally {
          if (gt !== g) gt.dispose();
        }
        continue;
      }
      const gv = g instanceof Float32Array ? g : ((await g.data()) as Float32Array);
      const pv = (await p.data()) as Float32Array;
      const m = this.hostSlot(this.hm, name, p);
      const v = this.hostSlot(this.hv, name, p);
      const out = new Float32Array(p.size);
      adamwHostUpdate(pv, gv, m, v, out, m, v, attrs(name));
      const next = tf.tensor(out, p.shape, "float32");
      p.assign(next);
      next.dispose();
    }
  }

  private checkStep(params: ReadonlyMap<string, tf.Variable>, grads: ReadonlyMap<string, unknown>, lr: number): void {
    if (!(typeof lr === "number" && Number.isFinite(lr) && lr >= 0)) {
      throw new TrainerConfigError(`learning rate must be a finite number >= 0, got ${lr}`);
    }
    for (const name of grads.keys()) {
      if (!params.has(name)) throw new OptimizerStateError(`gradient for unknown parameter '${name}'`);
    }
  }

  /** Advances the step count; returns each parameter's kernel attributes at the new step. */
  private nextStep(lr: number): (name: string) => AdamWUpdateAttrs {
    this.t++;
    const { beta1, beta2, eps, weightDecay } = this.config;
    const bc1 = 1 - beta1 ** this.t;
    const sqrtBc2 = Math.sqrt(1 - beta2 ** this.t);
    const stepSize = lr / bc1;
    return (name) => ({ beta1, beta2, eps, decay: this.decays(name) ? 1 - lr * weightDecay : 1, stepSize, sqrtBc2 });
  }

  private deviceUpdate(name: string, p: tf.Variable, g: tf.Tensor, attrs: AdamWUpdateAttrs): void {
    const m = this.slot(this.m, name, p);
    const v = this.slot(this.v, name, p);
    // One fused pass where the backend has the kernel (wasm, cpu); tensor ops elsewhere.
    const [p1, m1, v1] = adamwUpdate(p, g, m, v, attrs);
    m.assign(m1);
    v.assign(v1);
    p.assign(p1);
    tf.dispose([p1, m1, v1]);
  }

  private hostSlot(map: Map<string, Float32Array>, name: string, p: tf.Tensor): Float32Array {
    let s = map.get(name);
    const shape = this.hostShapes.get(name);
    if (!s) {
      s = new Float32Array(p.size);
      map.set(name, s);
      this.hostShapes.set(name, p.shape.slice());
    } else if (shape && shape.join(",") !== p.shape.join(",")) {
      throw new OptimizerStateError(
        `parameter '${name}' has shape [${p.shape}] but its optimizer moment has shape [${shape}]; the optimizer belongs to another model`,
      );
    }
    return s;
  }

  /** Reads the moments (awaits every read; never synchronous). */
  async getState(): Promise<AdamWState> {
    const m: Record<string, Float32Array> = {};
    const v: Record<string, Float32Array> = {};
    if (this.offload) {
      // Copies, as the device placement's reads are: the caller may keep them while training goes on.
      for (const [name, a] of this.hm) m[name] = a.slice();
      for (const [name, a] of this.hv) v[name] = a.slice();
      return { step: this.t, m, v };
    }
    for (const [name, t] of this.m) m[name] = (await t.data()) as Float32Array;
    for (const [name, t] of this.v) v[name] = (await t.data()) as Float32Array;
    return { step: this.t, m, v };
  }

  /** Shapes of the moments by name. */
  shapes(): Record<string, number[]> {
    if (this.offload) return Object.fromEntries([...this.hostShapes].map(([k, s]) => [k, s.slice()]));
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
      if (this.offload) {
        this.hm.set(n, state.m[n].slice());
        this.hv.set(n, state.v[n].slice());
        this.hostShapes.set(n, shape.slice());
        continue;
      }
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
    this.hm.clear();
    this.hv.clear();
    this.hostShapes.clear();
  }

  /** Frees the moments; the step count is reset. */
  dispose(): void {
    this.disposeSlots();
    this.t = 0;
  }
}
