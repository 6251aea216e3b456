import { forgetting, relativeImprovement, summarize } from "@midtrain/metrics";
import type { BranchPlan } from "./plan.js";
import type { ResultRow, SeedStats } from "./report/types.js";

/** What one SFT run measured at its end. */
export interface SftOutcome {
  branch: string;
  domain: string;
  lr: number;
  /** SFT seed. */
  seed: number;
  pretrainSeed: number;
  /** In-domain SFT validation loss (nats, label tokens only): what the LR is selected on. */
  sftLoss: number;
  /** General-corpus validation loss (nats). */
  generalLoss: number;
  /** In-domain loss on the SFT set's test half (nats): what is reported. Absent in run folders from before test splits. */
  testLoss?: number;
  /** General-corpus loss on its test half after SFT (nats). */
  generalTestLoss?: number;
}

/** The reported (test) values of an SFT run, falling back to validation for run folders without test splits. */
export const reportedSft = (o: SftOutcome) => ({ sft: o.testLoss ?? o.sftLoss, general: o.generalTestLoss ?? o.generalLoss });

/** What a branch's final checkpoint measured before SFT. */
export interface BranchOutcome {
  branch: string;
  pretrainSeed: number;
  generalLoss: number;
  /** General-corpus loss on its test half (nats). */
  generalTestLoss?: number;
}

function stats(values: number[]): SeedStats {
  const s = summarize(values);
  return { mean: s.mean, std: s.std, n: s.n, values: s.values, stderr: s.stderr, min: s.min, max: s.max };
}

/**
 * The study's LR selection: for every (branch, domain, pretraining seed, SFT seed) the run with the
 * lowest SFT validation loss (ties: the smaller LR). Keyed by those four joined with NUL.
 */
export function selectBestLr(sft: readonly SftOutcome[]): Map<string, SftOutcome> {
  const best = new Map<string, SftOutcome>();
  for (const o of sft) {
    const key = `${o.branch}\u0000${o.domain}\u0000${o.pretrainSeed}\u0000${o.seed}`;
    const cur = best.get(key);
    if (!cur || o.sftLoss < cur.sftLoss || (o.sftLoss === cur.sftLoss && o.lr < cur.lr)) best.set(key, o);
  }
  return best;
}

/**
 * The study's protocol: for every (branch, domain, pretraining seed, SFT seed) keep the LR
 * with the lowest SFT validation loss, then summarise over seeds. General loss after SFT is
 * read from the same selected runs. Relative improvement and forgetting compare means with
 * the baseline branch of the same domain.
 */
export function aggregateResults(
  branches: readonly BranchPlan[],
  sft: readonly SftOutcome[],
  before: readonly BranchOutcome[],
  proximity: Record<string, Record<string, number>> = {},
): ResultRow[] {
  const best = selectBestLr(sft);
  const domains = [...new Set(sft.map((o) => o.domain))];
  const rows: ResultRow[] = [];
  const baseline = branches.find((b) => b.kind === "baseline");
  for (const domain of domains) {
    const baseSel = baseline ? [...best.values()].filter((o) => o.branch === baseline.name && o.domain === domain) : [];
    const baseSft = baseSel.length ? stats(baseSel.map((o) => reportedSft(o).sft)).mean : undefined;
    const baseGen = baseSel.length ? stats(baseSel.map((o) => reportedSft(o).general)).mean : undefined;
    for (const b of branches) {
      const sel = [...best.values()]
        .filter((o) => o.branch === b.name && o.domain === domain)
        .sort((x, y) => x.pretrainSeed - y.pretrainSeed || x.seed - y.seed);
      if (!sel.length) continue;
      const sftLoss = stats(sel.map((o) => reportedSft(o).sft));
      const sftValLoss = stats(sel.map((o) => o.sftLoss));
      const generalLossAfterSft = stats(sel.map((o) => reportedSft(o).general));
      const pre = before.filter((o) => o.branch === b.name).map((o) => o.generalTestLoss ?? o.generalLoss);
      const row: ResultRow = {
        branch: b.name,
        kind: b.kind,
        specialized: b.source,
        weight: b.kind === "baseline" ? undefined : b.weight,
        startFraction: b.kind === "baseline" ? undefined : b.startFraction,
        startStep: b.kind === "baseline" ? undefined : b.startStep,
        sftDomain: domain,
        sftLoss,
        sftValLoss,
        generalLossAfterSft,
        generalLossBeforeSft: pre.length ? stats(pre) : undefined,
        bestLr: sel.map((o) => o.lr),
      };
      if (baseSft !== undefined) row.relImprovement = relativeImprovement(baseSft, sftLoss.mean);
      if (baseGen !== undefined)
        row.forgettingVsBaseline = forgetting({ generalLossAfterSft: generalLossAfterSft.mean, baselineGeneralLossAfterSft: baseGen }).vsBaseline;
      const pa = proximity[b.name]?.[domain];
      if (pa !== undefined) row.proximityAdvantage = pa;
      rows.push(row);
    }
  }
  return rows;
}
