import type { Batch, Mixer, TrainingTime } from "@midtrain/data";
import type { GPTNeoXModel } from "@midtrain/model";
import type { AdamW } from "./adamw.js";
import { checkpointCallback } from "./callbacks/checkpoint.js";
import { evaluationCallback } from "./callbacks/evaluation.js";
import { metricsCallback, progressCallback } from "./callbacks/logging.js";
import { mixtureFeedbackCallback } from "./callbacks/mixture.js";
import { signalCallback } from "./callbacks/signal.js";
import type { InternalContext, StepInfo, TrainerCallback, TrainerContext } from "./callbacks/types.js";
import type { Lineage, PhaseSpec, ScheduleConfigJson, TrainerState } from "./checkpoint.js";
import { TRAINING_DEFAULTS } from "./defaults.js";
import { NonFiniteLossError, TrainerConfigError } from "./errors.js";
import type { ByteCounter, EvalResult } from "./evaluate.js";
import {
  clipGradients,
  clipHostGradients,
  computeGradients,
  computeGradientsOnHost,
  disposeGradients,
  type Gradients,
  type HostGradients,
  hostGradientNorm,
  squaredNormParts,
  sumFloat64,
} from "./grads.js";
import type { MetricsRecord, MetricsSink, TrainRecord } from "./metrics.js";
import type { CheckpointStorage } from "./storage.js";

export { evaluateSets } from "./callbacks/evaluation.js";

/** A learning-rate schedule: `LrSchedule` from @midtrain/schedulers, or any `{ at }`. */
export interface LrScheduleLike {
  at(time: TrainingTime): number;
  /** Saved in trainer.json so a resumed run can rebuild the schedule. */
  config?: ScheduleConfigJson;
}

export interface PhaseOptions {
  name: string;
  /** Global step at which the phase ends. */
  steps: number;
  /** Sequences per optimizer step (all micro-batches together). */
  batchSize: number;
  /** Micro-batches per step (default 1); must divide batchSize. */
  gradAccum?: number;
  /** Global-norm clipping threshold (default `TRAINING_DEFAULTS.clipNorm`, 1; 0 disables clipping). */
  clipNorm?: number;
}

export interface CheckpointOptions {
  storage: CheckpointStorage;
  /** Save every N global steps (0 or absent: only `at`, the end of the phase and on abort). */
  every?: number;
  /** Keep only the newest N checkpoints (absent: keep all). Steps in `at` are never deleted. */
  keepLast?: number;
  /** Extra steps to save and keep (branch points). */
  at?: readonly number[];
  /** Save at the end of the phase (default true). */
  final?: boolean;
  /**
   * A checkpoint write that fails (`CheckpointWriteError`: disk full, no permission): `"throw"`
   * (default) emits the `checkpoint-error` record and fails the phase with the error, leaving
   * the previous checkpoints to resume from; `"continue"` records it in
   * `summary.checkpointErrors` and trains on. Failing to prune old checkpoints never fails.
   */
  onError?: "throw" | "continue";
}

/** A stateful mixture schedule that learns from the training losses (see `mixtureFeedback`). */
export interface MixtureFeedbackTarget {
  update?(feedback: { time: TrainingTime; lossBySource: Record<string, number> }): void;
}

/** Emitted after every applied step. */
export interface ProgressEvent {
  phase: string;
  step: number;
  endStep: number;
  phaseStep: number;
  phaseSteps: number;
  tokens: number;
  loss: number;
  lr: number;
  gradNorm: number;
  /** Tokens per second over the steps of this call so far. */
  tokensPerSec: number;
  /** Seconds left in the phase at the current rate. */
  etaSeconds: number;
  elapsedSeconds: number;
  /** Evaluation results, when an evaluation ran after this step. */
  evals?: Record<string, EvalResult>;
}

