import { InvalidArgumentError, assertFinite } from "./errors.js";

export interface ForgettingInput {
  /** General-corpus (e.g. C4) validation loss of this model after SFT, in nats. */
  generalLossAfterSft: number;
  /** General-corpus loss of the general-only baseline after the same SFT, in nats. */
  baselineGeneralLossAfterSft: number;
  /** General-corpus loss of this model just before SFT, in nats (optional). */
  generalLossBeforeSft?: number;
}

/**
 * Forgetting numbers. Sign convention everywhere: **positive = more forgetting**
 * (a higher general loss than the reference), negative = less forgetting / better retention.
 */
export interface Forgetting {
  /** `L_after − L_baseline_after` (nats): extra general loss relative to the general-only baseline after the same SFT. */
  vsBaseline: number;
  /** `(L_after − L_baseline_after) / L_baseline_after`: {@link vsBaseline} as a fraction of the baseline's loss. */
  relativeVsBaseline: number;
  /** `L_after − L_before` (nats): how much SFT itself raised this model's general loss. */
  vsBeforeSft?: number;
  /** `(L_after − L_before) / L_before`. */
  relativeVsBeforeSft?: number;
}

function positiveLoss(x: number, what: string): void {
  assertFinite(x, what);
  if (x <= 0) throw new InvalidArgumentError(`${what} must be a positive loss (nats), got ${x}`);
}

/**
 * Forgetting of general-corpus ability after SFT, as the study measures it (general loss after
 * SFT compared with the general-only model after the same SFT), and optionally vs the same
 * model before SFT. Positive values mean more forgetting.
 */
export function forgetting(input: ForgettingInput): Forgetting {
  const { generalLossAfterSft: after, baselineGeneralLossAfterSft: base, generalLossBeforeSft: before } = input;
  positiveLoss(after, "generalLossAfterSft");
  positiveLoss(base, "baselineGeneralLossAfterSft");
  const out: Forgetting = { vsBaseline: after - base, relativeVsBaseline: (after - base) / base };
  if (before !== undefined) {
    positiveLoss(before, "generalLossBeforeSft");
    out.vsBeforeSft = after - before;
    out.relativeVsBeforeSft = (after - before) / before;
  }
  return out;
}

/**
 * Relative improvement of a candidate (midtrained / continued-pretrained) model over the
 * baseline: `(L_base − L) / L_base`. **Positive = the candidate has lower loss** (better);
 * 0.05 means 5% lower loss than the baseline.
 */
export function relativeImprovement(baselineLoss: number, loss: number): number {
  positiveLoss(baselineLoss, "baselineLoss");
  assertFinite(loss, "loss");
  return (baselineLoss - loss) / baselineLoss;
}
