import type { Finding } from "../findings.js";

/**
 * Mean and spread of one metric over seeds. `Summary` from `@midtrain/metrics`
 * (`summarize(values)`) satisfies this type; `stderr`, `min` and `max` are optional here.
 */
export interface SeedStats {
  mean: number;
  /** Sample standard deviation over seeds (n − 1); shown only when n > 1. */
  std: number;
  n: number;
  values: number[];
  stderr?: number;
  min?: number;
  max?: number;
}

export type Phase = "pretrain" | "branch" | "sft";

export interface CurvePoint {
  step: number;
  tokens: number;
  trainLoss?: number;
  /** Validation loss per validation set name (e.g. `{ general: 4.9, code: 2.3 }`), nats. */
  valLoss?: Record<string, number>;
}

export interface Curve {
  id: string;
  phase: Phase;
  branch: string;
  sftDomain?: string;
  seed?: number;
  lr?: number;
  points: CurvePoint[];
}

export type BranchKind = "baseline" | "midtrain" | "cpt";

export interface ResultRow {
  branch: string;
  kind: BranchKind;
  /** Specialized source of the midtraining mixture / continued pretraining (e.g. `code`). */
  specialized?: string;
  /** Fraction of specialized tokens in the mixture. */
  weight?: number;
  /** Where the branch starts, as a fraction of pretraining. */
  startFraction?: number;
  startStep?: number;
  sftDomain: string;
  /**
   * In-domain SFT loss (nats) on the SFT set's test half, of the runs whose LR was selected on the
   * validation half (best per seed), over seeds. Run folders from before test splits: validation.
   */
  sftLoss: SeedStats;
  /** In-domain SFT validation loss (nats) of the same selected runs: the selection criterion. */
  sftValLoss?: SeedStats;
  /** General-corpus loss after SFT (nats) on its test half, over seeds. */
  generalLossAfterSft: SeedStats;
  generalLossBeforeSft?: SeedStats;
  /** `(L_base − L) / L_base` of the SFT loss; positive = better than the baseline. */
  relImprovement?: number;
  /** General loss after SFT minus the baseline's; positive = more forgetting. */
  forgettingVsBaseline?: number;
  /** `d(general, SFT) − d(mid, SFT)`; positive = midtraining data closer to the SFT data. */
  proximityAdvantage?: number;
  /** Best learning rate per seed. */
  bestLr?: number[];
}

/** Everything a report is rendered from; the runner fills it and writes it as `results.json`. */
export interface ExperimentResults {
  name: string;
  /** ISO 8601 time the results were produced. */
  createdAt: string;
  backend: string;
  device?: string;
  wallSeconds?: number;
  notes?: string[];
  /**
   * Jobs of the plan that have not finished (no outcome yet). When present and non-empty the
   * numbers are partial: means, best learning rates and differences cover only what finished.
   */
  missing?: string[];
  curves: Curve[];
  rows: ResultRow[];
  /**
   * The paper's findings measured in this run: paired differences over pretraining seeds with
   * intervals and verdicts computed from the numbers (see `computeFindings`). Absent in results
   * written before findings existed.
   */
  findings?: Finding[];
  /** Representation similarity (linear CKA per layer on a fixed batch of general validation data). */
  cka?: CkaResults;
}

/** Linear CKA per layer (index 0: the embedding output, then each block's output). */
export interface CkaResults {
  /** Per branch (not the baseline) and pretraining seed: the branch vs the baseline, both before SFT. */
  branchVsBaseline: Array<{ branch: string; pretrainSeed: number; perLayer: number[] }>;
  /** Per SFT run selected by the LR protocol: the model after SFT vs before it (its branch's final weights). */
  sftVsStart: Array<{ branch: string; sftDomain: string; pretrainSeed: number; seed: number; lr: number; perLayer: number[] }>;
}
