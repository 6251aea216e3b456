import type { EvalResult } from "../evaluate.js";
import type { MetricsSink } from "../metrics.js";
import type { ProgressEvent } from "../train.js";
import type { TrainerCallback } from "./types.js";

/**
 * Writes the metrics records to a sink, awaiting each: `train` records every `logEvery` global
 * steps and at the phase's last step; every other record always.
 */
export function metricsCallback(sink: MetricsSink, o: { logEvery: number }): TrainerCallback {
  return {
    name: "metrics",
    async onRecord(ctx, r) {
      if (r.type === "train" && r.step % o.logEvery !== 0 && r.step !== ctx.spec.endStep) return;
      await sink.write(r);
    },
  };
}

/** Calls `onProgress` after every applied step, with the evaluation of that step if one ran. */
export function progressCallback(onProgress: (event: ProgressEvent) => void): TrainerCallback {
  let last: { step: number; results: Record<string, EvalResult> } | undefined;
  return {
    name: "progress",
    onEvaluate(ctx, results) {
      last = { step: ctx.time.step, results };
    },
    postStep(ctx, s) {
      const elapsed = (performance.now() - ctx.startedAt) / 1000;
      const evals = last?.step === s.step ? last.results : undefined;
      last = undefined;
      onProgress({
        phase: ctx.spec.name,
        step: s.step,
        endStep: ctx.spec.endStep,
        phaseStep: ctx.time.phaseStep,
        phaseSteps: ctx.time.phaseSteps,
        tokens: ctx.time.tokens,
        loss: s.loss,
        lr: s.lr,
        gradNorm: s.gradNorm,
        tokensPerSec: s.tokensPerSec,
        etaSeconds: ((ctx.spec.endStep - s.step) * elapsed) / ctx.stepsDone,
        elapsedSeconds: elapsed,
        ...(evals ? { evals } : {}),
      });
    },
  };
}
