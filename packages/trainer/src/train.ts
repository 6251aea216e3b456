import type { Mixer, TrainingTime } from "@midtrain/data";
import type { GPTNeoXModel } from "@midtrain/model";
import type { AdamW } from "./adamw.js";
import {
  type Lineage,
  latestCheckpoint,
  type PhaseSpec,
  pruneCheckpoints,
  type ScheduleConfigJson,
  saveCheckpoint,
  type TrainerState,
} from "./checkpoint.js";
import { CheckpointWriteError, NonFiniteLossError, TrainerConfigError } from "./errors.js";
import { type ByteCounter, type EvalResult, evaluate } from "./evaluate.js";
import { clipGradients, computeGradients, disposeGradients, type MicroBatch, squaredNorm } from "./grads.js";
import type { MetricsRecord, MetricsSink } from "./metrics.js";
import type { CheckpointStorage } from "./storage.js";

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
  /** Global-norm clipping threshold (default 1.0; 0 disables clipping). */
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
  onProgress?: (event: ProgressEvent) => void;
  /** Aborting stops training after the current step, with a checkpoint when storage is set. */
  signal?: AbortSignal;
  /** Stop with NonFiniteLossError after this many non-finite steps in a row (default 5). */
  maxNonFinite?: number;
  /** Free-form data saved in trainer.json. */
  extra?: Record<string, unknown>;
  /**
   * A stateful mixture schedule to feed after every applied step (usually the one the mixer
   * draws with): `update({ time, lossBySource })` with the mean masked loss of the step's rows
   * of each source, `time` being the time the batch was drawn at. Its state is saved with the
   * mixer's in checkpoints.
   */
  mixtureFeedback?: { update?(feedback: { time: TrainingTime; lossBySource: Record<string, number> }): void };
}

