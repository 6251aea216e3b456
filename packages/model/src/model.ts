import { FUSED_KERNELS, Rng } from "@midtrain/common";
import * as tf from "@tensorflow/tfjs-core";
import { countParams, derivedSizes, flopsPerToken, type ModelConfig, validateConfig } from "./config.js";
import { hfToStored, initStd, type ParamSpec, paramSpecs, storedShape, storedToHf } from "./params.js";
import { CheckpointError, ModelConfigError, ModelInputError } from "./errors.js";
import { addBias, affine, constMatMul, crossEntropyPerRow, embeddingLookup, hasFusedKernels, linearCrossEntropyPerRow } from "./ops.js";

/** How the loss's output layer is computed: tokens per chunk, `"auto"`, or 0 for the full logits. */
export type LossChunkTokens = number | "auto";

/**
 * Memory options of a model (see {@link GPTNeoXModel.setMemoryOptions}): they change what is
 * kept for the backward pass, never the values or gradients beyond fp32 rounding.
 */
export interface MemoryOptions {
  /**
   * Activation recomputation per transformer block: each block's forward pass is run again in
   * the backward pass, so only the block inputs ([B·T, d] each) are kept between the passes
   * instead of every intermediate activation. Costs one more forward pass of the blocks.
   * Default false.
   */
  recompute?: boolean;
  /**
   * How `loss` and `perTokenLoss` compute the output layer and cross-entropy. `"auto"`
   * (default): in one piece while the [B·T, V] float32 logits fit in
   * {@link LOSS_CHUNK_AUTO_BYTES} (and, on WebGPU, in one storage buffer), else fused with the
   * projection in chunks of `floor(budget / (4·V))` tokens. A number n ≥ 1: always fused, n
   * tokens per chunk (the logits of one chunk, [n, V], are the largest loss tensor; each
   * chunk's logits are recomputed in the backward pass). 0: never chunked (the full logits
   * are built and kept for the backward pass, as `forward` does).
   */
  lossChunkTokens?: LossChunkTokens;
}

export interface CreateModelOptions extends MemoryOptions {
  /** Seed of the initialization; equal seeds give identical weights. Default 0. */
  seed?: number;
}

/** Per-call override of the model's {@link MemoryOptions.lossChunkTokens}. */
export interface LossOptions {
  lossChunkTokens?: LossChunkTokens;
}

/**
 * The budget of `lossChunkTokens: "auto"`: logits up to 32 MiB are built whole, larger ones in
 * chunks of at most this size (a chunk's backward holds about three such tensors at once).
 */
export const LOSS_CHUNK_AUTO_BYTES = 32 * 1024 * 1024;

/** WebGPU limits that bound one tensor (each tensor is one GPU buffer bound as one storage buffer). */
export interface BufferLimits {
  maxStorageBufferBindingSize?: number;
  maxBufferSize?: number;
}

function checkChunkSetting(v: unknown, where: string): LossChunkTokens {
  if (v === "auto" || (typeof v === "number" && Number.isInteger(v) && v >= 0)) return v;
  throw new ModelConfigError(`${where} must be "auto", 0 (full logits) or a positive integer number of tokens per chunk, got ${JSON.stringify(v)}`);
}

function validateMemoryOptions(o: MemoryOptions, where: string): Required<MemoryOptions> {
  if (o.recompute !== undefined && typeof o.recompute !== "boolean") {
    throw new ModelConfigError(`${where}.recompute must be a boolean, got ${JSON.stringify(o.recompute)}`);
  }
  return { recompute: o.recompute ?? false, lossChunkTokens: checkChunkSetting(o.lossChunkTokens ?? "auto", `${where}.lossChunkTokens`) };
}

/** The smaller of the two WebGPU limits that bound one tensor, with its name. */
function bindingLimit(limits: BufferLimits): { name: string; bytes: number } | undefined {
  const cands = [
    { name: "maxStorageBufferBindingSize", bytes: limits.maxStorageBufferBindingSize },
    { name: "maxBufferSize", bytes: limits.maxBufferSize },
  ].filter((c): c is { name: string; bytes: number } => typeof c.bytes === "number" && c.bytes > 0);
  if (cands.length === 0) return undefined;
  return cands.reduce((a, b) => (b.bytes < a.bytes ? b : a));
}

/**
 * Tokens per chunk of the loss for `tokens` rows over a `paddedVocabSize`-wide output layer,
 * under a {@link MemoryOptions.lossChunkTokens} setting; 0 means the full logits are built
 * (no chunking). With WebGPU `limits`, `"auto"` keeps one chunk's logits within one buffer.
 */
export function resolveLossChunkTokens(tokens: number, paddedVocabSize: number, setting: LossChunkTokens = "auto", limits?: BufferLimits): number {
  const s = checkChunkSetting(setting, "lossChunkTokens");
  if (s !== "auto") return s === 0 ? 0 : Math.min(s, tokens);
  const rowBytes = 4 * paddedVocabSize;
  const limit = limits ? bindingLimit(limits) : undefined;
  const budget = Math.min(LOSS_CHUNK_AUTO_BYTES, limit?.bytes ?? Number.POSITIVE_INFINITY);
  if (tokens * rowBytes <= budget) return 0;
  return Math.max(1, Math.min(tokens, Math.floor(budget / rowBytes)));
}

