import { describe, expect, it } from "vitest";
import type { SftOutcome } from "../src/aggregate.js";
import { computeFindings, type Finding, lrGridWarnings } from "../src/findings.js";
import { formatFindingsTable, renderReportHtml } from "../src/report/render.js";
import type { BranchPlan } from "../src/plan.js";

function branch(name: string, kind: BranchPlan["kind"], extra: Partial<BranchPlan> = {}): BranchPlan {
  return {
    name,
    kind,
    startStep: 100,
    startFraction: 1,
    stepsLeft: 0,
    specializedTokens: 0,
    mixture: { type: "constant" },
    customMixture: false,
    fromGrid: false,
    inGrid: false,
    ...extra,
  };
}

const branches = [
  branch("baseline", "baseline"),
  branch("mid-code", "midtrain", { source: "code", weight: 0.2, startStep: 30 }),
  branch("cpt-code", "cpt", { source: "code", weight: 1, startStep: 80 }),
];

/** SFT outcomes for 3 pretraining seeds, 2 LRs, 2 domains; `loss(branch, domain, seed)` sets the best LR's loss. */
function outcomes(loss: (b: string, d: string, s: number) => number, general: (b: string, s: number) => number = () => 4): SftOutcome[] {
  const out: SftOutcome[] = [];
  for (const b of branches.map((x) => x.name))
    for (const domain of ["code", "math"])
      for (const pretrainSeed of [1, 2, 3])
        for (const lr of [0.001, 0.01]) {
          // The worse LR is 0.5 nats above the best one and has a much lower general loss: selection must ignore it.
          const best = lr === 0.001;
          out.push({
            branch: b,
            domain,
            lr,
            seed: 1,
            pretrainSeed,
            sftLoss: loss(b, domain, pretrainSeed) + (best ? 0 : 0.5),
            generalLoss: general(b, pretrainSeed) - (best ? 0 : 1),
          });
        }
  return out;
}

const byKind = (fs: Finding[], kind: string) => fs.find((f) => f.kind === kind)!;
const seedNoise = (s: number) => [0, 0.3, -0.2][s - 1];

