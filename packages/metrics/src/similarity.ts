import { EmptyInputError, InvalidArgumentError, UndefinedMetricError } from "./errors.js";

/**
 * Token id → count (or any non-negative weight, e.g. a frequency). All similarity functions
 * accept raw counts or frequencies alike: cosine and JSD are scale-invariant and Jaccard only
 * looks at which tokens are present.
 */
export type TokenCounts = Map<number, number>;

/** Default number of most frequent tokens kept per dataset (the study's 50k). */
export const DEFAULT_TOP_K = 50_000;

/** Weights of the combined similarity score. */
export const SIMILARITY_WEIGHTS = { cosine: 0.4, jaccard: 0.3, jsd: 0.3 } as const;

export interface TokenCountOptions {
  /** Use only the first `maxTexts` texts (the study used 1000 per dataset). */
  maxTexts?: number;
  /** Truncate each text to its first `maxTokensPerText` token ids. */
  maxTokensPerText?: number;
}

function isFlat(input: unknown): input is ArrayLike<number> {
  if (ArrayBuffer.isView(input)) return true;
  if (Array.isArray(input)) return input.length === 0 || typeof input[0] === "number";
  return false;
}

function countInto(counts: TokenCounts, ids: ArrayLike<number>, limit: number): void {
  const n = Math.min(ids.length, limit);
  for (let i = 0; i < n; i++) {
    const id = ids[i];
    if (!Number.isInteger(id) || id < 0) {
      throw new InvalidArgumentError(`token id ${id} at position ${i} is not a non-negative integer`);
    }
    counts.set(id, (counts.get(id) ?? 0) + 1);
  }
}

/**
 * Unigram counts of a dataset given as one flat array of token ids, or as per-text arrays
 * (optionally limited to `maxTexts` texts, each truncated to `maxTokensPerText` tokens).
 */
export function tokenCounts(input: ArrayLike<number> | Iterable<ArrayLike<number>>, options: TokenCountOptions = {}): TokenCounts {
  const { maxTexts = Number.POSITIVE_INFINITY, maxTokensPerText = Number.POSITIVE_INFINITY } = options;
  for (const [name, v] of [
    ["maxTexts", maxTexts],
    ["maxTokensPerText", maxTokensPerText],
  ] as const) {
    if (!(v >= 1)) throw new InvalidArgumentError(`${name} must be >= 1, got ${v}`);
  }
  const counts: TokenCounts = new Map();
  if (isFlat(input)) {
    countInto(counts, input, maxTokensPerText);
    return counts;
  }
  let t = 0;
  for (const text of input as Iterable<ArrayLike<number>>) {
    if (t++ >= maxTexts) break;
    countInto(counts, text, maxTokensPerText);
  }
  return counts;
}

function checkCounts(c: TokenCounts, what: string): number {
  let total = 0;
  for (const [id, v] of c) {
    if (!Number.isFinite(v) || v < 0) {
      throw new InvalidArgumentError(`${what}: count of token ${id} is ${v}; counts must be finite and >= 0`);
    }
    total += v;
  }
  if (total === 0) {
    throw new EmptyInputError(`${what} has no tokens (all counts are zero); pass a non-empty dataset`);
  }
  return total;
}

/**
 * The `k` most frequent tokens of `counts` (ties broken by smaller token id, so the result is
 * deterministic). Zero counts are dropped.
 */
export function topKCounts(counts: TokenCounts, k: number = DEFAULT_TOP_K): TokenCounts {
  if (!Number.isInteger(k) || k < 1) throw new InvalidArgumentError(`topK must be an integer >= 1, got ${k}`);
  const entries = [...counts].filter(([, v]) => v > 0);
  if (entries.length <= k) return new Map(entries);
  entries.sort((a, b) => b[1] - a[1] || a[0] - b[0]);
  return new Map(entries.slice(0, k));
}

/** Cosine similarity of two count vectors over the union of their tokens; in [0, 1] for counts. */
export function cosineSimilarity(a: TokenCounts, b: TokenCounts): number {
  checkCounts(a, "a");
  checkCounts(b, "b");
  let dot = 0;
  let na = 0;
  let nb = 0;
  for (const [id, v] of a) {
    na += v * v;
    const w = b.get(id);
    if (w !== undefined) dot += v * w;
  }
  for (const v of b.values()) nb += v * v;
  if (na === 0 || nb === 0) throw new UndefinedMetricError("cosine similarity of a zero vector is undefined");
  return Math.min(1, dot / Math.sqrt(na * nb));
}

/** Jaccard similarity `|A ∩ B| / |A ∪ B|` of the two vocabularies (tokens with count > 0). */
export function jaccardSimilarity(a: TokenCounts, b: TokenCounts): number {
  checkCounts(a, "a");
  checkCounts(b, "b");
  let inter = 0;
  let sizeA = 0;
  let sizeB = 0;
  for (const [id, v] of a) {
    if (v <= 0) continue;
    sizeA++;
    if ((b.get(id) ?? 0) > 0) inter++;
  }
  for (const v of b.values()) if (v > 0) sizeB++;
  return inter / (sizeA + sizeB - inter);
}

/**
 * Jensen–Shannon divergence **in bits** (log base 2) between the two normalized unigram
 * distributions: `JSD = ½ KL(p‖m) + ½ KL(q‖m)`, `m = ½(p + q)`. Bounded in [0, 1]:
 * 0 iff the distributions are equal, 1 iff their supports are disjoint.
 * (The natural-log variant would be bounded by ln 2 instead; divide by ln 2 to compare.)
 */