/** What a model call builds at its largest: used to check WebGPU buffer limits before running. */
export interface TensorPlan {
  batch: number;
  seqLen: number;
  /** Tokens per loss chunk ({@link resolveLossChunkTokens}); 0 = the full [batch·seqLen, V] logits. */
  lossChunkTokens: number;
  /** What the call is: `forward` returns full logits, `loss` may chunk them, `hidden` builds none. */
  call: "forward" | "loss" | "hidden";
}

/**
 * Refuses, with {@link ModelInputError}, a call whose parameters or activations would need a
 * WebGPU buffer larger than the device allows (the driver rejects such a binding and the op
 * silently yields zeros). Names the tensor, the limit and what to change. Pure arithmetic: a
 * memory plan can call it with an adapter's limits before anything is allocated.
 */
export function checkBufferLimits(config: ModelConfig, plan: TensorPlan, limits: BufferLimits): void {
  const limit = bindingLimit(limits);
  if (!limit) return;
  const { dModel: d, nHead, paddedVocabSize: V, intermediateSize: I } = config;
  const { batch: B, seqLen: T } = plan;
  const L = limit.bytes;
  const over = (what: string, shape: number[], fix: string): void => {
    const bytes = shape.reduce((a, b) => a * b, 4);
    if (bytes <= L) return;
    throw new ModelInputError(
      `${what} [${shape.join(", ")}] needs ${bytes} bytes, more than this WebGPU device allows for one buffer (${limit.name} ${L}); ${fix}`,
    );
  };
  const noFit = "this model cannot run on this adapter: use an adapter with a larger limit (discrete GPUs usually allow 2 GiB or more) or the wasm backend";
  // Parameters (their gradients and AdamW moments have the same shapes), largest first.
  over("parameter 'gpt_neox.embed_in.weight'", [V, d], noFit);
  over("parameter 'embed_out.weight' (stored [d, V])", [d, V], noFit);
  over("parameter 'gpt_neox.layers.*.mlp.dense_h_to_4h.weight' (stored [d, 4d])", [d, I], noFit);
  // Activations of one micro-batch.
  const maxTokens = (perToken: number) => Math.max(0, Math.floor(L / (4 * perToken)));
  over(
    "the attention scores [batch·nHead, T, T]",
    [B * nHead, T, T],
    T * T * nHead * 4 > L
      ? `even one sequence of ${T} tokens is too long: use sequences of at most ${Math.floor(Math.sqrt(L / (4 * nHead)))} tokens`
      : `use a smaller micro-batch: at most ${Math.floor(L / (4 * nHead * T * T))} sequences of ${T} tokens (raise gradAccum to keep the tokens per step)`,
  );
  over(
    "the MLP activations [batch·T, intermediateSize]",
    [B * T, I],
    `use a smaller micro-batch: at most ${maxTokens(I)} tokens (raise gradAccum to keep the tokens per step)`,
  );
  if (plan.call === "hidden") return;
  const rows = maxTokens(V);
  const full = !(plan.lossChunkTokens > 0);
  over(
    full ? "the logits [batch·T, paddedVocabSize]" : "one loss chunk's logits [lossChunkTokens, paddedVocabSize]",
    [full ? B * T : Math.min(plan.lossChunkTokens, B * T), V],
    !full
      ? `set lossChunkTokens to at most ${rows} (or "auto")`
      : plan.call === "forward"
        ? `use at most ${rows} tokens per forward() call; loss() and perTokenLoss() compute the loss in chunks (lossChunkTokens "auto")`
        : `use at most ${rows} tokens per micro-batch (raise gradAccum or lower batch size × sequence length), or compute the loss in chunks (lossChunkTokens "auto" or at most ${rows})`,
  );
}

/** The active backend's buffer limits on WebGPU; undefined elsewhere. */
function activeBufferLimits(): BufferLimits | undefined {
  if (tf.getBackend() !== "webgpu") return undefined;
  const device = (tf.backend() as { device?: { limits?: BufferLimits } }).device;
  return device?.limits;
}

/** The suffixes of one block's parameters, in the order the block functions take them. */
const BLOCK_PARAMS = [
  "input_layernorm.weight",
  "input_layernorm.bias",
  "post_attention_layernorm.weight",
  "post_attention_layernorm.bias",
  "attention.query_key_value.weight",
  "attention.query_key_value.bias",
  "attention.dense.weight",
  "attention.dense.bias",
  "mlp.dense_h_to_4h.weight",
  "mlp.dense_h_to_4h.bias",
  "mlp.dense_4h_to_h.weight",
  "mlp.dense_4h_to_h.bias",
] as const;