export interface TrainPhaseOptions {
  model: GPTNeoXModel;
  mixer: Mixer;
  lr: LrScheduleLike;
  optimizer: AdamW;
  phase: PhaseOptions;
  /** Training time at the start (default: step 0). A time from another phase starts this phase at its step. */
  time?: TrainingTime;
  /** Saved in trainer.json (the mixer's schedule config). */
  mixture?: ScheduleConfigJson;
  /** Where this run came from (see `branch`/`startSft`); saved in every checkpoint. */
  lineage?: Lineage;
  evalEvery?: number;
  /** Names of the mixer's validation sources to evaluate. */
  evalSets?: readonly string[];
  evalBatchSize?: number;
  /** Evaluate at the end of the phase (default true when evalSets is given). */
  evalAtEnd?: boolean;
  /** For bits per byte in evaluations. */
  tokenizer?: ByteCounter;
  checkpoint?: CheckpointOptions;
  metrics?: MetricsSink;
  /** Write a `train` record to `metrics` every N global steps and at the phase's last step (default 1). Other records are always written. */
  logEvery?: number;
  onProgress?: (event: ProgressEvent) => void;
  /** Aborting stops training after the current step, with a checkpoint when storage is set. */
  signal?: AbortSignal;
  /** Stop with NonFiniteLossError after this many non-finite steps in a row (default `TRAINING_DEFAULTS.maxNonFinite`, 5). */
  maxNonFinite?: number;
  /** Free-form data saved in trainer.json. */
  extra?: Record<string, unknown>;
  /**
   * A stateful mixture schedule to feed after every applied step (usually the one the mixer
   * draws with): `update({ time, lossBySource })` with the mean masked loss of the step's rows
   * of each source, `time` being the time the batch was drawn at. Its state is saved with the
   * mixer's in checkpoints.
   */
  mixtureFeedback?: MixtureFeedbackTarget;
  /**
   * Callbacks of your own (a logger, an early stop, an extra evaluation), run after the built-in
   * ones that the options above create. See {@link TrainerCallback}.
   */
  callbacks?: readonly TrainerCallback[];
}

export interface PhaseSummary {
  phase: string;
  startStep: number;
  endStep: number;
  /** Training time when the call returned. */
  time: TrainingTime;
  stopped: "completed" | "aborted";
  /** Why an aborted phase stopped (the signal's reason, or what a callback gave `requestStop`). */
  stopReason?: string;
  /** The newest checkpoint written by this call (or the storage's latest before it). */
  lastCheckpoint?: string;
  checkpoints: string[];
  checkpointErrors: string[];
  lastLoss?: number;
  /** The last evaluation of each set. */
  evals: Record<string, EvalResult>;
  skippedSteps: number;
  tokensPerSec: number;
}

const ZERO_TIME: TrainingTime = { step: 0, tokens: 0, phase: "", phaseStep: 0, phaseSteps: 0, phaseFraction: 0 };

function positiveInt(v: number | undefined, what: string, allowZero = false): void {
  if (v === undefined) return;
  if (!Number.isInteger(v) || v < (allowZero ? 0 : 1)) {
    throw new TrainerConfigError(`${what} must be an integer ${allowZero ? ">= 0" : ">= 1"}, got ${v}`);
  }
}

/**
 * Lets the event loop run (timers, I/O, signal handlers, a page's rendering). Awaited reads on
 * the cpu and wasm backends resolve as microtasks, so without this a training loop would
 * never see a SIGINT or a timer until it ends.
 */
export function yieldToEventLoop(): Promise<void> {
  const g = globalThis as { setImmediate?: (f: () => void) => unknown };
  if (typeof g.setImmediate === "function") return new Promise((r) => g.setImmediate!(r));
  if (typeof MessageChannel !== "undefined") {
    return new Promise((r) => {
      const ch = new MessageChannel();
      ch.port1.onmessage = () => {
        ch.port1.close();
        r();
      };
      ch.port2.postMessage(null);
    });
  }
  return new Promise((r) => setTimeout(r, 0));
}

/** The phase's time at global step `step`. */
export function phaseTime(base: TrainingTime, spec: PhaseSpec, step: number, tokens: number): TrainingTime {
  const phaseStep = step - spec.startStep;
  const phaseSteps = spec.endStep - spec.startStep;
  return {
    ...base,
    step,
    tokens,
    phase: spec.name,
    phaseStep,
    phaseSteps,
    phaseFraction: phaseSteps > 0 ? Math.min(1, phaseStep / phaseSteps) : 0,
  };
}

