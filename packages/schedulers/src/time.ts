import { ScheduleTimeError } from "./errors.js";

/**
 * Where training is. One value is passed to every schedule; schedules are pure functions of
 * it, so a resumed run recomputes them instead of restoring hidden state.
 */
export interface TrainingTime {
  /** Optimizer steps taken since the start of the run (0 before the first update). */
  step: number;
  /** Tokens seen since the start of the run. */
  tokens: number;
  /** Name of the current phase (`"pretrain"`, `"midtrain"`, `"sft"`...). */
  phase: string;
  /** Steps taken since the start of the current phase. */
  phaseStep: number;
  /** Length of the current phase in steps (0 when unknown). */
  phaseSteps: number;
  /** `phaseStep / phaseSteps`, in [0, 1] (0 when the phase length is unknown). */
  phaseFraction: number;
  /** Length of the whole run in steps, when known; lets configs give times as fractions. */
  totalSteps?: number;
  /** Length of the whole run in tokens, when known. */
  totalTokens?: number;
}

/** The axis a schedule counts time on. */
export type TimeUnit = "steps" | "tokens" | "phase-steps";
export const TIME_UNITS: readonly TimeUnit[] = ["steps", "tokens", "phase-steps"];

/** A length of time: a number in the schedule's unit, or a fraction of the run's length. */
export type Span = number | { fraction: number };

/**
 * A point in time: a number in the schedule's unit, an explicit step or token count, or a
 * fraction of the run (in the schedule's unit).
 */
export type TimePoint = number | { step: number } | { tokens: number } | { fraction: number };

/** A time point after validation: either an absolute value or a fraction, on one axis. */
export interface ResolvedPoint {
  unit: TimeUnit;
  value?: number;
  fraction?: number;
}

export function unitLabel(unit: TimeUnit): string {
  return unit === "phase-steps" ? "steps of the phase" : unit;
}

/** The coordinate of `t` on `unit`'s axis; throws on a missing, negative or non-finite value. */
export function position(t: TrainingTime, unit: TimeUnit): number {
  const field = unit === "steps" ? "step" : unit === "tokens" ? "tokens" : "phaseStep";
  const x = (t as unknown as Record<string, unknown>)[field];
  if (typeof x !== "number" || !Number.isFinite(x) || x < 0) {
    throw new ScheduleTimeError(`training time has ${field} = ${String(x)}; a schedule counting ${unitLabel(unit)} needs a finite ${field} >= 0`);
  }
  return x;
}

/** The length of the run on `unit`'s axis, when the time carries it. */
export function runLength(t: TrainingTime, unit: TimeUnit): number | undefined {
  const v = unit === "steps" ? t.totalSteps : unit === "tokens" ? t.totalTokens : t.phaseSteps;
  return typeof v === "number" && Number.isFinite(v) && v > 0 ? v : undefined;
}

/**
 * Time as seen by a part that starts `offset` units into its parent and lasts `length`:
 * the coordinate on `unit`'s axis is shifted and the run length on that axis becomes the
 * part's length. The other coordinates are passed through unchanged.
 */
export function shiftTime(t: TrainingTime, unit: TimeUnit, offset: number, length: number | undefined): TrainingTime {
  const out: TrainingTime = { ...t };
  if (unit === "steps") {
    out.step = Math.max(0, t.step - offset);
    out.totalSteps = length;
  } else if (unit === "tokens") {
    out.tokens = Math.max(0, t.tokens - offset);
    out.totalTokens = length;
  } else {
    out.phaseStep = Math.max(0, t.phaseStep - offset);
    out.phaseSteps = length ?? 0;
    out.phaseFraction = length && length > 0 ? Math.min(1, out.phaseStep / length) : 0;
  }
  return out;
}

/**
 * A schedule's view of time: its unit and, when the config gives one, the run length in
 * that unit (`total`); otherwise the run length comes from the training time.
 */
export class Clock {
  constructor(
    readonly unit: TimeUnit,
    readonly configTotal: number | undefined,
    readonly path: string,
  ) {}

  x(t: TrainingTime): number {
    return position(t, this.unit);
  }

  /** The run length, or undefined when neither the config nor the time gives it. */
  totalOrUndefined(t: TrainingTime): number | undefined {
    return this.configTotal ?? runLength(t, this.unit);
  }

  total(t: TrainingTime, why: string): number {
    const total = this.totalOrUndefined(t);
    if (total === undefined) {
      const field = this.unit === "steps" ? "totalSteps" : this.unit === "tokens" ? "totalTokens" : "phaseSteps";
      throw new ScheduleTimeError(`${this.path}: ${why} needs the length of the run: set "total" in the config or pass ${field} in the training time`);
    }
    return total;
  }

  /** Value of a point on its own axis (a fraction is taken of this clock's run length). */
  resolve(p: ResolvedPoint, t: TrainingTime, name: string): number {
    if (p.value !== undefined) return p.value;
    return p.fraction! * this.total(t, `${name} given as a fraction`);
  }

  /** The point's value when it is known without a training time, else undefined. */
  staticValue(p: ResolvedPoint): number | undefined {
    if (p.value !== undefined) return p.value;
    return this.configTotal === undefined ? undefined : p.fraction! * this.configTotal;
  }
}

/** Options for {@link trainingTime}. */
export interface TrainingTimeInit {
  step: number;
  /** Tokens seen; defaults to `step * tokensPerStep` (or 0). */
  tokens?: number;
  tokensPerStep?: number;
  phase?: string;
  /** Step at which the current phase started (default 0). */
  phaseStart?: number;
  /** Length of the phase in steps (default: `totalSteps`, else 0). */
  phaseSteps?: number;
  totalSteps?: number;
  /** Defaults to `totalSteps * tokensPerStep` when both are given. */
  totalTokens?: number;
}

/** Builds a consistent {@link TrainingTime} from a step and a few facts about the run. */
export function trainingTime(init: TrainingTimeInit): TrainingTime {
  const tokens = init.tokens ?? init.step * (init.tokensPerStep ?? 0);
  const phaseStep = init.step - (init.phaseStart ?? 0);
  const phaseSteps = init.phaseSteps ?? init.totalSteps ?? 0;
  const totalTokens =
    init.totalTokens ?? (init.totalSteps !== undefined && init.tokensPerStep !== undefined ? init.totalSteps * init.tokensPerStep : undefined);
  const t: TrainingTime = {
    step: init.step,
    tokens,
    phase: init.phase ?? "main",
    phaseStep,
    phaseSteps,
    phaseFraction: phaseSteps > 0 ? Math.min(1, Math.max(0, phaseStep / phaseSteps)) : 0,
  };
  if (init.totalSteps !== undefined) t.totalSteps = init.totalSteps;
  if (totalTokens !== undefined) t.totalTokens = totalTokens;
  return t;
}
