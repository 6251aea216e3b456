import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { EmptyInputError, InvalidArgumentError } from "../src/errors.js";
import {
  type TokenCounts,
  cosineSimilarity,
  jaccardSimilarity,
  jensenShannonDivergence,
  mixtureCounts,
  proximityAdvantage,
  tokenCounts,
  topKCounts,
  unigramDistance,
  unigramSimilarity,
} from "../src/similarity.js";

const C = (o: Record<number, number>): TokenCounts => new Map(Object.entries(o).map(([k, v]) => [Number(k), v]));

/** Independent reference: JSD = H(m) − (H(p) + H(q)) / 2 in bits, over dense vectors. */
function jsdByEntropy(a: TokenCounts, b: TokenCounts): number {
  const ids = [...new Set([...a.keys(), ...b.keys()])];
  const sa = [...a.values()].reduce((s, v) => s + v, 0);
  const sb = [...b.values()].reduce((s, v) => s + v, 0);
  const H = (ps: number[]) => -ps.reduce((s, p) => s + (p > 0 ? p * Math.log2(p) : 0), 0);
  const p = ids.map((i) => (a.get(i) ?? 0) / sa);
  const q = ids.map((i) => (b.get(i) ?? 0) / sb);
  const m = p.map((x, i) => (x + q[i]) / 2);
  return H(m) - (H(p) + H(q)) / 2;
}

describe("token counts and top-K", () => {
  it("counts flat ids and per-text arrays with limits", () => {
    expect(tokenCounts([1, 1, 2])).toEqual(C({ 1: 2, 2: 1 }));
    expect(tokenCounts(new Int32Array([5, 5, 5]))).toEqual(C({ 5: 3 }));
    const texts = [
      [1, 2, 3],
      [3, 3],
    ];
    expect(tokenCounts(texts)).toEqual(C({ 1: 1, 2: 1, 3: 3 }));
    expect(tokenCounts(texts, { maxTokensPerText: 1 })).toEqual(C({ 1: 1, 3: 1 }));
    expect(tokenCounts(texts, { maxTexts: 1 })).toEqual(C({ 1: 1, 2: 1, 3: 1 }));
    expect(() => tokenCounts([1, -2])).toThrow(InvalidArgumentError);
    expect(() => tokenCounts([1], { maxTexts: 0 })).toThrow(/maxTexts must be >= 1/);
  });

  it("keeps the k most frequent tokens, ties to the smaller id", () => {
    const c = C({ 1: 5, 2: 5, 3: 1, 4: 7, 9: 0 });
    expect(topKCounts(c, 2)).toEqual(C({ 4: 7, 1: 5 }));
    expect(topKCounts(c, 10)).toEqual(C({ 1: 5, 2: 5, 3: 1, 4: 7 }));
    expect(() => topKCounts(c, 0)).toThrow(InvalidArgumentError);
  });
});

describe("hand-computed similarity components (tolerance 1e-12)", () => {
  // a = {1,2} uniform, b = {2,3} uniform.
  const a = C({ 1: 1, 2: 1 });
  const b = C({ 2: 3, 3: 3 }); // scaled: must not matter
  it("cosine = 1/(√2·√2) = 0.5", () => expect(cosineSimilarity(a, b)).toBeCloseTo(0.5, 12));
  it("Jaccard = |{2}| / |{1,2,3}| = 1/3", () => expect(jaccardSimilarity(a, b)).toBeCloseTo(1 / 3, 12));
  it("JSD: m = (¼,½,¼), KL(p‖m) = KL(q‖m) = ½ bit → 0.5 bits", () => {
    expect(jensenShannonDivergence(a, b)).toBeCloseTo(0.5, 12);
  });
  it("combined: 0.4·0.5 + 0.3·⅓ + 0.3·(1/1.5) = 0.5", () => {
    const s = unigramSimilarity(a, b);
    expect(s.jsdScore).toBeCloseTo(2 / 3, 12);
    expect(s.similarity).toBeCloseTo(0.5, 12);
    expect(s.distance).toBeCloseTo(0.5, 12);
    expect(unigramDistance(a, b)).toBeCloseTo(0.5, 12);
  });
  it("second case: a = (3,1) on {1,2}, b = (1,1) on {1,2}", () => {
    const x = C({ 1: 3, 2: 1 });
    const y = C({ 1: 1, 2: 1 });
    // cos = (3+1)/(√10·√2) = 4/√20
    expect(cosineSimilarity(x, y)).toBeCloseTo(4 / Math.sqrt(20), 12);
    expect(jaccardSimilarity(x, y)).toBe(1);
    // p=(.75,.25), q=(.5,.5), m=(.625,.375):
    // ½[.75·log2(.75/.625) + .25·log2(.25/.375) + .5·log2(.5/.625) + .5·log2(.5/.375)]
    const ref = 0.5 * (0.75 * Math.log2(0.75 / 0.625) + 0.25 * Math.log2(0.25 / 0.375) + 0.5 * Math.log2(0.5 / 0.625) + 0.5 * Math.log2(0.5 / 0.375));
    expect(jensenShannonDivergence(x, y)).toBeCloseTo(ref, 12);
    expect(ref).toBeCloseTo(0.048794940695398, 12);
  });
});

