import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import * as api from "../src/index.js";
import { LossAccumulator, forgetting, linearCka, proximityAdvantage, relativeImprovement, summarize, tokenCounts } from "../src/index.js";

// Keeps the README example honest: the same calls, the values its comments claim.
describe("README example", () => {
  it("produces the documented values", () => {
    const acc = new LossAccumulator();
    acc.add(new Float32Array([2.1, 1.9, 7.0]), [1, 1, 0]).addBytes(9);
    const r = acc.result();
    expect(r.meanNats).toBeCloseTo(2.0, 6); // float32 inputs: tolerance 1e-6
    expect(r.perplexity).toBeCloseTo(7.389, 3);
    expect(r.bitsPerByte).toBeCloseTo(0.641, 3);
    expect(relativeImprovement(2.264, 2.091)).toBeCloseTo(0.0764, 4);
    expect(forgetting({ generalLossAfterSft: 4.611, baselineGeneralLossAfterSft: 5.058 }).vsBaseline).toBeCloseTo(-0.447, 12);
    const s = summarize([2.09, 2.11, 2.07]);
    expect(s.mean).toBeCloseTo(2.09, 12);
    expect(s.std).toBeCloseTo(0.02, 12);
    const general = tokenCounts([
      [1, 2, 3, 4],
      [2, 3, 5],
    ]);
    const code = tokenCounts([
      [7, 8, 9, 3],
      [7, 9],
    ]);
    const sft = tokenCounts([[7, 9, 9, 2]]);
    expect(proximityAdvantage({ general, specialized: code, weight: 0.2, sft }).value).toBeGreaterThan(0);
    expect(
      linearCka(
        [
          [1, 0],
          [0, 1],
          [1, 1],
        ],
        [
          [2, 0],
          [0, 2],
          [2, 2],
        ],
      ),
    ).toBeCloseTo(1, 12);
  });
});

describe("README API", () => {
  it("documents every value the entry exports", () => {
    const readme = readFileSync(join(import.meta.dirname, "..", "README.md"), "utf8");
    const apiSection = readme.split("## API")[1] ?? "";
    const names = Object.keys(api);
    expect(names).toContain("linearCka");
    expect(names.filter((n) => !apiSection.includes(`\`${n}`) && !apiSection.includes(`\`new ${n}`))).toEqual([]);
  });
});