/** One block's parameters (or the saved copies the recomputation uses), in {@link BLOCK_PARAMS} order. */
type BlockWeights = readonly tf.Tensor[];

/**
 * Gradients of `f` with respect to `xs`, weighted by `dy`, computed inside another gradient's
 * backward pass. tfjs's `gradients` starts a fresh tape when no recording is in progress (as
 * during a backward pass) and clears it when done, which would drop the outer backward's tape
 * (its saved tensors would leak and its cleanup fail); the outer tape is put back afterwards.
 */
function gradientsInBackward(f: () => tf.Tensor, xs: tf.Tensor[], dy: tf.Tensor): tf.Tensor[] {
  const engine = tf.engine() as unknown as {
    state: { activeTape: unknown };
    gradients(f: () => tf.Tensor, xs: tf.Tensor[], dy: tf.Tensor): { value: tf.Tensor; grads: Array<tf.Tensor | undefined> };
  };
  const outer = engine.state.activeTape;
  try {
    return tf.tidy(() => {
      const { grads } = engine.gradients(f, xs, dy.dtype === "float32" ? dy : tf.cast(dy, "float32"));
      return grads.map((g, k) => g ?? tf.zerosLike(xs[k]));
    });
  } finally {
    engine.state.activeTape = outer;
  }
}

/** A float32 tensor in Hugging Face layout, as read from or written to a checkpoint. */
export interface HfTensor {
  shape: number[];
  data: Float32Array;
}

const SQRT1_2 = Math.SQRT1_2;

interface RopeTables {
  cosQ: Float32Array;
  sinQ: Float32Array;
  cosK: Float32Array;
  sinK: Float32Array;
  /** [headDim, headDim] matrix swapping the halves of the rotary dims (symmetric). */
  pairing: Float32Array;
}

/**
 * Exact GELU: 0.5 x (1 + erf(x / sqrt 2)). Runs the fused kernels FUSED_KERNELS.gelu /
 * .geluGrad (contracts in @midtrain/common) when the active backend has them (wasm with the
 * native addon), else tensor ops.
 */
export function gelu(x: tf.Tensor): tf.Tensor {
  if (hasFusedKernels(x, FUSED_KERNELS.gelu, FUSED_KERNELS.geluGrad)) {
    const f = tf.customGrad((...args: Array<tf.Tensor | tf.GradSaveFunc>) => {
      const [t, save] = args as [tf.Tensor, tf.GradSaveFunc];
      save([t]);
      return {
        value: tf.engine().runKernel(FUSED_KERNELS.gelu, { x: t }) as tf.Tensor,
        gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => [tf.engine().runKernel(FUSED_KERNELS.geluGrad, { x: saved[0], dy }) as tf.Tensor],
      };
    });
    return f(x);
  }
  return tf.tidy(() => tf.mul(tf.mul(x, 0.5), tf.add(tf.erf(tf.mul(x, SQRT1_2)), 1)));
}

/**
 * LayerNorm over the last axis through the fused kernels FUSED_KERNELS.layerNorm /
 * .layerNormGrad (contracts in @midtrain/common); `undefined` when the active backend does
 * not have them.
 */
export function fusedLayerNorm(x: tf.Tensor2D, gamma: tf.Tensor1D, beta: tf.Tensor1D, eps: number): tf.Tensor2D | undefined {
  if (!hasFusedKernels(x, FUSED_KERNELS.layerNorm, FUSED_KERNELS.layerNormGrad)) return undefined;
  const f = tf.customGrad((...args: Array<tf.Tensor | tf.GradSaveFunc>) => {
    const [xt, g, b, save] = args as [tf.Tensor2D, tf.Tensor1D, tf.Tensor1D, tf.GradSaveFunc];
    const [y, mean, rstd] = tf.engine().runKernel(FUSED_KERNELS.layerNorm, { x: xt, gamma: g, beta: b }, { eps }) as unknown as tf.Tensor[];
    save([xt, g, mean, rstd]);
    return {
      value: y,
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => {
        const [xs, gs, ms, rs] = saved;
        return tf.engine().runKernel(FUSED_KERNELS.layerNormGrad, { x: xs, gamma: gs, mean: ms, rstd: rs, dy }) as unknown as tf.Tensor[];
      },
    };
  });
  return f(x, gamma, beta) as tf.Tensor2D;
}

/**
 * Rotate-half rotary embedding through the fused kernels FUSED_KERNELS.rotary / .rotaryGrad
 * (contracts in @midtrain/common); `undefined` when the active backend does not have them.
 * cos and sin are constants (no gradient).
 */
