/**
 * Memory plan of a training step: how many bytes of tensors a step of `computeGradients` +
 * `AdamW.apply` keeps alive at its peak, from the model's shape, the sequence length, the
 * micro-batch and the backend, and the micro-batch / accumulation split that fits a budget.
 *
 * The estimate is a sum of terms, each a count of float32 values times a coefficient measured
 * on the project's own step (tfjs keeps every tensor a gradient needs, and every activation
 * gradient, until the backward pass of a micro-batch ends, so the peak sits at the end of the
 * backward pass):
 *
 * - parameters, their gradients (two sets while micro-batches are accumulated: the running sum
 *   and the micro-batch's own), AdamW's two moments;
 * - parameter-sized copies the step makes (weight slices and the copies the wasm backend makes
 *   of every tensor saved for the gradient);
 * - per layer and token: `(dModel + intermediateSize)` values and `nHead × seqLen` attention
 *   scores (the scores are what grow with the sequence: T² per head);
 * - the loss: `[tokens, vocab]` logits and their gradient, or with a chunked loss only one
 *   chunk's;
 * - with per-block recomputation: each block's input plus one block's activations at a time;
 * - with optimizer offload (AdamW `offload: true`): no moments and one set of gradients on the
 *   device; the moments and the gradient accumulator are host memory (`host`), outside the
 *   tensor budget (the wasm heap, a GPU's memory) but in the process's.
 *
 * Coefficients per backend family: `wasm` (fused kernels of @midtrain/native-blas, saved tensors
 * copied) and `cpu` (tensor ops; WebGPU and CUDA run the same ops and use these).
 */
import { countParams, type ModelConfig } from "@midtrain/model";
import { TrainerConfigError } from "./errors.js";

/** The backends a plan is made for. */
export type MemoryBackend = "wasm" | "cpu" | "webgpu" | "cuda";

/** The model's `lossChunkTokens: "auto"` budget: logits up to this many bytes are built whole, larger ones in chunks of this size. */
export const LOSS_CHUNK_AUTO_BYTES = 32 * 1024 * 1024;

/** Tokens per loss chunk under a setting (0: whole logits), as the model resolves `"auto"`. */
export function lossChunkTokens(tokens: number, paddedVocabSize: number, setting: number | "auto" = "auto"): number {
  if (setting !== "auto") return setting === 0 ? 0 : Math.min(setting, tokens);
  const rowBytes = 4 * paddedVocabSize;
  if (tokens * rowBytes <= LOSS_CHUNK_AUTO_BYTES) return 0;
  return Math.max(1, Math.min(tokens, Math.floor(LOSS_CHUNK_AUTO_BYTES / rowBytes)));
}

/** The wasm heap of tfjs-backend-wasm (32-bit) never grows past this. */
export const WASM_HEAP_LIMIT_BYTES = 4294901760;

/** Float32 values kept per unit of each term, measured on a step of this project (see the module comment). */
interface Coefficients {
  /** Per layer and token, per unit of dModel + intermediateSize. */
  layer: number;
  /** Per layer, per attention score (micro-batch × nHead × seqLen²). */
  scores: number;
  /** Per logit (tokens × paddedVocabSize) of the plain loss. */
  logits: number;
  /** Parameter-sized copies beyond parameters, gradients and moments, per parameter. */
  paramCopies: number;
  /** Per token, per unit of dModel, outside the blocks (embedding output, final LayerNorm). */
  embed: number;
  /** Per layer and token, per unit of dModel, for a recomputed block (its saved input and the gradient of it). */
  blockInput: number;
  /** Per logit of one chunk of the chunked loss (at the step's peak, the end of the backward pass). */
  chunkLogits: number;
  /** Output-layer-sized copies (per value of the [V, d] matrix) the whole-logits loss makes and the chunked loss does not. */
  wholeLogitsCopies: number;
  /** Process memory beyond the tensors (runtime, code, allocator slack), in bytes. */
  runtimeBytes: number;
}

