import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import * as api from "../src/index.js";
import { didYouMean, permutation, Rng, suggest } from "../src/index.js";

// Keeps the README example honest: the same calls, the results its comments claim.
describe("README example", () => {
  it("behaves as documented", () => {
    const rng = new Rng(42, "mixer");
    const k = rng.nextInt(10);
    expect(k).toBe(new Rng(42, "mixer").nextInt(10));
    expect(Number.isInteger(k) && k >= 0 && k < 10).toBe(true);
    const saved = rng.getState();
    expect(Rng.fromState(JSON.parse(JSON.stringify(saved))).nextFloat()).toBe(rng.nextFloat());
    expect(Array.from(permutation(5, new Rng(1))).sort()).toEqual([0, 1, 2, 3, 4]);
    expect(Array.from(permutation(5, new Rng(1)))).toEqual(Array.from(permutation(5, new Rng(1))));
    expect(`unknown schedule 'cosin'${didYouMean(suggest("cosin", ["constant", "cosine", "wsd"]))}`).toBe("unknown schedule 'cosin' — did you mean 'cosine'?");
  });
});

describe("README API", () => {
  it("documents every value the entry exports", () => {
    const readme = readFileSync(join(import.meta.dirname, "..", "README.md"), "utf8");
    const apiSection = readme.split("## API")[1]?.split("\n## ")[0] ?? "";
    const names = Object.keys(api);
    expect(names).toContain("Rng");
    expect(names.filter((n) => !apiSection.includes(`\`${n}`))).toEqual([]);
  });
});
