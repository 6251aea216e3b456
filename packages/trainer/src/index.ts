/**
 * The public API of `@midtrain/trainer` (browser-safe; Node-only parts are in `./node.ts`,
 * `@midtrain/trainer/node`). Everything not listed here is internal to the package.
 */
export { ADAMW_DEFAULTS, AdamW, type AdamWConfig, type AdamWOptions, type AdamWState, adamwHostUpdate } from "./adamw.js";
export type { HookResult, StepInfo, TrainerCallback, TrainerContext } from "./callbacks/types.js";
export {
  checkpointName,
  type LineageRef,
  type Lineage,
  type LoadedCheckpoint,
  latestCheckpoint,
  latestValidCheckpoint,
  listCheckpoints,
  type LoadCheckpointOptions,
  loadCheckpoint,
  type PhaseSpec,
  readTrainerState,
  type SaveCheckpointOptions,
  type ScheduleConfigJson,
  type SkippedCheckpoint,
  saveCheckpoint,
  type TrainerState,
  verifyCheckpoint,
} from "./checkpoint.js";
export { TRAINING_DEFAULTS, type TrainingDefaults } from "./defaults.js";
export {
  CheckpointCorruptError,
  CheckpointReadError,
  CheckpointWriteError,
  NonFiniteLossError,
  OptimizerStateError,
  TrainerConfigError,
  TrainerError,
} from "./errors.js";
export { type ByteCounter, type EvalResult, type EvaluateOptions, evaluate } from "./evaluate.js";
export {
  clipHostGradients,
  computeGradients,
  computeGradientsOnHost,
  type ComputeGradientsOptions,
  disposeGradients,
  type Gradients,
  type HostGradients,
  hostGradientNorm,
  type MicroBatch,
  type TrainableModel,
} from "./grads.js";
export {
  assertFitsMemory,
  estimateTrainingMemory,
  formatBytes,
  largestFitting,
  LOSS_CHUNK_AUTO_BYTES,
  lossChunkTokens,
  type MemoryBackend,
  type MemoryBudget,
  MemoryBudgetError,
  type MemoryEstimate,
  type MemoryEstimateInput,
  type MemoryModelShape,
  type MicroBatchInput,
  type MicroBatchPlan,
  parseMemorySize,
  planMicroBatches,
  WASM_HEAP_LIMIT_BYTES,
} from "./memory.js";
export {
  type CheckpointErrorRecord,
  type CheckpointRecord,
  type EvalRecord,
  MemorySink,
  type MetricsRecord,
  type MetricsSink,
  recordToJson,
  type SkipRecord,
  type StopRecord,
  type StepStats,
  type TrainRecord,
  teeSink,
} from "./metrics.js";
export {
  type BranchOptions,
  type Branched,
  branch,
  type PhaseStart,
  type ResumeOptions,
  type Resumed,
  resume,
  type SftOptions,
  startSft,
} from "./phases.js";
export { type CheckpointStorage, MemoryStorage } from "./storage.js";
export {
  type CheckpointOptions,
  evaluateSets,
  type LrScheduleLike,
  type MixtureFeedbackTarget,
  type PhaseOptions,
  type PhaseSummary,
  type ProgressEvent,
  type TrainPhaseOptions,
  trainPhase,
} from "./train.js";
