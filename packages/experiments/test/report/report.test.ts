import { describe, expect, it } from "vitest";
import { NO_GRID_NOTE, ablationGrids, renderReportHtml } from "../../src/report/html.js";
import { sampleResults } from "../helpers/sample-results.js";
import { formatResultsTable, resultsToCsv } from "../../src/report/table.js";
import type { ExperimentResults, ResultRow, SeedStats } from "../../src/report/types.js";

const st = (values: number[]): SeedStats => {
  const n = values.length;
  const mean = values.reduce((a, b) => a + b, 0) / n;
  const std = n > 1 ? Math.sqrt(values.reduce((a, b) => a + (b - mean) ** 2, 0) / (n - 1)) : 0;
  return { mean, std, n, values };
};

const BRANCHES = [
  { branch: "general-only", kind: "baseline" as const },
  { branch: "mid<code>&20", kind: "midtrain" as const, specialized: "code", weight: 0.2, startFraction: 0.5 },
  { branch: "cpt-code", kind: "cpt" as const, specialized: "code", weight: 1, startFraction: 0.5 },
];

/** 3 branches × 2 domains, hand-picked numbers (sftLoss means are exactly 2.0, 2.2, ... ). */
function fixture(): ExperimentResults {
  const rows: ResultRow[] = [];
  ["code", "math"].forEach((d, di) => {
    BRANCHES.forEach((b, bi) => {
      const m = 2 + di + bi * 0.1;
      rows.push({
        ...b,
        sftDomain: d,
        sftLoss: st([m - 0.01, m + 0.01]), // mean m, std √2·0.01
        generalLossAfterSft: st([5 + bi * 0.25]),
        relImprovement: bi === 0 ? 0 : -0.05 * bi,
        forgettingVsBaseline: bi * 0.25,
        bestLr: [3e-4, 1e-3],
      });
    });
  });
  const curves: ExperimentResults["curves"] = [
    {
      id: "pre",
      phase: "pretrain",
      branch: "trunk",
      points: [0, 1, 2].map((i) => ({ step: i * 10, tokens: i * 1000, trainLoss: 9 - i, valLoss: { general: 9.1 - i } })),
    },
    ...BRANCHES.map((b) => ({
      id: `br-${b.branch}`,
      phase: "branch" as const,
      branch: b.branch,
      points: [20, 30].map((s) => ({ step: s, tokens: s * 100, trainLoss: 6 - s / 100 })),
    })),
    ...BRANCHES.map((b) => ({
      id: `sft-${b.branch}`,
      phase: "sft" as const,
      branch: b.branch,
      sftDomain: "code",
      seed: 0,
      lr: 3e-4,
      points: [0, 5].map((s) => ({ step: s, tokens: s * 10, trainLoss: 3 - s / 10, valLoss: { code: 3.1 - s / 10 } })),
    })),
  ];
  return {
    name: 'Test <study> & "friends"',
    createdAt: "2026-01-01T00:00:00Z",
    backend: "cpu",
    wallSeconds: 65,
    notes: ["<script>alert(1)</script>"],
    curves,
    rows,
  };
}

