import type { Batch } from "@midtrain/data";
import type { MixtureFeedbackTarget } from "../train.js";
import type { TrainerCallback } from "./types.js";

/** Mean masked loss of each source's rows, from per-row loss sums (rows in batch order). */
export function lossBySource(batches: readonly Batch[], rowSums: Float32Array): Record<string, number> {
  const sum: Record<string, number> = {};
  const count: Record<string, number> = {};
  let row = 0;
  for (const b of batches) {
    const names = b.sources ?? [];
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

/**
 * Feeds a stateful mixture schedule (`mixtureFeedback`, e.g. doremi) after every applied step
 * with the mean masked loss of the step's rows per source, at the time the batch was drawn.
 * Runs before the checkpoint callback, so a checkpoint holds the updated schedule state.
 */
export function mixtureFeedbackCallback(target: MixtureFeedbackTarget): TrainerCallback {
  return {
    name: "mixture-feedback",
    needsRowLosses: true,
    postStep(_ctx, s) {
      if (s.rowLossSums) target.update?.({ time: s.drawTime, lossBySource: lossBySource(s.batches, s.rowLossSums) });
    },
  };
}