export function jensenShannonDivergence(a: TokenCounts, b: TokenCounts): number {
  const ta = checkCounts(a, "a");
  const tb = checkCounts(b, "b");
  let sum = 0;
  const term = (p: number, m: number) => (p > 0 ? p * Math.log2(p / m) : 0);
  for (const [id, v] of a) {
    const p = v / ta;
    const q = (b.get(id) ?? 0) / tb;
    const m = 0.5 * (p + q);
    sum += term(p, m) + term(q, m);
  }
  for (const [id, v] of b) {
    if (a.has(id)) continue;
    // p = 0 here, so m = q/2 and the q term is q·log2(2) = q.
    sum += v / tb;
  }
  return Math.min(1, Math.max(0, 0.5 * sum));
}

export interface SimilarityOptions {
  /** Keep each dataset's `topK` most frequent tokens before comparing (default 50,000). */
  topK?: number;
}

export interface UnigramSimilarity {
  cosine: number;
  jaccard: number;
  /** Jensen–Shannon divergence in bits, in [0, 1]. */
  jsdBits: number;
  /** `1 / (1 + jsdBits)`, in [0.5, 1]. */
  jsdScore: number;
  /** `0.4·cosine + 0.3·jaccard + 0.3·jsdScore`, in [0.15, 1]. */
  similarity: number;
  /** `1 − similarity`, in [0, 0.85]. */
  distance: number;
}

/**
 * Token-unigram similarity of two datasets as in the study: each dataset's frequency vector
 * restricted to its own top-K tokens, then cosine, Jaccard of the two top-K vocabularies and
 * `1/(1+JSD)` combined as `0.4·cos + 0.3·Jaccard + 0.3/(1+JSD)`.
 */
export function unigramSimilarity(a: TokenCounts, b: TokenCounts, options: SimilarityOptions = {}): UnigramSimilarity {
  const k = options.topK ?? DEFAULT_TOP_K;
  const ta = topKCounts(a, k);
  const tb = topKCounts(b, k);
  const cosine = cosineSimilarity(ta, tb);
  const jaccard = jaccardSimilarity(ta, tb);
  const jsdBits = jensenShannonDivergence(ta, tb);
  const jsdScore = 1 / (1 + jsdBits);
  const similarity = SIMILARITY_WEIGHTS.cosine * cosine + SIMILARITY_WEIGHTS.jaccard * jaccard + SIMILARITY_WEIGHTS.jsd * jsdScore;
  return { cosine, jaccard, jsdBits, jsdScore, similarity, distance: 1 - similarity };
}

/** `1 − unigramSimilarity(a, b).similarity`. */
export function unigramDistance(a: TokenCounts, b: TokenCounts, options: SimilarityOptions = {}): number {
  return unigramSimilarity(a, b, options).distance;
}

/**
 * Mixture-aware representation of a midtraining set: the token distribution of a stream that
 * draws a fraction `weight` of its tokens from `specialized` and `1 − weight` from `general`,
 * i.e. `(1 − w)·p_general + w·p_specialized` (returned as frequencies summing to 1; top-K
 * selection happens later, on the mixture).
 */
export function mixtureCounts(general: TokenCounts, specialized: TokenCounts, weight: number): TokenCounts {
  if (!Number.isFinite(weight) || weight < 0 || weight > 1) {
    throw new InvalidArgumentError(`mixture weight must be in [0, 1] (fraction of specialized tokens), got ${weight}`);
  }
  const tg = checkCounts(general, "general");
  const ts = checkCounts(specialized, "specialized");
  const out: TokenCounts = new Map();
  if (weight < 1) for (const [id, v] of general) if (v > 0) out.set(id, ((1 - weight) * v) / tg);
  if (weight > 0) for (const [id, v] of specialized) if (v > 0) out.set(id, (out.get(id) ?? 0) + (weight * v) / ts);
  return out;
}

export interface ProximityInput extends SimilarityOptions {
  /** General pretraining corpus (e.g. C4). */
  general: TokenCounts;
  /** SFT dataset. */
  sft: TokenCounts;
  /** Midtraining set as observed counts. Give this, or `specialized` + `weight`. */
  mid?: TokenCounts;
  /** Specialized data of the midtraining mixture (used with `weight` when `mid` is absent). */
  specialized?: TokenCounts;
  /** Fraction of specialized tokens in the midtraining mixture. */
  weight?: number;
}

export interface ProximityAdvantage {
  /** d(general, SFT). */
  dGeneralSft: number;
  /** d(mid, SFT). */
  dMidSft: number;
  /** PA = d(general, SFT) − d(mid, SFT). Positive = the midtraining data is closer to the SFT data than the general corpus is. */
  value: number;
}

/**
 * Proximity advantage `PA = d(general, SFT) − d(mid, SFT)` with `d = 1 − unigramSimilarity`.
 * The midtraining set is either given directly (`mid`) or built mixture-aware from
 * `general` + `specialized` at `weight` (see {@link mixtureCounts}).
 */
export function proximityAdvantage(input: ProximityInput): ProximityAdvantage {
  let mid = input.mid;
  if (mid === undefined) {
    if (input.specialized === undefined || input.weight === undefined) {
      throw new InvalidArgumentError("proximityAdvantage() needs either `mid` counts or both `specialized` counts and the mixture `weight`");
    }
    mid = mixtureCounts(input.general, input.specialized, input.weight);
  }
  const opts = { topK: input.topK };
  const dGeneralSft = unigramDistance(input.general, input.sft, opts);
  const dMidSft = unigramDistance(mid, input.sft, opts);
  return { dGeneralSft, dMidSft, value: dGeneralSft - dMidSft };
}