/** Checks the options and works out the phase; throws TrainerConfigError saying what to fix. */
function resolvePhase(o: TrainPhaseOptions): PhaseSpec {
  const { model, mixer } = o;
  const gradAccum = o.phase.gradAccum ?? TRAINING_DEFAULTS.gradAccum;
  positiveInt(o.phase.batchSize, "phase.batchSize");
  positiveInt(gradAccum, "phase.gradAccum");
  positiveInt(o.phase.steps, "phase.steps", true);
  positiveInt(o.evalEvery, "evalEvery", true);
  positiveInt(o.evalBatchSize, "evalBatchSize");
  positiveInt(o.checkpoint?.every, "checkpoint.every", true);
  positiveInt(o.checkpoint?.keepLast, "checkpoint.keepLast");
  positiveInt(o.maxNonFinite, "maxNonFinite");
  positiveInt(o.logEvery, "logEvery");
  if (!o.phase.name) throw new TrainerConfigError("phase.name must be a non-empty string");
  if (o.phase.batchSize % gradAccum !== 0) {
    throw new TrainerConfigError(
      `phase.batchSize ${o.phase.batchSize} is not divisible by gradAccum ${gradAccum}; pick a batch size that is a multiple of gradAccum`,
    );
  }
  const clipNorm = o.phase.clipNorm ?? TRAINING_DEFAULTS.clipNorm;
  if (!(clipNorm >= 0 && Number.isFinite(clipNorm))) throw new TrainerConfigError(`phase.clipNorm must be >= 0, got ${clipNorm}`);
  const onError = o.checkpoint?.onError;
  if (onError !== undefined && onError !== "throw" && onError !== "continue") {
    throw new TrainerConfigError(`checkpoint.onError must be "throw" or "continue", got ${JSON.stringify(onError)}`);
  }
  if (mixer.seqLen > model.config.seqLen) {
    throw new TrainerConfigError(`the mixer's sequences (${mixer.seqLen} tokens) are longer than the model's context (${model.config.seqLen})`);
  }
  for (const s of o.evalSets ?? []) mixer.evalBatches(s, 1); // throws UnknownSourceError for a wrong name
  const start = o.time ?? { ...ZERO_TIME, phase: o.phase.name };
  if (o.phase.steps < start.step) {
    throw new TrainerConfigError(`phase '${o.phase.name}' ends at step ${o.phase.steps}, before the start time (step ${start.step})`);
  }
  return {
    name: o.phase.name,
    startStep: start.phase === o.phase.name ? start.step - start.phaseStep : start.step,
    endStep: o.phase.steps,
    batchSize: o.phase.batchSize,
    gradAccum,
    clipNorm,
  };
}

/** The built-in callbacks that the options ask for, in the order they run. */
function builtInCallbacks(o: TrainPhaseOptions): TrainerCallback[] {
  const out: TrainerCallback[] = [];
  if (o.signal) out.push(signalCallback(o.signal));
  if (o.mixtureFeedback?.update) out.push(mixtureFeedbackCallback(o.mixtureFeedback));
  const sets = o.evalSets ?? [];
  if (sets.length > 0) {
    out.push(
      evaluationCallback({
        sets,
        batchSize: o.evalBatchSize ?? o.phase.batchSize,
        every: o.evalEvery ?? 0,
        atEnd: o.evalAtEnd ?? TRAINING_DEFAULTS.evalAtEnd,
        tokenizer: o.tokenizer,
      }),
    );
  }
  if (o.checkpoint) {
    out.push(
      checkpointCallback({
        ...o.checkpoint,
        final: o.checkpoint.final ?? TRAINING_DEFAULTS.checkpointFinal,
        onError: o.checkpoint.onError ?? TRAINING_DEFAULTS.checkpointOnError,
      }),
    );
  }
  if (o.onProgress) out.push(progressCallback(o.onProgress));
  if (o.metrics) out.push(metricsCallback(o.metrics, { logEvery: o.logEvery ?? TRAINING_DEFAULTS.logEvery }));
  return out;
}

type Hook = Exclude<keyof TrainerCallback, "name" | "needsRowLosses">;

/** One call of `trainPhase`: the core loop and the context its callbacks see. */
class PhaseRun implements InternalContext {
  readonly model: GPTNeoXModel;
  readonly mixer: Mixer;
  readonly optimizer: AdamW;
  readonly lr: LrScheduleLike;
  readonly startedAt = performance.now();
  readonly summary: PhaseSummary;
  time: TrainingTime;
  stepsDone = 0;
  stopRequested: string | undefined;

  constructor(
    readonly options: Readonly<TrainPhaseOptions>,
    readonly spec: Readonly<PhaseSpec>,
    private readonly callbacks: readonly TrainerCallback[],
  ) {
    this.model = options.model;
    this.mixer = options.mixer;
    this.optimizer = options.optimizer;
    this.lr = options.lr;
    const start = options.time ?? { ...ZERO_TIME, phase: spec.name };
    this.time = phaseTime(start, spec, start.step, start.tokens);
    this.summary = {
      phase: spec.name,
      startStep: spec.startStep,
      endStep: spec.endStep,
      time: this.time,
      stopped: "completed",
      checkpoints: [],
      checkpointErrors: [],
      evals: {},
      skippedSteps: 0,
      tokensPerSec: 0,
    };
  }