describe("JSD bounds", () => {
  it("JSD(p, p) = 0, disjoint supports = 1 bit, and the similarity is 1 for identical sets", () => {
    const p = C({ 1: 4, 7: 2, 9: 1 });
    expect(jensenShannonDivergence(p, p)).toBe(0);
    expect(jensenShannonDivergence(p, C({ 2: 1, 3: 5 }))).toBeCloseTo(1, 12);
    expect(unigramSimilarity(p, C({ 1: 8, 7: 4, 9: 2 })).similarity).toBeCloseTo(1, 12);
    // Disjoint: cos 0, Jaccard 0, 1/(1+1) → 0.15, the lower bound.
    expect(unigramSimilarity(p, C({ 2: 1 })).similarity).toBeCloseTo(0.15, 12);
  });

  it("property: 0 ≤ JSD ≤ 1, symmetric, equals the entropy form", () => {
    const counts = fc
      .array(fc.tuple(fc.integer({ min: 0, max: 30 }), fc.integer({ min: 1, max: 1000 })), {
        minLength: 1,
        maxLength: 25,
      })
      .map((e) => new Map(e));
    fc.assert(
      fc.property(counts, counts, (a, b) => {
        const j = jensenShannonDivergence(a, b);
        const s = unigramSimilarity(a, b);
        return (
          j >= 0 &&
          j <= 1 &&
          Math.abs(j - jensenShannonDivergence(b, a)) < 1e-12 &&
          Math.abs(j - jsdByEntropy(a, b)) < 1e-9 &&
          s.similarity >= 0.15 - 1e-12 &&
          s.similarity <= 1 + 1e-12
        );
      }),
    );
  });

  it("errors on empty datasets", () => {
    expect(() => cosineSimilarity(new Map(), C({ 1: 1 }))).toThrow(EmptyInputError);
    expect(() => jensenShannonDivergence(C({ 1: 0 }), C({ 1: 1 }))).toThrow(/has no tokens/);
    expect(() => jaccardSimilarity(C({ 1: -1 }), C({ 1: 1 }))).toThrow(InvalidArgumentError);
  });
});

describe("top-K restriction", () => {
  it("drops rare tokens before comparing", () => {
    // a and b share the frequent tokens; each has one different rare token.
    const a = C({ 1: 100, 2: 50, 3: 1 });
    const b = C({ 1: 100, 2: 50, 4: 1 });
    expect(unigramSimilarity(a, b, { topK: 2 }).similarity).toBeCloseTo(1, 12);
    expect(unigramSimilarity(a, b).jaccard).toBeCloseTo(2 / 4, 12);
  });
});

describe("mixture-aware midtraining set and proximity advantage", () => {
  it("mixes frequencies at the training ratio", () => {
    // general p = (.75,.25,0), specialized q = (0,.5,.5), w = .2 → (.6, .3, .1)
    const m = mixtureCounts(C({ 1: 3, 2: 1 }), C({ 2: 1, 3: 1 }), 0.2);
    expect(m.get(1)).toBeCloseTo(0.6, 12);
    expect(m.get(2)).toBeCloseTo(0.3, 12);
    expect(m.get(3)).toBeCloseTo(0.1, 12);
    expect(mixtureCounts(C({ 1: 3 }), C({ 2: 1 }), 0)).toEqual(C({ 1: 1 }));
    expect(() => mixtureCounts(C({ 1: 1 }), C({ 2: 1 }), 1.5)).toThrow(/weight must be in \[0, 1\]/);
  });

  it("PA = d(general, SFT) − d(mid, SFT), hand-computed", () => {
    const general = C({ 1: 1, 2: 1 });
    const sft = C({ 2: 1, 3: 1 });
    // d(general, sft) = 0.5 (see above); mid = sft → d = 0 → PA = 0.5.
    const pa = proximityAdvantage({ general, sft, mid: sft });
    expect(pa.dGeneralSft).toBeCloseTo(0.5, 12);
    expect(pa.dMidSft).toBeCloseTo(0, 12);
    expect(pa.value).toBeCloseTo(0.5, 12);
    expect(proximityAdvantage({ general, sft, specialized: sft, weight: 1 }).value).toBeCloseTo(0.5, 12);
    expect(proximityAdvantage({ general, sft, specialized: sft, weight: 0 }).value).toBeCloseTo(0, 12);
    // More specialized data → closer to SFT → larger PA.
    const w1 = proximityAdvantage({ general, sft, specialized: sft, weight: 0.1 }).value;
    const w5 = proximityAdvantage({ general, sft, specialized: sft, weight: 0.5 }).value;
    expect(w1).toBeGreaterThan(0);
    expect(w5).toBeGreaterThan(w1);
    expect(() => proximityAdvantage({ general, sft })).toThrow(/needs either `mid`/);
  });
});
