/**
 * The public API of `@midtrain/metrics`. Helpers shared by the modules (finite-number checks,
 * compensated summation) are internal.
 */
export {
  EmptyInputError,
  InvalidArgumentError,
  LengthMismatchError,
  MetricsError,
  NonFiniteError,
  UndefinedMetricError,
} from "./errors.js";
export {
  bitsPerByte,
  bitsPerToken,
  LossAccumulator,
  type LossAccumulatorState,
  LossBySet,
  type LossSummary,
  lossSummary,
  meanCrossEntropy,
  perplexity,
  utf8ByteLength,
} from "./loss.js";
export { type Forgetting, type ForgettingInput, forgetting, relativeImprovement } from "./forgetting.js";
export { pearson, type Summary, summarize } from "./stats.js";
export {
  cosineSimilarity,
  DEFAULT_TOP_K,
  jaccardSimilarity,
  jensenShannonDivergence,
  mixtureCounts,
  type ProximityAdvantage,
  type ProximityInput,
  proximityAdvantage,
  SIMILARITY_WEIGHTS,
  type SimilarityOptions,
  type TokenCountOptions,
  type TokenCounts,
  tokenCounts,
  topKCounts,
  type UnigramSimilarity,
  unigramDistance,
  unigramSimilarity,
} from "./similarity.js";
export { type CkaOptions, ckaPerLayer, linearCka, type Matrix } from "./cka.js";
export { correlationInterval, type Interval, meanInterval, pairedDifference, type Verdict, verdictOf } from "./intervals.js";
