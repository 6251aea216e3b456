import type { Batch, Mixer, TrainingTime } from "@midtrain/data";
import type { GPTNeoXModel } from "@midtrain/model";
import type { AdamW } from "../adamw.js";
import type { PhaseSpec, TrainerState } from "../checkpoint.js";
import type { EvalResult } from "../evaluate.js";
import type { MetricsRecord, StepStats } from "../metrics.js";
import type { LrScheduleLike, PhaseSummary, TrainPhaseOptions } from "../train.js";

/** A hook's result: hooks may be async; `trainPhase` awaits each before calling the next. */
export type HookResult = void | Promise<void>;

/**
 * What a callback sees of a running phase. The core loop owns it; `time`, `stepsDone` and
 * `summary` change as training goes on.
 */
export interface TrainerContext {
  readonly model: GPTNeoXModel;
  readonly mixer: Mixer;
  readonly optimizer: AdamW;
  readonly lr: LrScheduleLike;
  /** The options `trainPhase` was called with. */
  readonly options: Readonly<TrainPhaseOptions>;
  /** The phase: name, global start and end step, batch settings, clipping. */
  readonly spec: Readonly<PhaseSpec>;
  /** Training time now: after the last applied step (the start time before the first). */
  readonly time: TrainingTime;
  /** Optimizer steps applied by this call so far. */
  readonly stepsDone: number;
  /** `performance.now()` when the phase started. */
  readonly startedAt: number;
  /**
   * The summary `trainPhase` will return, as it stands (checkpoints, errors, evaluations so far).
   * Callbacks read it; the built-in checkpoint and evaluation callbacks fill it in.
   */
  readonly summary: PhaseSummary;
  /** The reason given to the first {@link requestStop}, if any. */
  readonly stopRequested: string | undefined;
  /**
   * Stops training cleanly before the next step: no further batch is drawn, the phase ends as
   * `stopped: "aborted"` with a checkpoint (when checkpointing is on) and a `stop` record.
   * Only the first reason is kept.
   */
  requestStop(reason: string): void;
  /** Sends a metrics record to every callback's `onRecord` (the metrics sink among them), in order. */
  emit(record: MetricsRecord): Promise<void>;
  /**
   * Announces evaluation results for the current step: they go into `summary.evals`, an `eval`
   * record is emitted per set, and every callback's `onEvaluate` runs. The built-in evaluation
   * callback uses it; a callback running its own evaluation can too.
   */
  reportEvaluation(results: Record<string, EvalResult>): Promise<void>;
  /** The `trainer.json` state for the current time (what a checkpoint written now holds). */
  trainerState(): TrainerState;
}

/** One applied optimizer step, as `postStep` sees it. */
export interface StepInfo extends StepStats {
  /** The time the batch was drawn and the learning rate read at (the step before the update; `step` = `ctx.time.step`). */
  drawTime: TrainingTime;
  /** The micro-batches of the step (rows carry their source names). */
  batches: readonly Batch[];
  /**
   * The masked loss sum of every row of every micro-batch, in order; present when a callback
   * asked for it with `needsRowLosses`.
   */
  rowLossSums?: Float32Array;
}

/**
 * A plug-in to the training loop. Every hook is optional, may be async, and is awaited; the
 * callbacks run in order: the built-in ones that `trainPhase`'s options ask for (signal,
 * mixture feedback, evaluation, checkpointing, progress, metrics), then `options.callbacks`.
 * A hook that throws ends the phase with that error.
 */
export interface TrainerCallback {
  /** For messages. */
  readonly name?: string;
  /** Set to make the core compute per-row loss sums (`StepInfo.rowLossSums`) every step. */
  readonly needsRowLosses?: boolean;
  /** Before the first step (also when the phase has no step left to run). */
  onStart?(ctx: TrainerContext): HookResult;
  /** Before each step draws its batch; `ctx.requestStop` here stops before the step. */
  preStep?(ctx: TrainerContext): HookResult;
  /** After each applied step (skipped non-finite steps are not applied; see the `skip` record). */
  postStep?(ctx: TrainerContext, step: StepInfo): HookResult;
  /** Every metrics record (train, eval, skip, checkpoint, checkpoint-error, stop), in order. */
  onRecord?(ctx: TrainerContext, record: MetricsRecord): HookResult;
  /** After an evaluation of the current step (see `ctx.reportEvaluation`). */
  onEvaluate?(ctx: TrainerContext, results: Record<string, EvalResult>): HookResult;
  /** After a checkpoint was written (and older ones pruned). */
  postCheckpoint?(ctx: TrainerContext, id: string): HookResult;
  /**
   * After the last step, or after a stop. The built-in evaluation and checkpoint callbacks run
   * the final evaluation and checkpoint here; the `stop` record follows the last `onEnd`.
   */
  onEnd?(ctx: TrainerContext, summary: PhaseSummary): HookResult;
}

/** The context the built-in callbacks get: the public one plus what only they may do. */
export interface InternalContext extends TrainerContext {
  /** Runs every callback's `postCheckpoint`. */
  reportCheckpoint(id: string): Promise<void>;
}
