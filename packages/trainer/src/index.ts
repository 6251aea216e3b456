export { ADAMW_DEFAULTS, AdamW, type AdamWConfig, type AdamWOptions, type AdamWState, DEFAULT_NO_DECAY } from "./adamw.js";
export type { HookResult, StepInfo, TrainerCallback, TrainerContext } from "./callbacks/types.js";
export {
  CHECKPOINT_FILES,
  type ChecksumManifest,
  checkpointName,
  checkpointStep,
  type LineageRef,
  type Lineage,
  type LoadedCheckpoint,
  latestCheckpoint,
  latestValidCheckpoint,
  listCheckpoints,
  loadCheckpoint,
  optimizerFromSafetensors,
  optimizerToSafetensors,
  type PhaseSpec,
  pruneCheckpoints,
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
  clipGradients,
  computeGradients,
  type ComputeGradientsOptions,
  disposeGradients,
  type Gradients,
  globalNorm,
  type MicroBatch,
  squaredNorm,
  type TrainableModel,
} from "./grads.js";
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
  type TrainRecord,
  teeSink,
} from "./metrics.js";
export {
  type BranchOptions,
  type Branched,
  branch,
  carryMixerState,
  type PhaseStart,
  phaseOptions,
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
  phaseTime,
  type TrainPhaseOptions,
  trainPhase,
  yieldToEventLoop,
} from "./train.js";
