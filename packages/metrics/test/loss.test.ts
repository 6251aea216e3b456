import { describe, expect, it } from "vitest";
import { EmptyInputError, InvalidArgumentError, LengthMismatchError, NonFiniteError } from "../src/errors.js";
import { LossAccumulator, LossBySet, bitsPerByte, bitsPerToken, lossSummary, meanCrossEntropy, perplexity, utf8ByteLength } from "../src/loss.js";

// Tolerance: 1e-12 absolute unless stated (all values are a handful of float64 operations).
describe("loss aggregation", () => {
  it("averages only unmasked tokens; masked positions may hold NaN", () => {
    expect(meanCrossEntropy([1, 2, 3, Number.NaN], [1, 1, 1, 0])).toBeCloseTo(2, 12);
    expect(meanCrossEntropy([1, 2, 3, 6])).toBeCloseTo(3, 12);
    expect(meanCrossEntropy(new Float32Array([0.5, 1.5]), new Uint8Array([1, 1]))).toBeCloseTo(1, 12);
  });

  it("perplexity, bits per token and bits per byte match hand values", () => {
    expect(perplexity(2)).toBeCloseTo(7.38905609893065, 12);
    expect(bitsPerToken(Math.LN2 * 3)).toBeCloseTo(3, 12);
    // 6 nats over 10 bytes: 6 / (ln2 · 10) = 0.8656170245333781
    expect(bitsPerByte(6, 10)).toBeCloseTo(0.8656170245333781, 12);
    const s = lossSummary({ sumNats: 6, tokens: 3, bytes: 10 });
    expect(s.meanNats).toBe(2);
    expect(s.perplexity).toBeCloseTo(Math.E ** 2, 12);
    expect(s.bitsPerToken).toBeCloseTo(2.8853900817779268, 12);
    expect(s.bitsPerByte).toBeCloseTo(0.8656170245333781, 12);
    expect(lossSummary({ sumNats: 6, tokens: 3 }).bitsPerByte).toBeUndefined();
  });

  it("accumulator over batches equals the one-shot mean, and merge adds", () => {
    const losses = [2.5, 1.0, 3.0, 0.5, 4.0, 9.9];
    const mask = [1, 1, 0, 1, 1, 0];
    const whole = meanCrossEntropy(losses, mask); // (2.5+1+0.5+4)/4 = 2
    expect(whole).toBeCloseTo(2, 12);
    const a = new LossAccumulator().add(losses.slice(0, 3), mask.slice(0, 3)).addBytes(5);
    const b = new LossAccumulator().add(losses.slice(3), mask.slice(3)).addBytes(7);
    expect(a.tokens).toBe(2);
    const r = a.merge(b).result();
    expect(r.tokens).toBe(4);
    expect(r.sumNats).toBeCloseTo(8, 12);
    expect(r.meanNats).toBeCloseTo(2, 12);
    expect(r.bytes).toBe(12);
    expect(r.bitsPerByte).toBeCloseTo(8 / (Math.LN2 * 12), 12);
    expect(b.tokens).toBe(2); // merge leaves the other accumulator alone
  });

  it("state round-trips through JSON", () => {
    const a = new LossAccumulator().addSums(10, 4, 20);
    const b = LossAccumulator.fromJSON(JSON.parse(JSON.stringify(a)));
    expect(b.result()).toEqual(a.result());
  });

  it("compensated summation keeps small terms next to huge ones", () => {
    const acc = new LossAccumulator().addSums(1e16, 1).addSums(1, 1).addSums(-1e16, 1);
    // A naive float64 sum gives 0 here; the exact sum is 1.
    expect(acc.result().sumNats).toBe(1);
  });

  it("throws typed errors that say what to fix", () => {
    expect(() => meanCrossEntropy([1, 2], [1])).toThrow(LengthMismatchError);
    expect(() => meanCrossEntropy([1, Number.NaN], [1, 1])).toThrow(NonFiniteError);
    expect(() => meanCrossEntropy([1, 2], [0, 0])).toThrow(EmptyInputError);
    expect(() => meanCrossEntropy([])).toThrow(/no tokens/);
    expect(() => meanCrossEntropy([1], [-1])).toThrow(InvalidArgumentError);
    expect(() => new LossAccumulator().result()).toThrow(EmptyInputError);
    expect(() => bitsPerByte(1, 0)).toThrow(/bytes must be > 0/);
    expect(() => perplexity(Number.POSITIVE_INFINITY)).toThrow(NonFiniteError);
  });
});

describe("per validation set", () => {
  it("keeps one accumulator per set and names the empty one in errors", () => {
    const a = new LossBySet().add("general", [1, 3], [1, 1]).addBytes("general", 4);
    const b = new LossBySet().add("general", [2], [1]).addSums("code", 3, 2);
    const r = a.merge(b).result();
    expect(r.general.meanNats).toBeCloseTo(2, 12); // (1+3+2)/3
    expect(r.general.bitsPerByte).toBeCloseTo(6 / (Math.LN2 * 4), 12);
    expect(r.code.meanNats).toBeCloseTo(1.5, 12);
    expect(a.names()).toEqual(["general", "code"]);
    expect(a.meanNats()).toEqual({ general: r.general.meanNats, code: 1.5 });
    a.get("empty");
    expect(() => a.result()).toThrow(/validation set 'empty': no tokens/);
    expect(utf8ByteLength("aé€😀")).toBe(1 + 2 + 3 + 4);
  });
});
