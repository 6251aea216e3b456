import { proximityAdvantage, tokenCounts } from "@midtrain/metrics";
import type { PackedSource } from "@midtrain/data";
import type { ExperimentData } from "./env.js";
import type { ExperimentPlan } from "./plan.js";

/** Token ids of up to `maxSequences` sequences of a packed source (targets with loss only). */
function sampleTokens(src: PackedSource, maxSequences: number): Int32Array[] {
  const n = Math.min(maxSequences, src.numSequences);
  const T = src.seqLen;
  const inputs = new Int32Array(T);
  const targets = new Int32Array(T);
  const mask = new Float32Array(T);
  const out: Int32Array[] = [];
  for (let i = 0; i < n; i++) {
    src.write(Math.floor((i * src.numSequences) / n), inputs, targets, mask, 0);
    const ids: number[] = [];
    for (let t = 0; t < T; t++) if (mask[t] > 0) ids.push(targets[t]);
    out.push(Int32Array.from(ids));
  }
  return out;
}

/**
 * Proximity advantage of each branch's mixture for each SFT domain, under the model
 * tokenizer: d(general, SFT) − d(mixture, SFT), with the mixture-aware representation
 * (general and specialised unigram frequencies mixed at the branch weight). 0 for the baseline.
 */
export function proximityTable(plan: ExperimentPlan, data: ExperimentData, maxSequences = 1000): Record<string, Record<string, number>> {
  const general = tokenCounts(sampleTokens(data.sources[plan.config.data.general].train, maxSequences));
  const sftDomains = plan.config.sft?.domains ?? [];
  const sftCounts = Object.fromEntries(sftDomains.map((d) => [d, tokenCounts(sampleTokens(data.sft[d].train, maxSequences))]));
  const specCache = new Map<string, ReturnType<typeof tokenCounts>>();
  const table: Record<string, Record<string, number>> = {};
  for (const b of plan.branches) {
    table[b.name] = {};
    for (const d of sftDomains) {
      if (b.kind === "baseline") {
        table[b.name][d] = 0;
        continue;
      }
      // A custom mixture without a nominal source and share has no single mixture to compare.
      if (!b.source || b.weight === undefined) continue;
      if (!specCache.has(b.source)) specCache.set(b.source, tokenCounts(sampleTokens(data.sources[b.source].train, maxSequences)));
      table[b.name][d] = proximityAdvantage({ general, sft: sftCounts[d], specialized: specCache.get(b.source)!, weight: b.weight }).value;
    }
  }
  return table;
}
