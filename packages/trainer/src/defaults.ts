import { ADAMW_DEFAULTS, type AdamWConfig } from "./adamw.js";

/**
 * The trainer's defaults, defined once. `trainPhase`, `AdamW` and the experiment configs of
 * `@midtrain/experiments` all read them from here, so a default cannot differ between the
 * library and the runner.
 */
export interface TrainingDefaults {
  /** AdamW hyper-parameters (`ADAMW_DEFAULTS`). */
  readonly adamw: Readonly<AdamWConfig>;
  /** Global-norm gradient clipping threshold (`phase.clipNorm`; 0 disables clipping). */
  readonly clipNorm: number;
  /** Micro-batches per optimizer step (`phase.gradAccum`). */
  readonly gradAccum: number;
  /** Non-finite steps in a row before `NonFiniteLossError` (`maxNonFinite`). */
  readonly maxNonFinite: number;
  /** A `train` metrics record every N steps, plus the phase's last step (`logEvery`). */
  readonly logEvery: number;
  /** Evaluate the `evalSets` at the end of a phase (`evalAtEnd`). */
  readonly evalAtEnd: boolean;
  /** Save a checkpoint at the end of a phase (`checkpoint.final`). */
  readonly checkpointFinal: boolean;
  /** What a failed checkpoint write does (`checkpoint.onError`): fail the phase. */
  readonly checkpointOnError: "throw" | "continue";
}

export const TRAINING_DEFAULTS: TrainingDefaults = Object.freeze({
  adamw: ADAMW_DEFAULTS,
  clipNorm: 1,
  gradAccum: 1,
  maxNonFinite: 5,
  logEvery: 1,
  evalAtEnd: true,
  checkpointFinal: true,
  checkpointOnError: "throw",
});