export function fusedRotary(x: tf.Tensor2D, cos: tf.Tensor2D, sin: tf.Tensor2D, headDim: number, half: number): tf.Tensor2D | undefined {
  if (!hasFusedKernels(x, FUSED_KERNELS.rotary, FUSED_KERNELS.rotaryGrad)) return undefined;
  const attrs = { headDim, half };
  const f = tf.customGrad((...args: Array<tf.Tensor | tf.GradSaveFunc>) => {
    const [xt, save] = args as [tf.Tensor2D, tf.GradSaveFunc];
    save([cos, sin]);
    return {
      value: tf.engine().runKernel(FUSED_KERNELS.rotary, { x: xt, cos, sin }, attrs) as tf.Tensor2D,
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => [
        tf.engine().runKernel(FUSED_KERNELS.rotaryGrad, { dy, cos: saved[0], sin: saved[1] }, attrs) as tf.Tensor,
      ],
    };
  });
  return f(x) as tf.Tensor2D;
}

/**
 * GPT-NeoX / Pythia decoder. Parameters live in {@link params} under their Hugging Face
 * names; matrix weights of `nn.Linear` layers are stored transposed ([in, out]) and the fused
 * query_key_value columns regrouped (see {@link ParamSpec.layout}) so the forward pass needs
 * no transposed matmuls and no split of activations.
 *
 * All methods taking tensors are synchronous and may be called inside `tf.grad` /
 * `tf.variableGrads`; they do not dispose their inputs.
 */
export class GPTNeoXModel {
  readonly config: ModelConfig;
  /** Trainable variables by Hugging Face parameter name. */
  readonly params: Map<string, tf.Variable>;
  /** Name, HF shape, layout and init kind of each parameter, in HF order. */
  readonly specs: readonly ParamSpec[];
  private readonly headDim: number;
  private readonly rotaryDims: number;
  private readonly ropeCache = new Map<number, RopeTables>();
  private readonly maskCache = new Map<number, Float32Array>();
  private memory: Required<MemoryOptions>;
  private disposed = false;

  /** Use {@link createModel} or {@link modelFromHfTensors}. */
  constructor(config: ModelConfig, values: Map<string, Float32Array>, memory: MemoryOptions = {}) {
    this.config = validateConfig({ ...config });
    this.memory = validateMemoryOptions(memory, "options");
    this.specs = paramSpecs(this.config);
    const { headDim, rotaryDims } = derivedSizes(this.config);
    this.headDim = headDim;
    this.rotaryDims = rotaryDims;
    this.params = new Map();
    try {
      for (const spec of this.specs) {
        const v = values.get(spec.name);
        if (!v) throw new CheckpointError(`missing value for parameter '${spec.name}'`);
        const init = tf.tensor(v, storedShape(spec), "float32");
        this.params.set(spec.name, tf.variable(init, true));
        init.dispose();
      }
    } catch (e) {
      for (const v of this.params.values()) v.dispose(); // no half-built model left behind
      throw e;
    }
  }

  /** The memory options in effect (defaults filled in). */
  get memoryOptions(): Readonly<Required<MemoryOptions>> {
    return { ...this.memory };
  }

  /**
   * Changes the memory options (recomputation, loss chunking) for later calls; the fields
   * given replace the current ones. Throws {@link ModelConfigError} on invalid values.
   */
  setMemoryOptions(options: MemoryOptions): void {
    this.memory = validateMemoryOptions({ ...this.memory, ...options }, "memory options");
  }

  /**
   * Tokens per loss chunk a `loss`/`perTokenLoss` call over `tokens` positions uses under the
   * current options and backend; 0 = the full logits are built (see {@link resolveLossChunkTokens}).
   */
  lossChunkTokensFor(tokens: number, options: LossOptions = {}): number {
    const setting = options.lossChunkTokens === undefined ? this.memory.lossChunkTokens : checkChunkSetting(options.lossChunkTokens, "lossChunkTokens");
    return resolveLossChunkTokens(tokens, this.config.paddedVocabSize, setting, activeBufferLimits());
  }

  /** All trainable variables, in HF parameter order. */
  variables(): tf.Variable[] {
    return [...this.params.values()];
  }

  private p(name: string): tf.Variable {
    const v = this.params.get(name);
    if (!v) throw new Error(`internal: no parameter ${name}`);
    return v;
  }

  private checkIds(ids: tf.Tensor, what: string): [number, number] {
    if (this.disposed) throw new ModelInputError("model was disposed; create or load it again");
    if (ids.rank !== 2) {
      throw new ModelInputError(`${what} must be a 2-D [batch, time] tensor, got shape [${ids.shape}]`);
    }
    if (ids.dtype !== "int32") {
      throw new ModelInputError(`${what} must be int32, got ${ids.dtype}; use tf.tensor2d(ids, shape, 'int32')`);
    }
    const [B, T] = ids.shape as [number, number];
    if (T > this.config.seqLen) {
      throw new ModelInputError(`sequence length ${T} exceeds the model's context (seqLen ${this.config.seqLen}); cut the input or raise seqLen`);
    }
    if (B === 0 || T === 0) throw new ModelInputError(`${what} is empty (shape [${ids.shape}])`);
    return [B, T];
  }