describe("renderReportHtml", () => {
  const html = renderReportHtml(fixture());

  it("is one HTML document with every branch name (escaped) and the run info", () => {
    expect(html.startsWith("<!DOCTYPE html>")).toBe(true);
    expect(html).toContain("</html>");
    for (const b of ["general-only", "mid&lt;code&gt;&amp;20", "cpt-code"]) expect(html).toContain(b);
    expect(html).toContain("Test &lt;study&gt; &amp; &quot;friends&quot;");
    expect(html).toContain("1m 5s");
    expect(html).toContain("cpu");
  });

  it("escapes every string: no raw markup from the input survives", () => {
    expect(html).not.toContain("<script");
    expect(html).not.toContain("mid<code>");
    expect(html).toContain("&lt;script&gt;alert(1)&lt;/script&gt;");
  });

  it("has an <svg> per plot: 3 curve panels (pretrain, branch, sft code) + 2 scatter panels", () => {
    const svgs = html.match(/<svg\b/g) ?? [];
    // No PA plot (no proximityAdvantage) and no heatmap (no grid) in this fixture.
    expect(svgs.length).toBe(5);
    expect(html).toContain("Pretraining");
    expect(html).toContain("Supervised fine-tuning — code");
    expect(html).toContain("SFT on code");
    expect(html).toContain("SFT on math");
    expect(html).toContain(NO_GRID_NOTE);
  });

  it("is self-contained: no external URLs, scripts or remote resources", () => {
    expect(html).not.toMatch(/(src|href)\s*=\s*["']?\s*(https?:)?\/\//i);
    expect(html).not.toMatch(/https?:\/\//i);
    expect(html).not.toMatch(/<script|<link|@import|url\(\s*["']?http/i);
  });

  it("plots have axis labels, ticks and legends", () => {
    expect(html).toContain("tokens seen");
    expect(html).toContain("loss (nats)");
    expect(html).toContain("in-domain SFT loss (nats)");
    expect(html).toContain('class="legend"');
    // The pretraining x axis spans 0–2000 tokens: nice ticks 0, 500, ... 2k.
    expect(html).toContain(">2k</text>");
  });

  it("renders a PA plot with the Pearson r when rows carry PA and improvement", () => {
    const res = fixture();
    res.rows.forEach((r, i) => {
      r.proximityAdvantage = i * 0.01;
      r.relImprovement = i * 0.02; // perfectly correlated
    });
    const out = renderReportHtml(res);
    expect(out).toContain("Pearson r = 1.00 over 6");
    expect((out.match(/<svg\b/g) ?? []).length).toBe(6);
  });

  it("survives missing numbers (NaN, or null after a JSON round trip)", () => {
    const res = fixture();
    res.rows[0].sftLoss = { mean: Number.NaN, std: Number.NaN, n: 2, values: [] };
    res.rows[1].generalLossAfterSft = JSON.parse('{"mean":null,"std":null,"n":1,"values":[]}');
    const html = renderReportHtml(res);
    expect(html).toContain("general-only");
    expect(html).not.toContain("NaN");
    expect(formatResultsTable(res)).toContain("—");
    expect(resultsToCsv(res).split("\n")[1]).toContain("general-only,baseline,,,,,code,,,2,");
  });

  it("renders the sample and an empty results object without throwing", () => {
    expect(renderReportHtml(sampleResults({ grid: true }))).toContain("<svg");
    const empty = renderReportHtml({ name: "empty", createdAt: "", backend: "cpu", curves: [], rows: [] });
    expect(empty).toContain("No loss curves");
    expect(empty).toContain(NO_GRID_NOTE);
  });
});

describe("timing × weight heatmap", () => {
  function grid(): ExperimentResults {
    const res = fixture();
    res.rows = [];
    for (const startFraction of [0.25, 0.75]) {
      for (const weight of [0.1, 0.4]) {
        res.rows.push({
          branch: `s${startFraction}-w${weight}`,
          kind: "midtrain",
          specialized: "code",
          weight,
          startFraction,
          sftDomain: "code",
          sftLoss: st([startFraction + weight + 1]),
          generalLossAfterSft: st([5 + weight]),
        });
      }
    }
    return res;
  }

  it("detects a 2 × 2 grid and draws both heatmaps with every cell", () => {
    const res = grid();
    const grids = ablationGrids(res.rows);
    expect(grids).toHaveLength(1);
    expect(grids[0].rows).toHaveLength(4);
    const html = renderReportHtml(res);
    expect(html).not.toContain(NO_GRID_NOTE);
    expect(html).toContain("SFT loss on code — code timing × weight");
    expect(html).toContain("General loss after SFT on code — timing × weight");
    // Cell values: sft = start + weight + 1 → 1.350, 1.650, 1.850, 2.150.
    for (const v of ["1.350", "1.650", "1.850", "2.150"]) expect(html).toContain(`>${v}</text>`);
    // Axis labels of the grid.
    for (const l of [">10%<", ">40%<", ">25%<", ">75%<"]) expect(html).toContain(l);
    // 2 heatmaps (+ 3 curve panels + 1 scatter panel).
    expect((html.match(/<svg\b/g) ?? []).length).toBe(6);
    // 4 cells per heatmap carry hover titles.
    expect((html.match(/start \(of pretraining\) \d+%, code weight \d+%/g) ?? []).length).toBe(8);
  });

  it("needs variation in both start and weight", () => {
    const res = grid();
    res.rows = res.rows.filter((r) => r.startFraction === 0.25); // weight varies, start does not
    expect(ablationGrids(res.rows)).toHaveLength(0);
    expect(renderReportHtml(res)).toContain(NO_GRID_NOTE);
  });
});

describe("resultsToCsv", () => {
  it("has a header and one line per row with the exact numbers", () => {
    const res = fixture();
    const csv = resultsToCsv(res);
    expect(csv.endsWith("\n")).toBe(true);
    const lines = csv.trimEnd().split("\n");
    expect(lines).toHaveLength(1 + res.rows.length);
    const header = lines[0].split(",");
    expect(header.slice(0, 3)).toEqual(["branch", "kind", "specialized"]);
    const col = (name: string) => header.indexOf(name);
    // Row 2 (index 1): "mid<code>&20" on code: sft mean 2.1, std √2·0.01, n 2; general 5.25.
    const f = lines[2].split(",");
    expect(f[col("branch")]).toBe("mid<code>&20");
    expect(f[col("kind")]).toBe("midtrain");
    expect(f[col("weight")]).toBe("0.2");
    expect(f[col("startFraction")]).toBe("0.5");
    expect(f[col("startStep")]).toBe("");
    expect(f[col("sftDomain")]).toBe("code");
    expect(Number(f[col("sftLossMean")])).toBeCloseTo(2.1, 12);
    expect(Number(f[col("sftLossStd")])).toBeCloseTo(Math.SQRT2 * 0.01, 12);
    expect(f[col("sftLossN")]).toBe("2");
    expect(Number(f[col("generalLossAfterSftMean")])).toBeCloseTo(5.25, 12);
    expect(f[col("relImprovement")]).toBe("-0.05");
    expect(f[col("forgettingVsBaseline")]).toBe("0.25");
    expect(f[col("proximityAdvantage")]).toBe("");
    expect(f[col("bestLr")]).toBe("0.0003;0.001");
    // Rows stay in input order.
    expect(lines.slice(1).map((l) => l.split(",")[col("sftDomain")])).toEqual(["code", "code", "code", "math", "math", "math"]);
  });

  it("quotes fields with commas, quotes and newlines", () => {
    const res = fixture();
    res.rows = [res.rows[0]];
    res.rows[0].branch = 'a,"b"\nc';
    const line = resultsToCsv(res).split("\n").slice(1).join("\n");
    expect(line.startsWith('"a,""b""\nc",baseline,')).toBe(true);
  });
});

describe("formatResultsTable", () => {
  const table = formatResultsTable(fixture());
  const lines = table.split("\n");

  it("aligns: every line has the same width, columns start at the same offsets", () => {
    const widths = new Set(lines.map((l) => [...l].length));
    expect(widths.size).toBe(1);
    const header = lines[0];
    const sftCol = header.indexOf("SFT loss");
    const sftEnd = sftCol + "SFT loss".length;
    // Right-aligned numeric column: every value ends where the header ends.
    for (const l of lines.slice(2).filter((x) => x.trim())) {
      expect(l.slice(0, sftEnd).trimEnd().length).toBe(sftEnd);
    }
    expect(lines[1]).toMatch(/^[- ]+$/);
  });

  it("shows mean ± std over seeds and a blank line between SFT domains", () => {
    // mean 2.1, std √2·0.01 = 0.0141 → "2.100 ± 0.014"
    expect(table).toContain("2.100 ± 0.014");
    expect(table).toContain("5.250"); // n = 1: mean only
    expect(table).not.toContain("5.250 ±");
    expect(lines.length).toBe(2 + 6 + 1);
    expect(lines[5].trim()).toBe("");
    expect(table).toContain("-5.00%");
    expect(table).toContain("3e-4, 1e-3");
  });

  it("hides columns with no values and says when there are no rows", () => {
    expect(lines[0]).not.toContain("PA");
    expect(formatResultsTable({ rows: [] })).toContain("(no result rows)");
  });
});
