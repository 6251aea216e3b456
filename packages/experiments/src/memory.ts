import { getModelConfig, type ModelConfig } from "@midtrain/model";
import {
  estimateTrainingMemory,
  formatBytes,
  type MemoryBackend,
  type MemoryBudget,
  MemoryBudgetError,
  type MemoryEstimate,
  type MicroBatchPlan,
  planMicroBatches,
  WASM_HEAP_LIMIT_BYTES,
} from "@midtrain/trainer";
import type { ExperimentConfig } from "./config.js";

/** One training phase of a config and how its batches are split to fit the budget. */
export interface PhaseMemoryPlan {
  phase: "pretrain" | "sft";
  /** Sequences per optimizer step (the config's; never changed). */
  batchSize: number;
  seqLen: number;
  /** The config's accumulation. */
  gradAccum: number;
  /** The config's optimizer placement (`optimizer.offload`). */
  offload: boolean;
  /** The estimate at the config's split. */
  asConfigured: MemoryEstimate;
  /** The split that fits the budget (undefined without a budget or when nothing fits). */
  fitted?: MicroBatchPlan;
  /** Why nothing fits (a budget was given and not even one sequence per micro-batch fits). */
  error?: MemoryBudgetError;
}

export interface ExperimentMemoryPlan {
  backend: MemoryBackend;
  budget?: MemoryBudget;
  model: ModelConfig;
  phases: PhaseMemoryPlan[];
}

/** What a budget can come from: a `--memory` figure, the free memory of the host, a WebGPU adapter's limits. */
export interface BudgetSources {
  /** Bytes the user allows (`--memory 80GB`). */
  memoryBytes?: number;
  /** Free host memory (cpu, wasm): `os.freemem()`. */
  freeBytes?: number;
  /** A WebGPU adapter's limits (`maxStorageBufferBindingSize`, `maxBufferSize` bound one tensor). */
  limits?: Record<string, number>;
}

/**
 * The memory budget of a backend: `--memory` when given; on wasm never more than the 4 GiB
 * heap; on cpu and wasm otherwise the free host memory; on WebGPU the adapter's per-buffer
 * limit bounds each tensor (WebGPU does not report the device's total memory, so a total needs
 * `--memory`). Undefined when nothing bounds the step.
 */
export function memoryBudget(backend: MemoryBackend, from: BudgetSources): MemoryBudget | undefined {
  const parts: string[] = [];
  let bytes: number | undefined;
  if (from.memoryBytes !== undefined) {
    bytes = from.memoryBytes;
    parts.push(`--memory ${formatBytes(from.memoryBytes)}`);
  } else if ((backend === "cpu" || backend === "wasm") && from.freeBytes !== undefined) {
    bytes = from.freeBytes;
    parts.push(`free memory ${formatBytes(from.freeBytes)}`);
  }
  if (backend === "wasm" && (bytes === undefined || bytes > WASM_HEAP_LIMIT_BYTES)) {
    bytes = WASM_HEAP_LIMIT_BYTES;
    parts.push("the wasm heap limit, 4 GiB");
  }
  let maxTensorBytes: number | undefined;
  if (backend === "webgpu" && from.limits) {
    const l = [from.limits.maxStorageBufferBindingSize, from.limits.maxBufferSize].filter((x): x is number => typeof x === "number" && x > 0);
    if (l.length) {
      maxTensorBytes = Math.min(...l);
      parts.push(`one buffer at most ${formatBytes(maxTensorBytes)} (adapter limits)`);
    }
  }
  if (bytes === undefined && maxTensorBytes === undefined) return undefined;
  return { bytes: bytes ?? Number.POSITIVE_INFINITY, maxTensorBytes, source: parts.join(", ") };
}

/** The backend family a config's backend name plans for (`auto` plans as wasm, this machine's default, unless told). */
export function memoryBackend(name: string): MemoryBackend {
  return name === "cpu" || name === "webgpu" || name === "cuda" ? name : "wasm";
}

/**
 * The memory plan of each training phase of a config (pretraining and its branches share one;
 * SFT has its own batch and sequence length): the estimate at the config's split and, with a
 * budget, the split that fits. Pure.
 */