  /**
   * Rotary tables for T positions over the model width (all heads), in the layout
   * `rotated = x * cos + pair(x) * sin`: `pairing` swaps the two halves of each head's rotary
   * dims and `sin` carries rotate_half's sign (-sin on the first half, +sin on the second,
   * 0 on the pass-through dims, whose cos is 1). The query tables include 1/sqrt(headDim).
   */
  private ropeTables(T: number): RopeTables {
    let tab = this.ropeCache.get(T);
    if (tab) return tab;
    const { dModel: d, nHead, rotaryBase } = this.config;
    const hd = this.headDim;
    const r = this.rotaryDims;
    const half = r / 2;
    const scale = 1 / Math.sqrt(hd);
    const cosK = new Float32Array(T * d).fill(1);
    const sinK = new Float32Array(T * d);
    // out[i] = x[i + r/2] for i < r/2, x[i - r/2] for r/2 <= i < r; 0 on pass-through dims
    const pairing = new Float32Array(hd * hd);
    for (let i = 0; i < half; i++) {
      pairing[(i + half) * hd + i] = 1;
      pairing[i * hd + i + half] = 1;
    }
    for (let t = 0; t < T; t++) {
      for (let i = 0; i < half; i++) {
        // HF GPTNeoXRotaryEmbedding: inv_freq = 1 / base^(2i / r); emb = cat(freqs, freqs)
        const a = t * (1 / rotaryBase ** ((2 * i) / r));
        const cs = Math.cos(a);
        const sn = Math.sin(a);
        for (let h = 0; h < nHead; h++) {
          const c = t * d + h * hd + i;
          cosK[c] = cs;
          cosK[c + half] = cs;
          sinK[c] = -sn;
          sinK[c + half] = sn;
        }
      }
    }
    const cosQ = cosK.map((v) => v * scale);
    const sinQ = sinK.map((v) => v * scale);
    tab = { cosQ, sinQ, cosK, sinK, pairing };
    this.ropeCache.set(T, tab);
    return tab;
  }

  private layerNorm(x: tf.Tensor2D, w: tf.Tensor1D, b: tf.Tensor1D): tf.Tensor2D {
    const fused = fusedLayerNorm(x, w, b, this.config.layerNormEps);
    if (fused) return fused;
    const xc = tf.sub(x, tf.mean(x, -1, true));
    const variance = tf.mean(tf.square(xc), -1, true);
    const normed: tf.Tensor2D = tf.mul(xc, tf.rsqrt(tf.add(variance, this.config.layerNormEps)));
    return affine(normed, w, b);
  }

  private linear(x: tf.Tensor2D, w: tf.Tensor, b: tf.Tensor): tf.Tensor2D {
    return addBias(tf.matMul(x, w as tf.Tensor2D), b as tf.Tensor1D);
  }

  /** x [B*T, d] -> x * cos + pair(x) * sin, as [B, T, d]. */
  private applyRope(x: tf.Tensor2D, B: number, T: number, cos: Float32Array, sin: Float32Array, pairing: tf.Tensor2D): tf.Tensor3D {
    const d = this.config.dModel;
    const hd = this.headDim;
    const c = tf.tensor2d(cos, [T, d]);
    const s = tf.tensor2d(sin, [T, d]);
    const fused = fusedRotary(x, c, s, hd, this.rotaryDims / 2);
    if (fused) return tf.reshape(fused, [B, T, d]);
    const x3 = tf.reshape(x, [B, T, d]);
    if (this.rotaryDims === 0) return tf.mul(x3, c);
    const paired = tf.reshape(constMatMul(tf.reshape(x, [(B * T * d) / hd, hd]), pairing, pairing), [B, T, d]);
    return tf.add(tf.mul(x3, c), tf.mul(paired, s));
  }

  private attention(x: tf.Tensor2D, ws: BlockWeights, B: number, T: number, maskBias: tf.Tensor2D): tf.Tensor2D {
    const { nHead, dModel: d } = this.config;
    const hd = this.headDim;
    // Stored columns are [q | k | v] blocks (see ParamSpec.layout): three plain matmuls with
    // slices of the weight instead of one matmul and a split of the activations.
    const w = ws[4];
    const b = ws[5] as tf.Tensor1D;
    const proj = (j: number): tf.Tensor2D => addBias(tf.matMul(x, tf.slice(w, [0, j * d], [d, d])), tf.slice(b, [j * d], [d]));
    const tab = this.ropeTables(T);
    const pairing = tf.tensor2d(tab.pairing, [hd, hd]);
    const q = this.applyRope(proj(0), B, T, tab.cosQ, tab.sinQ, pairing);
    const k = this.applyRope(proj(1), B, T, tab.cosK, tab.sinK, pairing);
    const v = proj(2);
    const heads = (t: tf.Tensor, order: number[], shape: [number, number, number]) =>
      tf.reshape(tf.transpose(tf.reshape(t, [B, T, nHead, hd]), order), shape) as tf.Tensor3D;
    const qh = heads(q, [0, 2, 1, 3], [B * nHead, T, hd]);
    const kT = heads(k, [0, 2, 3, 1], [B * nHead, hd, T]);
    const vh = heads(v, [0, 2, 1, 3], [B * nHead, T, hd]);
    const probs = tf.softmax(tf.add(tf.matMul(qh, kT), maskBias), -1) as tf.Tensor3D;
    const ctx = tf.reshape(tf.transpose(tf.reshape(tf.matMul(probs, vh), [B, nHead, T, hd]), [0, 2, 1, 3]), [B * T, d]) as tf.Tensor2D;
    return this.linear(ctx, ws[6], ws[7]);
  }