const WASM: Coefficients = {
  layer: 15.1,
  scores: 6.9,
  logits: 1.33,
  paramCopies: 1.68,
  embed: 3.4,
  blockInput: 3,
  chunkLogits: 1,
  wholeLogitsCopies: 2.5,
  runtimeBytes: 160 * 2 ** 20,
};
const TENSOR_OPS: Coefficients = {
  layer: 35.6,
  scores: 6.9,
  logits: 5.31,
  paramCopies: 1.64,
  embed: 15.6,
  blockInput: 2,
  chunkLogits: 1,
  wholeLogitsCopies: 2.5,
  runtimeBytes: 160 * 2 ** 20,
};

function coefficients(backend: MemoryBackend): Coefficients {
  return backend === "wasm" ? WASM : TENSOR_OPS;
}

/** The shape of a model a plan needs (a `ModelConfig` from @midtrain/model fits). */
export type MemoryModelShape = Pick<ModelConfig, "vocabSize" | "paddedVocabSize" | "nLayer" | "nHead" | "dModel" | "seqLen" | "intermediateSize"> &
  Partial<ModelConfig>;

export interface MemoryEstimateInput {
  model: MemoryModelShape;
  /** Tokens per sequence (at most the model's context). */
  seqLen: number;
  /** Sequences per micro-batch. */
  microBatch: number;
  /** Micro-batches per optimizer step; above 1 a second set of gradients is alive. Default 1. */
  gradAccum?: number;
  backend: MemoryBackend;
  /** `adamw` keeps two moments per parameter; `none` (evaluation-free forward/backward only) none. Default `adamw`. */
  optimizer?: "adamw" | "none";
  /** Per-block activation recomputation: keep only each block's input. Default false. */
  recompute?: boolean;
  /**
   * Tokens per chunk of the fused linear + cross-entropy loss; 0: the plain loss over
   * `[tokens, vocab]` logits; `"auto"` (default): the model's rule, whole logits up to
   * {@link LOSS_CHUNK_AUTO_BYTES}, else chunks of that size.
   */
  lossChunk?: number | "auto";
  /**
   * Optimizer offload (AdamW `offload: true`): the moments and the gradient accumulator live in
   * host memory, so the device holds one micro-batch's gradients and no optimizer state; they
   * count in `host` instead. Default false.
   */
  offload?: boolean;
}

/** Bytes of each part of a step's peak; `total` is their sum, `process` adds the runtime. */
export interface MemoryEstimate {
  params: number;
  grads: number;
  optimizer: number;
  /** Parameter-sized copies the step makes. */
  workspace: number;
  activations: number;
  loss: number;
  /** Tensor bytes at the peak of a step. */
  total: number;
  /**
   * Host memory outside the tensors (with `offload`: the two moments, the gradient accumulator
   * and the update's copies of the largest parameter); 0 without offload.
   */
  host: number;
  /** `total` plus `host` plus the runtime (what the process's resident memory reaches). */
  process: number;
  /** The largest single tensor of the step (WebGPU binds each tensor as one buffer). */
  largestTensor: { name: string; bytes: number };
}

function checkInt(v: number, what: string): void {
  if (!Number.isInteger(v) || v <= 0) throw new TrainerConfigError(`${what} must be a positive integer, got ${v}`);
}

/**
 * Peak bytes of one training step (`computeGradients` over `gradAccum` micro-batches of
 * `microBatch` × `seqLen` tokens, then `AdamW.apply`). Pure: no tensors, no backend needed.
 */
