import type { TrainingTime } from "@midtrain/schedulers";

/** A training time at `step`, with optional run length and tokens per step. */
export function at(step: number, extra: Partial<TrainingTime> = {}): TrainingTime {
  return { step, tokens: 0, phase: "main", phaseStep: step, phaseSteps: 0, phaseFraction: 0, ...extra };
}