  private mlp(x: tf.Tensor2D, ws: BlockWeights): tf.Tensor2D {
    const h = gelu(this.linear(x, ws[8], ws[9])) as tf.Tensor2D;
    return this.linear(h, ws[10], ws[11]);
  }

  private causalMask(T: number): tf.Tensor2D {
    let m = this.maskCache.get(T);
    if (!m) {
      m = new Float32Array(T * T);
      for (let r = 0; r < T; r++) for (let c = r + 1; c < T; c++) m[r * T + c] = -1e9;
      this.maskCache.set(T, m);
    }
    return tf.tensor2d(m, [T, T]);
  }

  /** Block i's parameters, in {@link BLOCK_PARAMS} order. */
  private blockWeights(i: number): tf.Variable[] {
    return BLOCK_PARAMS.map((suffix) => this.p(`gpt_neox.layers.${i}.${suffix}`));
  }

  /** One transformer block on x [B*T, d] with the given weights. */
  private block(x: tf.Tensor2D, ws: BlockWeights, B: number, T: number, maskBias: tf.Tensor2D): tf.Tensor2D {
    const attn = this.attention(this.layerNorm(x, ws[0] as tf.Tensor1D, ws[1] as tf.Tensor1D), ws, B, T, maskBias);
    const mlpIn: tf.Tensor2D = this.config.parallelResidual ? x : tf.add(x, attn);
    const mlp = this.mlp(this.layerNorm(mlpIn, ws[2] as tf.Tensor1D, ws[3] as tf.Tensor1D), ws);
    return tf.add(tf.add(x, attn), mlp);
  }

  /**
   * Block i with activation recomputation: nothing inside the block is recorded for the
   * backward pass (a custom gradient keeps only its input and weights); the backward pass runs
   * the block's forward again under a tape and takes its gradients from there.
   */
  private recomputedBlock(x: tf.Tensor2D, i: number, B: number, T: number): tf.Tensor2D {
    const f = tf.customGrad((...args: Array<tf.Tensor | tf.GradSaveFunc>) => {
      const save = args[args.length - 1] as tf.GradSaveFunc;
      const inputs = args.slice(0, -1) as tf.Tensor[];
      save(inputs);
      const run = (t: tf.Tensor[]) => this.block(t[0] as tf.Tensor2D, t.slice(1), B, T, this.causalMask(T));
      return {
        value: run(inputs),
        gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => gradientsInBackward(() => run(saved), saved, dy),
      };
    });
    return f(x, ...this.blockWeights(i)) as tf.Tensor2D;
  }

  /** Runs the blocks; returns the final-LayerNorm output [B*T, d]. Not tidied. */
  private trunk(ids: tf.Tensor2D, B: number, T: number, collect?: tf.Tensor[]): tf.Tensor2D {
    const recompute = this.memory.recompute && !collect;
    const maskBias = recompute ? undefined : this.causalMask(T);
    let x = embeddingLookup(this.p("gpt_neox.embed_in.weight") as tf.Tensor2D, tf.reshape(ids, [B * T]));
    if (collect) collect.push(x);
    for (let i = 0; i < this.config.nLayer; i++) {
      x = maskBias ? this.block(x, this.blockWeights(i), B, T, maskBias) : this.recomputedBlock(x, i, B, T);
      if (collect) collect.push(x);
    }
    return this.layerNorm(x, this.p("gpt_neox.final_layer_norm.weight") as tf.Tensor1D, this.p("gpt_neox.final_layer_norm.bias") as tf.Tensor1D);
  }

  /** Refuses, before anything runs, a call that would need a WebGPU buffer over the device's limit. */
  private checkBuffers(B: number, T: number, lossChunkTokens: number, call: TensorPlan["call"]): void {
    const limits = activeBufferLimits();
    if (limits) checkBufferLimits(this.config, { batch: B, seqLen: T, lossChunkTokens, call }, limits);
  }

  /** Logits over the padded vocabulary, [B, T, paddedVocabSize]. */
  forward(ids: tf.Tensor2D): tf.Tensor3D {
    const [B, T] = this.checkIds(ids, "ids");
    this.checkBuffers(B, T, 0, "forward");
    return tf.tidy(() => tf.reshape(tf.matMul(this.trunk(ids, B, T), this.p("embed_out.weight")), [B, T, this.config.paddedVocabSize])) as tf.Tensor3D;
  }