  requestStop(reason: string): void {
    this.stopRequested ??= reason;
  }

  async emit(record: MetricsRecord): Promise<void> {
    await this.dispatch("onRecord", record);
  }

  async reportEvaluation(results: Record<string, EvalResult>): Promise<void> {
    for (const [set, r] of Object.entries(results)) {
      this.summary.evals[set] = r;
      await this.emit({
        type: "eval",
        phase: this.spec.name,
        step: this.time.step,
        tokensSeen: this.time.tokens,
        set,
        ...r,
        loss: Number.isFinite(r.loss) ? r.loss : null,
      });
    }
    await this.dispatch("onEvaluate", results);
  }

  async reportCheckpoint(id: string): Promise<void> {
    await this.dispatch("postCheckpoint", id);
  }

  trainerState(): TrainerState {
    const o = this.options;
    return {
      format: "midtrain-trainer",
      version: 1,
      step: this.time.step,
      time: this.time,
      phase: { ...this.spec },
      mixer: this.mixer.getState(),
      schedules: { lr: this.lr.config, mixture: o.mixture },
      optimizer: { ...this.optimizer.config, step: this.optimizer.step },
      lineage: o.lineage ?? { parent: null, ancestors: [] },
      savedAt: new Date().toISOString(),
      ...(o.extra ? { extra: o.extra } : {}),
    };
  }

  /** Calls one hook of every callback, in order, awaiting each. */
  private async dispatch(hook: Hook, ...args: unknown[]): Promise<void> {
    for (const cb of this.callbacks) {
      const fn = cb[hook] as ((ctx: TrainerContext, ...a: unknown[]) => void | Promise<void>) | undefined;
      if (fn) await fn.call(cb, this, ...args);
    }
  }