export function planMemory(config: ExperimentConfig, o: { backend: MemoryBackend; budget?: MemoryBudget }): ExperimentMemoryPlan {
  const model = getModelConfig(config.model.preset, config.model.overrides as Partial<ModelConfig>);
  const phases: PhaseMemoryPlan[] = [];
  const add = (phase: "pretrain" | "sft", batchSize: number, gradAccum: number, seqLen: number, offload: boolean) => {
    const base = { model, seqLen, backend: o.backend, recompute: config.model.recompute ?? false, offload };
    const asConfigured = estimateTrainingMemory({ ...base, microBatch: batchSize / gradAccum, gradAccum });
    const p: PhaseMemoryPlan = { phase, batchSize, seqLen, gradAccum, offload, asConfigured };
    if (o.budget) {
      try {
        // Optimizer offload is tried when nothing fits with the optimizer on the device.
        p.fitted = planMicroBatches({ ...base, batchSize, budget: o.budget, preferGradAccum: gradAccum, allowOffload: true });
      } catch (e) {
        if (!(e instanceof MemoryBudgetError)) throw e;
        p.error = e;
      }
    }
    phases.push(p);
  };
  add("pretrain", config.pretrain.batchSize, config.pretrain.gradAccum, config.data.seqLen, config.pretrain.optimizer.offload ?? false);
  if (config.sft) add("sft", config.sft.batchSize, config.sft.gradAccum, config.sft.seqLen ?? config.data.seqLen, config.sft.optimizer.offload ?? false);
  return { backend: o.backend, budget: o.budget, model, phases };
}

/** The plan as text: the parts of each phase's peak, and the split that fits the budget. */
export function describeMemoryPlan(plan: ExperimentMemoryPlan): string {
  const lines = [`memory (${plan.backend}${plan.budget ? `; budget: ${plan.budget.source}` : "; no budget: pass --memory to fit the micro-batches"}):`];
  const parts = (e: MemoryEstimate) =>
    `params ${formatBytes(e.params)}, grads ${formatBytes(e.grads)}, AdamW ${formatBytes(e.optimizer)}, copies ${formatBytes(e.workspace)}, ` +
    `activations ${formatBytes(e.activations)}, loss ${formatBytes(e.loss)}; total ${formatBytes(e.total)} (largest tensor: ${e.largestTensor.name}, ${formatBytes(e.largestTensor.bytes)})`;
  for (const p of plan.phases) {
    const micro = p.batchSize / p.gradAccum;
    lines.push(`  ${p.phase}: ${p.batchSize} × ${p.seqLen} tokens per step as configured: ${p.gradAccum} × micro-batch ${micro}: ${parts(p.asConfigured)}`);
    if (p.fitted) {
      const offloaded = p.fitted.offload && !p.offload ? " with optimizer offload (AdamW state and gradient accumulator in host memory)" : "";
      lines.push(
        p.fitted.changed || offloaded
          ? `    fits as gradAccum ${p.fitted.gradAccum} × micro-batch ${p.fitted.microBatch}${offloaded} (same ${p.batchSize} sequences per step): ${parts(p.fitted.estimate)}`
          : "    fits as configured",
      );
    }
    if (p.error) lines.push(`    does not fit: ${p.error.message}`);
  }
  return lines.join("\n");
}

/**
 * The config with each phase's `gradAccum` set to the split that fits (tokens per step
 * unchanged). Throws the phase's {@link MemoryBudgetError} when a phase cannot fit, before any
 * training starts.
 */
export function fitConfigToMemory(config: ExperimentConfig, plan: ExperimentMemoryPlan): ExperimentConfig {
  const bad = plan.phases.find((p) => p.error);
  if (bad?.error) {
    const e = new MemoryBudgetError(`${bad.phase}: ${bad.error.message}`, bad.error.largestMicroBatch, bad.error.largestSeqLen);
    throw e;
  }
  const fitted = (phase: "pretrain" | "sft") => plan.phases.find((p) => p.phase === phase)?.fitted;
  const accum = (phase: "pretrain" | "sft", current: number) => fitted(phase)?.gradAccum ?? current;
  const optimizer = <O extends { offload?: boolean }>(phase: "pretrain" | "sft", current: O): O =>
    fitted(phase)?.offload && !current.offload ? { ...current, offload: true } : current;
  return {
    ...config,
    pretrain: { ...config.pretrain, gradAccum: accum("pretrain", config.pretrain.gradAccum), optimizer: optimizer("pretrain", config.pretrain.optimizer) },
    ...(config.sft ? { sft: { ...config.sft, gradAccum: accum("sft", config.sft.gradAccum), optimizer: optimizer("sft", config.sft.optimizer) } } : {}),
  };
}