  /**
   * Negative log-likelihood of each target, [B, T] (no one-hot). Computed in chunks like
   * {@link loss} (see {@link MemoryOptions.lossChunkTokens}; `options` overrides it for this call).
   */
  perTokenLoss(ids: tf.Tensor2D, targets: tf.Tensor2D, options: LossOptions = {}): tf.Tensor2D {
    const [B, T] = this.checkIds(ids, "ids");
    this.checkTargets(targets, B, T);
    const chunk = this.lossChunkTokensFor(B * T, options);
    this.checkBuffers(B, T, chunk, "loss");
    return tf.tidy(() => tf.reshape(this.nll(ids, targets, B, T, chunk), [B, T])) as tf.Tensor2D;
  }

  private checkTargets(targets: tf.Tensor, B: number, T: number): void {
    if (targets.rank !== 2 || targets.shape[0] !== B || targets.shape[1] !== T) {
      throw new ModelInputError(`targets must have shape [${B}, ${T}] like ids, got [${targets.shape}]`);
    }
    if (targets.dtype !== "int32") throw new ModelInputError(`targets must be int32, got ${targets.dtype}`);
  }

  /** NLL of each position, [B*T]: the full logits when `chunk` is 0, else the fused chunked projection + cross-entropy. */
  private nll(ids: tf.Tensor2D, targets: tf.Tensor2D, B: number, T: number, chunk: number): tf.Tensor1D {
    const h = this.trunk(ids, B, T);
    const w = this.p("embed_out.weight") as tf.Tensor2D;
    const t = tf.reshape(targets, [B * T]) as tf.Tensor1D;
    return chunk > 0 ? linearCrossEntropyPerRow(h, w, t, chunk) : crossEntropyPerRow(tf.matMul(h, w), t);
  }

  /**
   * Masked mean cross-entropy: sum(nll * mask) / max(sum(mask), 1). `mask` ([B, T], any
   * numeric dtype, 1 = counted; other values weight the positions) defaults to all ones.
   * Above a size threshold the output layer and cross-entropy run in chunks that never build
   * the [B·T, V] logits (see {@link MemoryOptions.lossChunkTokens}; `options` overrides it for
   * this call); the value and gradients are the same up to fp32 rounding.
   */
  loss(ids: tf.Tensor2D, targets: tf.Tensor2D, mask?: tf.Tensor2D, options: LossOptions = {}): tf.Scalar {
    const [B, T] = this.checkIds(ids, "ids");
    this.checkTargets(targets, B, T);
    if (mask && (mask.rank !== 2 || mask.shape[0] !== B || mask.shape[1] !== T)) {
      throw new ModelInputError(`mask must have shape [${B}, ${T}] like ids, got [${mask.shape}]`);
    }
    const chunk = this.lossChunkTokensFor(B * T, options);
    this.checkBuffers(B, T, chunk, "loss");
    return tf.tidy(() => {
      const nll = this.nll(ids, targets, B, T, chunk);
      if (!mask) return tf.mean(nll) as tf.Scalar;
      const m = tf.cast(tf.reshape(mask, [B * T]), "float32");
      return tf.div(tf.sum(tf.mul(nll, m)), tf.maximum(tf.sum(m), 1)) as tf.Scalar;
    });
  }

  /**
   * Hidden states: `nLayer + 1` tensors [B, T, d] — the embedding output, then the output of
   * each block (before the final LayerNorm). The caller disposes them.
   */
  hidden(ids: tf.Tensor2D): tf.Tensor3D[] {
    const [B, T] = this.checkIds(ids, "ids");
    this.checkBuffers(B, T, 0, "hidden");
    const d = this.config.dModel;
    return tf.tidy(() => {
      const collect: tf.Tensor[] = [];
      this.trunk(ids, B, T, collect);
      return collect.map((h) => tf.reshape(h, [B, T, d]) as tf.Tensor3D);
    });
  }

  /** Number of parameters (see {@link countParams}). */
  paramCount(): number {
    return countParams(this.config);
  }

  /** Training FLOPs per token, 6N + attention term (see {@link flopsPerToken}). */
  flopsPerToken(seqLen: number = this.config.seqLen): number {
    return flopsPerToken(this.config, seqLen);
  }

  /**
   * Reads every parameter back in Hugging Face layout (linear weights as [out, in]),
   * as float32, in HF parameter order.
   */
  async toHfTensors(): Promise<Map<string, HfTensor>> {
    const out = new Map<string, HfTensor>();
    for (const spec of this.specs) out.set(spec.name, await this.hfTensor(spec.name));
    return out;
  }

  /** One parameter read back in Hugging Face layout, as float32. */
  async hfTensor(name: string): Promise<HfTensor> {
    const spec = this.specs.find((s) => s.name === name);
    if (!spec) throw new ModelInputError(`unknown parameter '${name}'`);
    const data = (await this.p(name).data()) as Float32Array;
    return { shape: spec.hfShape.slice(), data: storedToHf(spec, data, this.config) };
  }

