import type { Mixer } from "@midtrain/data";
import type { GPTNeoXModel } from "@midtrain/model";
import { type ByteCounter, type EvalResult, evaluate } from "../evaluate.js";
import type { TrainerCallback, TrainerContext } from "./types.js";

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

export interface EvaluationCallbackOptions {
  sets: readonly string[];
  batchSize: number;
  /** Evaluate after every step that is a multiple of this (0: never during the phase). */
  every: number;
  /** Evaluate at the end of a completed phase (unless that step was just evaluated). */
  atEnd: boolean;
  tokenizer?: ByteCounter;
}

/** Evaluation on the mixer's validation sets (`evalEvery`, `evalSets`, `evalAtEnd`, ...). */
export function evaluationCallback(o: EvaluationCallbackOptions): TrainerCallback {
  let evaluatedAt = -1;
  const run = async (ctx: TrainerContext) => {
    evaluatedAt = ctx.time.step;
    await ctx.reportEvaluation(await evaluateSets(ctx.model, ctx.mixer, o.sets, o.batchSize, o.tokenizer));
  };
  return {
    name: "evaluation",
    async postStep(ctx, s) {
      if (o.every && s.step % o.every === 0) await run(ctx);
    },
    async onEnd(ctx, summary) {
      if (summary.stopped === "completed" && o.atEnd && evaluatedAt !== ctx.time.step) await run(ctx);
    },
  };
}