export interface PhaseSummary {
  phase: string;
  startStep: number;
  endStep: number;
  /** Training time when the call returned. */
  time: TrainingTime;
  stopped: "completed" | "aborted";
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

/** Mean masked loss of each source's rows, from per-row loss sums (rows in batch order). */
function lossBySource(batches: readonly MicroBatch[], rowSums: Float32Array): Record<string, number> {
  const sum: Record<string, number> = {};
  const count: Record<string, number> = {};
  let row = 0;
  for (const b of batches) {
    const names = (b as { sources?: string[] }).sources ?? [];
    for (let r = 0; r < b.batchSize; r++, row++) {
      const name = names[r];
      if (name === undefined) continue;
      let m = 0;
      for (let t = 0; t < b.seqLen; t++) m += b.mask[r * b.seqLen + t];
      sum[name] = (sum[name] ?? 0) + rowSums[row];
      count[name] = (count[name] ?? 0) + m;
    }
  }
  const out: Record<string, number> = {};
  for (const k of Object.keys(sum)) if (count[k] > 0) out[k] = sum[k] / count[k];
  return out;
}

/** Evaluates each named validation set of the mixer. */
export async function evaluateSets(
  model: GPTNeoXModel,
  mixer: Mixer,
  sets: readonly string[],
  batchSize: number,
  tokenizer?: ByteCounter,
): Promise<Record<string, EvalResult>> {
  const out: Record<string, EvalResult> = {};
  for (const s of sets) out[s] = await evaluate(model, mixer.evalBatches(s, batchSize), { tokenizer });
  return out;
}

/**
 * Runs one phase up to global step `phase.steps`: draws batches from the mixer at the current
 * training time, accumulates gradients over `gradAccum` micro-batches, skips steps with a
 * non-finite loss or gradient, clips to `clipNorm`, applies AdamW with the schedule's LR,
 * evaluates, checkpoints and logs. Every tensor read is awaited.
 */
export async function trainPhase(o: TrainPhaseOptions): Promise<PhaseSummary> {
  const { model, mixer, lr, optimizer } = o;
  const gradAccum = o.phase.gradAccum ?? 1;
  positiveInt(o.phase.batchSize, "phase.batchSize");
  positiveInt(gradAccum, "phase.gradAccum");
  positiveInt(o.phase.steps, "phase.steps", true);
  positiveInt(o.evalEvery, "evalEvery", true);
  positiveInt(o.evalBatchSize, "evalBatchSize");
  positiveInt(o.checkpoint?.every, "checkpoint.every", true);
  positiveInt(o.checkpoint?.keepLast, "checkpoint.keepLast");
  positiveInt(o.maxNonFinite, "maxNonFinite");
  if (!o.phase.name) throw new TrainerConfigError("phase.name must be a non-empty string");
  if (o.phase.batchSize % gradAccum !== 0) {
    throw new TrainerConfigError(
      `phase.batchSize ${o.phase.batchSize} is not divisible by gradAccum ${gradAccum}; pick a batch size that is a multiple of gradAccum`,
    );
  }
  const clipNorm = o.phase.clipNorm ?? 1;
  if (!(clipNorm >= 0 && Number.isFinite(clipNorm))) throw new TrainerConfigError(`phase.clipNorm must be >= 0, got ${clipNorm}`);
  if (mixer.seqLen > model.config.seqLen) {
    throw new TrainerConfigError(`the mixer's sequences (${mixer.seqLen} tokens) are longer than the model's context (${model.config.seqLen})`);
  }
  const evalSets = o.evalSets ?? [];
  const evalBatchSize = o.evalBatchSize ?? o.phase.batchSize;
  for (const s of evalSets) mixer.evalBatches(s, 1); // throws UnknownSourceError for a wrong name
  const start = o.time ?? { ...ZERO_TIME, phase: o.phase.name };
  if (o.phase.steps < start.step) {
    throw new TrainerConfigError(`phase '${o.phase.name}' ends at step ${o.phase.steps}, before the start time (step ${start.step})`);
  }
  const spec: PhaseSpec = {
    name: o.phase.name,
    startStep: start.phase === o.phase.name ? start.step - start.phaseStep : start.step,
    endStep: o.phase.steps,
    batchSize: o.phase.batchSize,
    gradAccum,
    clipNorm,
  };
  let time = phaseTime(start, spec, start.step, start.tokens);
  const micro = o.phase.batchSize / gradAccum;
  const tokensPerStep = o.phase.batchSize * mixer.seqLen;
  const maxNonFinite = o.maxNonFinite ?? 5;
  const lineage: Lineage = o.lineage ?? { parent: null, ancestors: [] };
  const ck = o.checkpoint;
  const keepSteps = ck?.at ?? [];
  const sink = o.metrics;
  const emit = async (r: MetricsRecord) => {
    if (sink) await sink.write(r);
  };

  const summary: PhaseSummary = {
    phase: spec.name,
    startStep: spec.startStep,
    endStep: spec.endStep,
    time,
    stopped: "completed",
    lastCheckpoint: ck ? await latestCheckpoint(ck.storage).catch(() => undefined) : undefined,
    checkpoints: [],
    checkpointErrors: [],
    evals: {},
    skippedSteps: 0,
    tokensPerSec: 0,
  };
  let savedAt = -1;
  let evaluatedAt = -1;

  const checkpoint = async (): Promise<void> => {
    if (!ck) return;
    const state: TrainerState = {
      format: "midtrain-trainer",
      version: 1,
      step: time.step,
      time,
      phase: spec,
      mixer: mixer.getState(),
      schedules: { lr: lr.config, mixture: o.mixture },
      optimizer: { ...optimizer.config, step: optimizer.step },
      lineage,
      savedAt: new Date().toISOString(),
      ...(o.extra ? { extra: o.extra } : {}),
    };
    const t = performance.now();
    let id: string;
    try {
      id = await saveCheckpoint(ck.storage, { model, optimizer, state });
    } catch (e) {
      const msg = (e as Error).message;
      summary.checkpointErrors.push(msg);
      await emit({ type: "checkpoint-error", phase: spec.name, step: time.step, id: `ckpt-${time.step}`, error: msg });
      savedAt = time.step;
      if (!(e instanceof CheckpointWriteError)) throw e;
      return;
    }
    savedAt = time.step;
    summary.lastCheckpoint = id;
    summary.checkpoints.push(id);
    let deleted: string[] = [];
    try {
      if (ck.keepLast) deleted = await pruneCheckpoints(ck.storage, ck.keepLast, keepSteps, [id]);
    } catch (e) {
      const msg = `checkpoint '${id}' was written but deleting older checkpoints failed: ${(e as Error).message}`;
      summary.checkpointErrors.push(msg);
      await emit({ type: "checkpoint-error", phase: spec.name, step: time.step, id, error: msg });
    }
    await emit({ type: "checkpoint", phase: spec.name, step: time.step, id, ms: performance.now() - t, deleted });
  };

  const runEval = async (): Promise<Record<string, EvalResult> | undefined> => {
    if (evalSets.length === 0) return undefined;
    evaluatedAt = time.step;
    const res = await evaluateSets(model, mixer, evalSets, evalBatchSize, o.tokenizer);
    for (const [set, r] of Object.entries(res)) {
      summary.evals[set] = r;
      await emit({
        type: "eval",
        phase: spec.name,
        step: time.step,
        tokensSeen: time.tokens,
        set,
        ...r,
        loss: Number.isFinite(r.loss) ? r.loss : null,
      });
    }
    return res;
  };

  const t0 = performance.now();
  let trainMs = 0;
  let stepsDone = 0;
  let inARow = 0;
  while (time.step < spec.endStep) {
    await yieldToEventLoop();
    if (o.signal?.aborted) {
      summary.stopped = "aborted";
      break;
    }
    const ts = performance.now();
    const lrValue = lr.at(time);
    if (!(typeof lrValue === "number" && Number.isFinite(lrValue) && lrValue >= 0)) {
      throw new TrainerConfigError(`the learning-rate schedule gave ${lrValue} at step ${time.step}; it must be a finite number >= 0`);
    }
    const batches: MicroBatch[] = [];
    const stepTokensBySource: Record<string, number> = {};
    for (let i = 0; i < gradAccum; i++) {
      const b = mixer.nextBatch(micro, time);
      for (const s of b.sources) stepTokensBySource[s] = (stepTokensBySource[s] ?? 0) + b.seqLen;
      batches.push(b);
    }
    const feedback = o.mixtureFeedback?.update ? o.mixtureFeedback : undefined;
    const g = computeGradients(model, batches, { perRow: feedback !== undefined });
    const sq = squaredNorm(g.grads);
    let loss: number;
    let norm: number;
    let rowSums: Float32Array | undefined;
    try {
      const [l, s, r] = await Promise.all([g.loss.data(), sq.data(), g.rowLossSums?.data()]);
      loss = l[0];
      norm = Math.sqrt(s[0]);
      rowSums = r as Float32Array | undefined;
    } finally {
      sq.dispose();
    }
    if (!Number.isFinite(loss) || !Number.isFinite(norm)) {
      disposeGradients(g);
      inARow++;
      summary.skippedSteps++;
      const reason = !Number.isFinite(loss) ? `loss is ${loss}` : `gradient norm is ${norm}`;
      await emit({
        type: "skip",
        phase: spec.name,
        step: time.step + 1,
        loss: Number.isFinite(loss) ? loss : null,
        gradNorm: Number.isFinite(norm) ? norm : null,
        reason,
        inARow,
      });
      if (inARow >= maxNonFinite) {
        await emit({ type: "stop", phase: spec.name, step: time.step, reason: "non-finite", lastCheckpoint: summary.lastCheckpoint ?? null });
        throw new NonFiniteLossError(time.step, inARow, summary.lastCheckpoint, reason);
      }
      continue;
    }
    inARow = 0;
    const clipScale = clipGradients(g.grads, norm, clipNorm);
    try {
      optimizer.apply(model.params, g.grads, lrValue);
    } finally {
      disposeGradients(g);
    }
    if (feedback && rowSums) feedback.update!({ time, lossBySource: lossBySource(batches, rowSums) });
    time = phaseTime(time, spec, time.step + 1, time.tokens + tokensPerStep);
    const stepMs = performance.now() - ts;
    trainMs += stepMs;
    stepsDone++;
    const tokensPerSec = (stepsDone * tokensPerStep) / (trainMs / 1000);
    summary.lastLoss = loss;
    const stats = mixer.stats();
    await emit({
      type: "train",
      phase: spec.name,
      step: time.step,
      phaseStep: time.phaseStep,
      tokens: time.tokens,
      loss,
      lr: lrValue,
      gradNorm: norm,
      clipScale,
      tokensPerSec,
      stepMs,
      elapsedMs: performance.now() - t0,
      stepTokensBySource,
      tokensBySource: Object.fromEntries(Object.entries(stats).map(([k, v]) => [k, v.tokens])),
    });
    const evals = o.evalEvery && time.step % o.evalEvery === 0 ? await runEval() : undefined;
    const due =
      (ck?.every && time.step % ck.every === 0) ||
      keepSteps.includes(time.step) ||
      (time.step === spec.endStep && ck?.final !== false);
    if (due) await checkpoint();
    if (o.onProgress) {
      const elapsed = (performance.now() - t0) / 1000;
      o.onProgress({
        phase: spec.name,
        step: time.step,
        endStep: spec.endStep,
        phaseStep: time.phaseStep,
        phaseSteps: time.phaseSteps,
        tokens: time.tokens,
        loss,
        lr: lrValue,
        gradNorm: norm,
        tokensPerSec,
        etaSeconds: ((spec.endStep - time.step) * elapsed) / stepsDone,
        elapsedSeconds: elapsed,
        ...(evals ? { evals } : {}),
      });
    }
  }
  if (summary.stopped === "completed" && o.evalAtEnd !== false && evaluatedAt !== time.step) await runEval();
  if (ck && stepsDone > 0 && savedAt !== time.step && (summary.stopped === "aborted" || ck.final !== false)) await checkpoint();
  summary.time = time;
  summary.tokensPerSec = trainMs > 0 ? (stepsDone * tokensPerStep) / (trainMs / 1000) : 0;
  await emit({ type: "stop", phase: spec.name, step: time.step, reason: summary.stopped, lastCheckpoint: summary.lastCheckpoint ?? null });
  return summary;
}