  /**
   * Converts a tensor in the stored layout of parameter `name` (for example its gradient) to
   * the Hugging Face layout. Returns a new tensor; the caller disposes it.
   */
  toHfLayout(name: string, t: tf.Tensor): tf.Tensor {
    const spec = this.specs.find((s) => s.name === name);
    if (!spec) throw new ModelInputError(`unknown parameter '${name}'`);
    const { nHead, dModel } = this.config;
    const hd = dModel / nHead;
    return tf.tidy(() => {
      switch (spec.layout) {
        case "hf":
          return t.clone();
        case "transposed":
          return tf.transpose(t);
        case "qkv-bias":
          return tf.reshape(tf.transpose(tf.reshape(t, [3, nHead, hd]), [1, 0, 2]), [3 * dModel]);
        case "qkv-weight":
          // stored [d, (3, nHead, hd)] -> HF [(nHead, 3, hd), d]
          return tf.reshape(tf.transpose(tf.reshape(t, [dModel, 3, nHead, hd]), [2, 1, 3, 0]), [3 * dModel, dModel]);
      }
    });
  }

  /** Frees the variables. The model cannot be used afterwards. */
  dispose(): void {
    if (this.disposed) return;
    for (const v of this.params.values()) v.dispose();
    this.params.clear();
    this.disposed = true;
  }
}

/** Creates a model with the seeded Pythia initialization. */
export function createModel(config: ModelConfig, options: CreateModelOptions = {}): GPTNeoXModel {
  const cfg = validateConfig({ ...config });
  validateMemoryOptions(options, "options");
  const seed = options.seed ?? 0;
  if (!Number.isInteger(seed)) throw new ModelInputError(`seed must be an integer, got ${seed}`);
  const values = new Map<string, Float32Array>();
  for (const spec of paramSpecs(cfg)) {
    const n = spec.hfShape.reduce((a, b) => a * b, 1);
    const arr = new Float32Array(n);
    if (spec.init === "ones") arr.fill(1);
    else if (spec.init === "small" || spec.init === "wang") {
      // One stream per parameter name: a parameter's init does not depend on the others.
      Rng.forParameter(seed >>> 0, spec.name).fillNormal(arr, initStd(cfg, spec.init));
    }
    values.set(spec.name, arr);
  }
  return new GPTNeoXModel(cfg, values, options);
}

/**
 * Builds a model from tensors in Hugging Face layout (for example a parsed
 * `model.safetensors`). Checks that every parameter is present with the shape the config
 * implies; ignores the non-parameter buffers older HF checkpoints carry
 * (`attention.bias`, `attention.masked_bias`, `rotary_emb.inv_freq`).
 */
export function modelFromHfTensors(config: ModelConfig, tensors: Map<string, HfTensor> | Record<string, HfTensor>, options: MemoryOptions = {}): GPTNeoXModel {
  const cfg = validateConfig({ ...config });
  validateMemoryOptions(options, "options");
  const get = (name: string): HfTensor | undefined => (tensors instanceof Map ? tensors.get(name) : Object.hasOwn(tensors, name) ? tensors[name] : undefined);
  const names = tensors instanceof Map ? [...tensors.keys()] : Object.keys(tensors);
  const specs = paramSpecs(cfg);
  const known = new Set(specs.map((s) => s.name));
  const buffer = /\.attention\.(bias|masked_bias|rotary_emb\.inv_freq)$/;
  const unexpected = names.filter((n) => !known.has(n) && !buffer.test(n));
  const missing = specs.filter((s) => get(s.name) === undefined).map((s) => s.name);
  if (missing.length > 0) {
    throw new CheckpointError(
      `checkpoint is missing ${missing.length} tensor(s): ${missing.slice(0, 5).join(", ")}` +
        (missing.length > 5 ? ", ..." : "") +
        ` — is config.json for this checkpoint (nLayer ${cfg.nLayer})?`,
    );
  }
  if (unexpected.length > 0) {
    throw new CheckpointError(
      `checkpoint has ${unexpected.length} unexpected tensor(s): ${unexpected.slice(0, 5).join(", ")}` +
        " — it is not a GPTNeoXForCausalLM checkpoint matching config.json",
    );
  }
  const values = new Map<string, Float32Array>();
  for (const spec of specs) {
    const t = get(spec.name)!;
    const same = t.shape.length === spec.hfShape.length && t.shape.every((v, k) => v === spec.hfShape[k]);
    if (!same) {
      throw new CheckpointError(`tensor '${spec.name}' has shape [${t.shape}] but config.json implies [${spec.hfShape}]`);
    }
    const n = spec.hfShape.reduce((a, b) => a * b, 1);
    if (!(t.data instanceof Float32Array) || t.data.length !== n) {
      throw new CheckpointError(`tensor '${spec.name}' must hold ${n} float32 values`);
    }
    values.set(spec.name, hfToStored(spec, t.data, cfg));
  }
  return new GPTNeoXModel(cfg, values, options);
}