describe("computeFindings: verdicts come from the numbers", () => {
  it("midtraining beats the baseline when every seed says so, paired over a large seed effect", () => {
    const fs = computeFindings(
      branches,
      outcomes((b, _d, s) => 2 + seedNoise(s) - (b === "mid-code" ? 0.1 + 0.01 * s : 0)),
      [],
    );
    const f = byKind(fs, "midtrain-vs-baseline");
    expect(f.id).toBe("midtrain-vs-baseline:mid-code:code");
    expect(f.interval!.estimate).toBeCloseTo(0.12, 10);
    expect(f.interval!.n).toBe(3);
    expect(f.verdict).toBe("reproduced");
  });

  it("the same finding flips to contradicted, then to inconclusive, as the data changes", () => {
    const worse = computeFindings(
      branches,
      outcomes((b, _d, s) => 2 + seedNoise(s) + (b === "mid-code" ? 0.1 + 0.01 * s : 0)),
      [],
    );
    expect(byKind(worse, "midtrain-vs-baseline").verdict).toBe("contradicted");
    const mixed = computeFindings(
      branches,
      outcomes((b, _d, s) => 2 + seedNoise(s) + (b === "mid-code" ? [0.1, -0.1, 0.02][s - 1] : 0)),
      [],
    );
    expect(byKind(mixed, "midtrain-vs-baseline").verdict).toBe("inconclusive");
  });

  it("midtraining vs CPT in-domain and in forgetting are separate findings with their own data", () => {
    const fs = computeFindings(
      branches,
      outcomes(
        (b, _d, s) => 2 + seedNoise(s) + (b === "cpt-code" ? 0.05 + 0.01 * s : 0),
        (b, s) => 4 + seedNoise(s) - (b === "cpt-code" ? 0.2 + 0.01 * s : 0), // CPT forgets LESS here
      ),
      [],
    );
    expect(byKind(fs, "midtrain-vs-cpt").verdict).toBe("reproduced");
    expect(byKind(fs, "forgetting-vs-cpt").verdict).toBe("contradicted");
    expect(byKind(fs, "forgetting-vs-cpt").interval!.estimate).toBeCloseTo(-0.22, 10);
  });

  it("domain specificity compares the matched domain's gain with the other domains'", () => {
    const specific = computeFindings(
      branches,
      outcomes((b, d, s) => 2 + seedNoise(s) - (b === "mid-code" ? (d === "code" ? 0.2 : 0.01) + 0.01 * s : 0)),
      [],
    );
    expect(byKind(specific, "domain-specificity").verdict).toBe("reproduced");
    const general = computeFindings(
      branches,
      outcomes((b, d, s) => 2 + seedNoise(s) - (b === "mid-code" ? (d === "code" ? 0.01 : 0.2) + 0.01 * s : 0)),
      [],
    );
    expect(byKind(general, "domain-specificity").verdict).toBe("contradicted");
  });

  it("a domain mapping names which SFT domain a source matches", () => {
    const fs = computeFindings(
      branches,
      outcomes((b, d, s) => 2 + seedNoise(s) - (b === "mid-code" && d === "math" ? 0.2 + 0.01 * s : 0)),
      [],
      {},
      { domainSource: { math: "code", code: undefined } },
    );
    expect(byKind(fs, "midtrain-vs-baseline").id).toBe("midtrain-vs-baseline:mid-code:math");
    expect(byKind(fs, "midtrain-vs-baseline").verdict).toBe("reproduced");
  });

  it("with one pretraining seed there is an estimate but no interval, so no finding is claimed", () => {
    const one = outcomes((b) => 2 - (b === "mid-code" ? 0.3 : 0)).filter((o) => o.pretrainSeed === 1);
    const f = byKind(computeFindings(branches, one, []), "midtrain-vs-baseline");
    expect(f.interval!.estimate).toBeCloseTo(0.3, 10);
    expect(f.interval!.lo).toBeNull();
    expect(f.verdict).toBe("inconclusive");
    expect(f.note).toMatch(/2 pretraining seeds/);
  });

  it("timing findings are 'not measured' without a grid and computed from the grid when there is one", () => {
    const none = computeFindings(
      branches,
      outcomes(() => 2),
      [],
    );
    expect(byKind(none, "timing-over-weight").verdict).toBe("not measured");
    expect(byKind(none, "timing-over-weight").note).toMatch(/no ablation grid/);

    const grid: BranchPlan[] = [branches[0]];
    for (const startStep of [20, 50])
      for (const weight of [0.2, 0.8])
        grid.push(branch(`g-${startStep}-${weight}`, "midtrain", { source: "code", weight, startStep, fromGrid: true, inGrid: true }));
    const gridOutcomes = (timing: number, weighting: number): SftOutcome[] =>
      grid.flatMap((b) =>
        [1, 2, 3].map((pretrainSeed) => ({
          branch: b.name,
          domain: "code",
          lr: 0.001,
          seed: 1,
          pretrainSeed,
          sftLoss:
            2 +
            seedNoise(pretrainSeed) +
            (b.startStep === 50 ? timing : 0) +
            (b.weight === 0.8 ? weighting : 0) +
            0.001 * pretrainSeed * (b.startStep === 50 ? 1 : 0),
          generalLoss: 4,
        })),
      );
    const timingWins = computeFindings(grid, gridOutcomes(0.3, 0.05), []);
    expect(byKind(timingWins, "timing-earlier-better").verdict).toBe("reproduced");
    expect(byKind(timingWins, "timing-over-weight").verdict).toBe("reproduced");
    const weightWins = computeFindings(
      grid,
      gridOutcomes(0.05, 0.3).map((o) => ({ ...o, sftLoss: o.sftLoss + (o.branch.endsWith("0.8") ? 0.001 * o.pretrainSeed : 0) })),
      [],
    );
    expect(byKind(weightWins, "timing-over-weight").verdict).toBe("contradicted");
    expect(byKind(weightWins, "timing-earlier-better").verdict).toBe("reproduced");
    const lateBetter = computeFindings(grid, gridOutcomes(-0.3, 0.05), []);
    expect(byKind(lateBetter, "timing-earlier-better").verdict).toBe("contradicted");
  });

  it("proximity vs gain is a correlation over branch × domain points and flips sign with the data", () => {
    const many: BranchPlan[] = [branches[0]];
    for (let i = 0; i < 6; i++) many.push(branch(`m${i}`, "midtrain", { source: i % 2 ? "code" : "math", weight: 0.2, startStep: 30 }));
    const prox: Record<string, Record<string, number>> = {};
    many.slice(1).forEach((b, i) => {
      prox[b.name] = { code: 0.01 * i, math: 0.02 * i + 0.001 };
    });
    const mk = (sign: number) =>
      many.flatMap((b) =>
        ["code", "math"].flatMap((domain) =>
          [1, 2].map((pretrainSeed) => ({
            branch: b.name,
            domain,
            lr: 0.001,
            seed: 1,
            pretrainSeed,
            sftLoss: 2 - (prox[b.name]?.[domain] ?? 0) * sign * 3 + 0.001 * pretrainSeed,
            generalLoss: 4,
          })),
        ),
      );
    const pos = byKind(computeFindings(many, mk(1), [], prox), "proximity-vs-gain");
    expect(pos.interval!.n).toBe(12);
    expect(pos.verdict).toBe("reproduced");
    expect(byKind(computeFindings(many, mk(-1), [], prox), "proximity-vs-gain").verdict).toBe("contradicted");
  });
});