export function estimateTrainingMemory(input: MemoryEstimateInput): MemoryEstimate {
  const { model: m, seqLen: T, microBatch: B, backend } = input;
  const gradAccum = input.gradAccum ?? 1;
  checkInt(T, "seqLen");
  checkInt(B, "microBatch");
  checkInt(gradAccum, "gradAccum");
  if (T > m.seqLen) throw new TrainerConfigError(`seqLen ${T} is longer than the model's context (${m.seqLen}); cut the sequences or raise the model's seqLen`);
  const setting = input.lossChunk ?? "auto";
  if (setting !== "auto" && !(Number.isInteger(setting) && setting >= 0)) {
    throw new TrainerConfigError(`lossChunk must be "auto", 0 (whole logits) or a positive integer, got ${setting}`);
  }
  const k = coefficients(backend);
  const P = countParams(m as ModelConfig);
  const N = B * T;
  const d = m.dModel;
  const h = m.intermediateSize;
  const V = m.paddedVocabSize;
  const L = m.nLayer;
  const scores = B * m.nHead * T * T;
  const oneLayer = k.layer * N * (d + h) + k.scores * scores;
  const activationValues = input.recompute ? k.blockInput * L * N * d + oneLayer + k.embed * N * d : L * oneLayer + k.embed * N * d;
  const c = lossChunkTokens(N, V, setting);
  const chunk = c === 0 ? undefined : c;
  const lossValues = chunk === undefined ? k.logits * N * V : k.chunkLogits * chunk * V + N;
  const params = 4 * P;
  const offload = input.offload ?? false;
  const adamw = (input.optimizer ?? "adamw") === "adamw";
  // Offloaded: one micro-batch's gradients on the device (the accumulator is on the host).
  const grads = 4 * P * (gradAccum > 1 && !offload ? 2 : 1);
  const optimizer = adamw && !offload ? 8 * P : 0;
  // Host: the moments, the accumulator, and the read of one gradient plus the update's read and
  // result for the largest parameter (the [V, d] embedding or output matrix).
  const largestParam = Math.max(V * d, d * h);
  const host = offload ? 4 * ((adamw ? 2 * P : 0) + P + 3 * largestParam) : 0;
  const workspace = 4 * (k.paramCopies * P - (chunk === undefined ? 0 : k.wholeLogitsCopies * V * d));
  const activations = 4 * activationValues;
  const loss = 4 * lossValues;
  const total = params + grads + optimizer + workspace + activations + loss;
  const candidates: Array<{ name: string; bytes: number }> = [
    { name: chunk === undefined ? `logits [${N}, ${V}]` : `loss chunk logits [${chunk}, ${V}]`, bytes: 4 * (chunk ?? N) * V },
    { name: `embedding [${V}, ${d}]`, bytes: 4 * V * d },
    { name: `attention scores [${B * m.nHead}, ${T}, ${T}]`, bytes: 4 * scores },
    { name: `MLP activations [${N}, ${h}]`, bytes: 4 * N * h },
  ];
  const largestTensor = candidates.reduce((a, b) => (b.bytes > a.bytes ? b : a));
  return { params, grads, optimizer, workspace, activations, loss, total, host, process: total + host + k.runtimeBytes, largestTensor };
}

/** What the plan fits into: total bytes, and (WebGPU) the largest buffer one tensor may have. */
export interface MemoryBudget {
  /** Bytes the step's tensors may take at their peak. */
  bytes: number;
  /** Largest single tensor (WebGPU: the adapter's maxStorageBufferBindingSize). */
  maxTensorBytes?: number;
  /** Where the figure comes from (printed with the plan), e.g. `--memory 80GB`. */
  source?: string;
}

export interface MicroBatchInput extends Omit<MemoryEstimateInput, "microBatch" | "gradAccum"> {
  /** Sequences per optimizer step (kept: microBatch × gradAccum = batchSize). */
  batchSize: number;
  budget: MemoryBudget;
  /** Start from this micro-batch count (the config's); a larger one is taken only when this does not fit. Default 1. */
  preferGradAccum?: number;
  /**
   * When no split fits with the optimizer on the device (`offload` unset or false), try again
   * with optimizer offload (AdamW `offload: true`) before giving up. Default false.
   */
  allowOffload?: boolean;
}

