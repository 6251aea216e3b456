import { checkpointName, latestCheckpoint, pruneCheckpoints, saveCheckpoint } from "../checkpoint.js";
import { CheckpointWriteError } from "../errors.js";
import type { CheckpointOptions } from "../train.js";
import type { InternalContext, TrainerCallback, TrainerContext } from "./types.js";

/**
 * Checkpointing (`trainPhase`'s `checkpoint` option): removes leftovers of killed writers once at
 * the start, saves every `every` steps, at the `at` steps, at the end of the phase (`final`) and
 * when the phase stops early, prunes to `keepLast` (never the `at` steps), and fails the phase on
 * a write error unless `onError: "continue"`.
 */
export function checkpointCallback(o: CheckpointOptions & { onError: "throw" | "continue"; final: boolean }): TrainerCallback {
  const keepSteps = o.at ?? [];
  let savedAt = -1;

  const save = async (ctx: TrainerContext): Promise<void> => {
    const { summary, spec } = ctx;
    const step = ctx.time.step;
    const state = ctx.trainerState();
    const t = performance.now();
    let id: string;
    try {
      id = await saveCheckpoint(o.storage, { model: ctx.model, optimizer: ctx.optimizer, state });
    } catch (e) {
      const msg = (e as Error).message;
      summary.checkpointErrors.push(msg);
      await ctx.emit({ type: "checkpoint-error", phase: spec.name, step, id: checkpointName(step), error: msg });
      savedAt = step;
      if (!(e instanceof CheckpointWriteError) || o.onError === "throw") throw e;
      return;
    }
    savedAt = step;
    summary.lastCheckpoint = id;
    summary.checkpoints.push(id);
    let deleted: string[] = [];
    try {
      if (o.keepLast) deleted = await pruneCheckpoints(o.storage, o.keepLast, keepSteps, [id]);
    } catch (e) {
      // The new checkpoint is safe; old ones left behind only cost space.
      const msg = `checkpoint '${id}' was written but deleting older checkpoints failed: ${(e as Error).message}`;
      summary.checkpointErrors.push(msg);
      await ctx.emit({ type: "checkpoint-error", phase: spec.name, step, id, error: msg });
    }
    await ctx.emit({ type: "checkpoint", phase: spec.name, step, id, ms: performance.now() - t, deleted });
    await (ctx as InternalContext).reportCheckpoint(id);
  };

  return {
    name: "checkpoint",
    async onStart(ctx) {
      await o.storage.cleanTemporary?.();
      ctx.summary.lastCheckpoint = await latestCheckpoint(o.storage).catch(() => undefined);
    },
    async postStep(ctx) {
      const step = ctx.time.step;
      const due = (o.every && step % o.every === 0) || keepSteps.includes(step) || (step === ctx.spec.endStep && o.final);
      if (due) await save(ctx);
    },
    async onEnd(ctx, summary) {
      if (ctx.stepsDone > 0 && savedAt !== ctx.time.step && (summary.stopped === "aborted" || o.final)) await save(ctx);
    },
  };
}