describe("the findings table in the terminal and in report.html", () => {
  it("shows each verdict, estimate and interval, and the reason for what is not measured", () => {
    const fs = computeFindings(
      branches,
      outcomes((b, _d, s) => 2 + seedNoise(s) - (b === "mid-code" ? 0.1 + 0.01 * s : 0)),
      [],
    );
    const text = formatFindingsTable(fs);
    const gain = byKind(fs, "midtrain-vs-baseline").interval!;
    expect(text).toContain(`reproduced    +0.120 [${gain.lo! >= 0 ? "+" : ""}${gain.lo!.toFixed(3)}, +${gain.hi!.toFixed(3)}]`);
    expect(text).toMatch(/not measured .*the config has no ablation grid/);
    expect(text.split("\n")).toHaveLength(3 + fs.length);
    const html = renderReportHtml({ name: "t", createdAt: "2026-01-01T00:00:00Z", backend: "cpu", curves: [], rows: [], findings: fs });
    expect(html).toContain("<h2>Findings</h2>");
    expect(html).toContain('class="left verdict-reproduced">reproduced<');
    expect(html).toContain('class="left verdict-not-measured">not measured<');
    expect(formatFindingsTable([])).toBe("");
  });
});

describe("lrGridWarnings", () => {
  it("warns when the selected LR sits at an edge of the grid, and only then", () => {
    const mk = (lr: number, loss: number, pretrainSeed = 1) => ({ branch: "b", domain: "code", lr, seed: 1, pretrainSeed, sftLoss: loss, generalLoss: 4 });
    const grid = [0.001, 0.003, 0.01];
    expect(lrGridWarnings([mk(0.001, 2.1), mk(0.003, 2.0), mk(0.01, 2.2)], grid)).toEqual([]);
    const top = lrGridWarnings([mk(0.001, 2.1), mk(0.003, 2.0), mk(0.01, 1.9), mk(0.001, 2.1, 2), mk(0.003, 2.0, 2), mk(0.01, 2.2, 2)], grid);
    expect(top).toEqual([expect.stringMatching(/b on code selected the top of the grid \(0\.01\) in 1 of 2 runs/)]);
    expect(lrGridWarnings([mk(0.001, 1.0), mk(0.003, 2.0)], [0.001, 0.003])[0]).toMatch(/bottom of the grid/);
    expect(lrGridWarnings([mk(0.001, 1.0)], [0.001])).toEqual([]);
  });
});