export interface MicroBatchPlan {
  microBatch: number;
  gradAccum: number;
  estimate: MemoryEstimate;
  /** True when the split differs from `preferGradAccum`. */
  changed: boolean;
  /** Whether the plan keeps the optimizer state and gradient accumulator in host memory. */
  offload: boolean;
}

/** A step does not fit the memory budget at any micro-batch (or sequence length). */
export class MemoryBudgetError extends TrainerConfigError {
  /** The largest micro-batch that fits at the asked sequence length (0: not even one sequence). */
  readonly largestMicroBatch: number;
  /** The longest sequence that fits with a micro-batch of one sequence (0: none). */
  readonly largestSeqLen: number;
  constructor(message: string, largestMicroBatch: number, largestSeqLen: number) {
    super(message);
    this.largestMicroBatch = largestMicroBatch;
    this.largestSeqLen = largestSeqLen;
  }
}

function fits(e: MemoryEstimate, budget: MemoryBudget): boolean {
  return e.total <= budget.bytes && (budget.maxTensorBytes === undefined || e.largestTensor.bytes <= budget.maxTensorBytes);
}

/** Formats bytes as GiB/MiB with 3 significant digits. */
export function formatBytes(bytes: number): string {
  if (bytes >= 2 ** 30) return `${+(bytes / 2 ** 30).toPrecision(3)} GiB`;
  if (bytes >= 2 ** 20) return `${+(bytes / 2 ** 20).toPrecision(3)} MiB`;
  return `${Math.round(bytes / 1024)} KiB`;
}

/**
 * The split of `batchSize` sequences into `gradAccum` micro-batches of `microBatch` that fits
 * `budget`: the config's split when it fits, else the largest micro-batch dividing `batchSize`
 * that does. Tokens per optimizer step stay `batchSize × seqLen`. Throws
 * {@link MemoryBudgetError} (with the largest micro-batch and sequence length that fit) when
 * not even one sequence per micro-batch fits.
 */
export function planMicroBatches(input: MicroBatchInput): MicroBatchPlan {
  const offload = input.offload ?? false;
  if (input.allowOffload && !offload) {
    try {
      return planMicroBatches({ ...input, allowOffload: false });
    } catch (e) {
      if (!(e instanceof MemoryBudgetError)) throw e;
      try {
        return planMicroBatches({ ...input, offload: true, allowOffload: false });
      } catch (e2) {
        if (!(e2 instanceof MemoryBudgetError)) throw e2;
        throw e;
      }
    }
  }
  const { batchSize, budget } = input;
  checkInt(batchSize, "batchSize");
  if (!(budget.bytes > 0)) throw new TrainerConfigError(`the memory budget must be a positive number of bytes, got ${budget.bytes}`);
  const prefer = input.preferGradAccum ?? 1;
  checkInt(prefer, "gradAccum");
  const est = (microBatch: number, gradAccum: number, seqLen = input.seqLen) => estimateTrainingMemory({ ...input, seqLen, microBatch, gradAccum });
  if (batchSize % prefer === 0) {
    const e = est(batchSize / prefer, prefer);
    if (fits(e, budget)) return { microBatch: batchSize / prefer, gradAccum: prefer, estimate: e, changed: false, offload };
  }
  for (let accum = 1; accum <= batchSize; accum++) {
    if (batchSize % accum !== 0) continue;
    const e = est(batchSize / accum, accum);
    if (fits(e, budget)) return { microBatch: batchSize / accum, gradAccum: accum, estimate: e, changed: accum !== prefer, offload };
  }
  throw budgetError({ ...input, microBatch: 1, gradAccum: batchSize > 1 ? 2 : 1 }, budget);
}

/**
 * The largest micro-batch (at `input.seqLen`) and the longest sequence (with one sequence per
 * micro-batch) that fit `budget`; 0 when none does.
 */
