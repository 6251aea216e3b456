export { ADAMW_DEFAULTS, AdamW, type AdamWConfig, type AdamWOptions, type AdamWState, DEFAULT_NO_DECAY } from "./adamw.js";
export {
  CHECKPOINT_FILES,
  checkpointName,
  checkpointStep,
  type LineageRef,
  type Lineage,
  type LoadedCheckpoint,
  latestCheckpoint,
  listCheckpoints,
  loadCheckpoint,
  optimizerFromSafetensors,
  optimizerToSafetensors,
  type PhaseSpec,
  pruneCheckpoints,
  readTrainerState,
  type SaveCheckpointOptions,
  type ScheduleConfigJson,
  saveCheckpoint,
  type TrainerState,
} from "./checkpoint.js";
export {
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
  type PhaseOptions,
  type PhaseSummary,
  type ProgressEvent,
  phaseTime,
  type TrainPhaseOptions,
  trainPhase,
  yieldToEventLoop,
} from "./train.js";