  /**
   * The core loop: draw the micro-batches at the current time, compute the gradients, skip a
   * non-finite step, clip, apply AdamW at the schedule's rate, advance the time. Everything
   * else is a callback.
   */
  async run(): Promise<PhaseSummary> {
    const { model, mixer, optimizer, lr, spec, summary } = this;
    const micro = spec.batchSize / spec.gradAccum;
    const tokensPerStep = spec.batchSize * mixer.seqLen;
    const maxNonFinite = this.options.maxNonFinite ?? TRAINING_DEFAULTS.maxNonFinite;
    const perRow = this.callbacks.some((c) => c.needsRowLosses);
    let trainMs = 0;
    let inARow = 0;
    await this.dispatch("onStart");
    while (this.time.step < spec.endStep) {
      await yieldToEventLoop();
      await this.dispatch("preStep");
      if (this.stopRequested !== undefined) {
        summary.stopped = "aborted";
        summary.stopReason = this.stopRequested;
        break;
      }
      const ts = performance.now();
      const drawTime = this.time;
      const lrValue = lr.at(drawTime);
      if (!(typeof lrValue === "number" && Number.isFinite(lrValue) && lrValue >= 0)) {
        throw new TrainerConfigError(`the learning-rate schedule gave ${lrValue} at step ${drawTime.step}; it must be a finite number >= 0`);
      }
      const batches: Batch[] = [];
      const stepTokensBySource: Record<string, number> = {};
      for (let i = 0; i < spec.gradAccum; i++) {
        const b = mixer.nextBatch(micro, drawTime);
        for (const s of b.sources) stepTokensBySource[s] = (stepTokensBySource[s] ?? 0) + b.seqLen;
        batches.push(b);
      }
      // An offloaded optimizer (moments in host memory) gets the gradients accumulated on the host too.
      const offload = optimizer.offload;
      const g: Gradients | HostGradients = offload ? await computeGradientsOnHost(model, batches, { perRow }) : computeGradients(model, batches, { perRow });
      let loss: number;
      let norm: number;
      let rowLossSums: Float32Array | undefined;
      if (offload) {
        try {
          const [l, r] = await Promise.all([g.loss.data(), g.rowLossSums?.data()]);
          loss = l[0];
          rowLossSums = r as Float32Array | undefined;
          norm = hostGradientNorm((g as HostGradients).grads);
        } catch (e) {
          disposeGradients(g);
          throw e;
        }
      } else {
        const sq = squaredNormParts((g as Gradients).grads);
        try {
          const [l, s, r] = await Promise.all([g.loss.data(), sq.data(), g.rowLossSums?.data()]);
          loss = l[0];
          norm = Math.sqrt(sumFloat64(s));
          rowLossSums = r as Float32Array | undefined;
        } finally {
          sq.dispose();
        }
      }
      if (!Number.isFinite(loss) || !Number.isFinite(norm)) {
        disposeGradients(g);
        inARow++;
        summary.skippedSteps++;
        const reason = !Number.isFinite(loss) ? `loss is ${loss}` : `gradient norm is ${norm}`;
        await this.emit({
          type: "skip",
          phase: spec.name,
          step: drawTime.step + 1,
          loss: Number.isFinite(loss) ? loss : null,
          gradNorm: Number.isFinite(norm) ? norm : null,
          reason,
          inARow,
        });
        if (inARow >= maxNonFinite) {
          await this.emit({ type: "stop", phase: spec.name, step: drawTime.step, reason: "non-finite", lastCheckpoint: summary.lastCheckpoint ?? null });
          throw new NonFiniteLossError(drawTime.step, inARow, summary.lastCheckpoint, reason);
        }
        continue;
      }
      inARow = 0;
      let clipScale: number;
      try {
        if (offload) {
          const hg = (g as HostGradients).grads;
          clipScale = clipHostGradients(hg, norm, spec.clipNorm);
          await optimizer.update(model.params, hg, lrValue);
        } else {
          const dg = (g as Gradients).grads;
          clipScale = clipGradients(dg, norm, spec.clipNorm);
          optimizer.apply(model.params, dg, lrValue);
        }
      } finally {
        disposeGradients(g);
      }
      this.time = phaseTime(drawTime, spec, drawTime.step + 1, drawTime.tokens + tokensPerStep);
      const stepMs = performance.now() - ts;
      trainMs += stepMs;
      this.stepsDone++;
      summary.lastLoss = loss;
      const info: StepInfo = {
        step: this.time.step,
        drawTime,
        loss,
        lr: lrValue,
        gradNorm: norm,
        clipScale,
        tokensPerSec: (this.stepsDone * tokensPerStep) / (trainMs / 1000),
        stepMs,
        elapsedMs: performance.now() - this.startedAt,
        stepTokensBySource,
        batches,
        ...(rowLossSums ? { rowLossSums } : {}),
      };
      await this.emit(trainRecord(spec.name, this.time, info, mixer));
      await this.dispatch("postStep", info);
    }
    summary.time = this.time;
    summary.tokensPerSec = trainMs > 0 ? (this.stepsDone * tokensPerStep) / (trainMs / 1000) : 0;
    await this.dispatch("onEnd", summary);
    await this.emit({ type: "stop", phase: spec.name, step: this.time.step, reason: summary.stopped, lastCheckpoint: summary.lastCheckpoint ?? null });
    return summary;
  }
}

function trainRecord(phase: string, time: TrainingTime, s: StepInfo, mixer: Mixer): TrainRecord {
  const stats = mixer.stats();
  return {
    type: "train",
    phase,
    step: time.step,
    phaseStep: time.phaseStep,
    tokens: time.tokens,
    loss: s.loss,
    lr: s.lr,
    gradNorm: s.gradNorm,
    clipScale: s.clipScale,
    tokensPerSec: s.tokensPerSec,
    stepMs: s.stepMs,
    elapsedMs: s.elapsedMs,
    stepTokensBySource: s.stepTokensBySource,
    tokensBySource: Object.fromEntries(Object.entries(stats).map(([k, v]) => [k, v.tokens])),
  };
}

/**
 * Runs one phase up to global step `phase.steps`: a small core loop (draw batches from the mixer
 * at the current training time, accumulate gradients over `gradAccum` micro-batches, skip steps
 * with a non-finite loss or gradient, clip to `clipNorm`, apply AdamW with the schedule's LR;
 * with an offloaded AdamW (`offload: true`) the gradients are accumulated, clipped and applied in
 * host memory, see `computeGradientsOnHost`)
 * plus callbacks for everything else. The options create the built-in callbacks (`signal`,
 * `mixtureFeedback`, `evalSets`, `checkpoint`, `onProgress`, `metrics`); `callbacks` adds your
 * own after them. Every tensor read is awaited.
 */
export async function trainPhase(o: TrainPhaseOptions): Promise<PhaseSummary> {
  const spec = resolvePhase(o);
  return new PhaseRun(o, spec, [...builtInCallbacks(o), ...(o.callbacks ?? [])]).run();
}