export function largestFitting(input: MemoryEstimateInput, budget: MemoryBudget): { microBatch: number; seqLen: number } {
  const search = (hi: number, ok: (x: number) => boolean): number => {
    let best = 0;
    for (let lo = 1; lo <= hi; ) {
      const mid = Math.floor((lo + hi) / 2);
      if (ok(mid)) {
        best = mid;
        lo = mid + 1;
      } else hi = mid - 1;
    }
    return best;
  };
  const maxMicro = Math.max(input.microBatch, 1) * 64;
  return {
    microBatch: search(maxMicro, (b) => fits(estimateTrainingMemory({ ...input, microBatch: b }), budget)),
    seqLen: search(input.model.seqLen, (t) => fits(estimateTrainingMemory({ ...input, microBatch: 1, seqLen: t }), budget)),
  };
}

function budgetError(input: MemoryEstimateInput, budget: MemoryBudget): MemoryBudgetError {
  const e = estimateTrainingMemory(input);
  const best = largestFitting(input, budget);
  const where = budget.source ? ` (${budget.source})` : "";
  const tensorLimit =
    budget.maxTensorBytes !== undefined && e.largestTensor.bytes > budget.maxTensorBytes
      ? `; its largest tensor, ${e.largestTensor.name} (${formatBytes(e.largestTensor.bytes)}), is over the ${formatBytes(budget.maxTensorBytes)} one buffer may hold`
      : "";
  const fix =
    best.microBatch > 0
      ? `the largest micro-batch that fits is ${best.microBatch} sequence(s) of ${input.seqLen} tokens: raise gradAccum so that batchSize / gradAccum <= ${best.microBatch}`
      : best.seqLen > 0
        ? `not one sequence of ${input.seqLen} tokens fits; the longest sequence that fits (micro-batch 1) is ${best.seqLen} tokens: lower seqLen to ${best.seqLen}`
        : "not one sequence fits at any length: use a smaller model";
  const more = [
    input.recompute ? undefined : "per-block recomputation",
    lossChunkTokens(input.microBatch * input.seqLen, input.model.paddedVocabSize, input.lossChunk ?? "auto") === 0 ? "the chunked loss" : undefined,
    input.offload ? undefined : "optimizer offload",
    "a larger budget",
  ]
    .filter(Boolean)
    .join(", ");
  return new MemoryBudgetError(
    `a training step of ${input.microBatch} × ${input.seqLen} tokens needs ${formatBytes(e.total)} of tensors on ${input.backend}, ` +
      `more than the budget of ${formatBytes(budget.bytes)}${where}${tensorLimit}; ${fix} (or use ${more})`,
    best.microBatch,
    best.seqLen,
  );
}

/** Throws {@link MemoryBudgetError} (naming the largest micro-batch and sequence length that fit) unless the step fits `budget`. */
export function assertFitsMemory(input: MemoryEstimateInput, budget: MemoryBudget): MemoryEstimate {
  const e = estimateTrainingMemory(input);
  if (!fits(e, budget)) throw budgetError(input, budget);
  return e;
}

/**
 * Parses a memory size such as `80GB`, `80 GiB`, `512MB`, `1.5e9`: GB/MB/KB are powers of 1000,
 * GiB/MiB/KiB of 1024, a bare number is bytes.
 */
export function parseMemorySize(text: string): number {
  const m = /^\s*([0-9]*\.?[0-9]+(?:e[0-9]+)?)\s*([kmgt]i?b?)?\s*$/i.exec(text);
  if (!m) throw new TrainerConfigError(`memory size '${text}' is not a size; write e.g. 80GB, 80GiB or 512MB`);
  const n = Number(m[1]);
  const unit = (m[2] ?? "").toLowerCase().replace(/b$/, "");
  const pow = { "": 0, k: 1, m: 2, g: 3, t: 4 }[unit.replace("i", "")] ?? 0;
  const bytes = Math.floor(n * (unit.includes("i") ? 1024 : 1000) ** pow);
  if (!(bytes > 0)) throw new TrainerConfigError(`memory size '${text}' must be above zero`);
  return bytes;
}
