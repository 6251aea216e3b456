import { describe, expect, it } from "vitest";
import { escapeHtml, fmtDuration, fmtLr, fmtPercent, fmtSi, fmtStats } from "../../src/report/format.js";
import { decimate, heatmap, lineChart, niceTicks, scatterChart, viridis } from "../../src/report/svg.js";

describe("niceTicks", () => {
  it("covers the range with 1/2/5 steps", () => {
    expect(niceTicks(0, 1)).toMatchObject({ lo: 0, hi: 1, step: 0.2, decimals: 1 });
    expect(niceTicks(0, 1).values).toEqual([0, 0.2, 0.4, 0.6, 0.8, 1]);
    expect(niceTicks(2.09, 2.31)).toMatchObject({ step: 0.05, lo: 2.05, hi: 2.35, decimals: 2 });
    expect(niceTicks(0, 1.64e6, 6)).toMatchObject({ step: 200_000, hi: 1.8e6 });
  });
  it("handles a zero-width or invalid range", () => {
    const t = niceTicks(5, 5);
    expect(t.lo).toBeLessThan(5);
    expect(t.hi).toBeGreaterThan(5);
    expect(niceTicks(Number.NaN, 3).values.length).toBeGreaterThan(1);
  });
});

describe("formatting", () => {
  it("escapes HTML", () => expect(escapeHtml(`<a href="x">'&'</a>`)).toBe("&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;"));
  it("numbers", () => {
    expect(fmtSi(1_500_000)).toBe("1.5M");
    expect(fmtSi(128e9)).toBe("128B");
    expect(fmtSi(900)).toBe("900");
    expect(fmtLr(0.0003)).toBe("3e-4");
    expect(fmtLr(0.0015)).toBe("1.5e-3");
    expect(fmtPercent(0.0764)).toBe("+7.64%");
    expect(fmtPercent(-0.05)).toBe("-5.00%");
    expect(fmtDuration(3725)).toBe("1h 2m 5s");
    expect(fmtStats({ mean: 2, std: 0.5, n: 3, values: [] })).toBe("2.000 ± 0.500");
    expect(fmtStats({ mean: 2, std: 0, n: 1, values: [] })).toBe("2.000");
    expect(fmtStats({ mean: Number.NaN, std: 0, n: 1, values: [] })).toBe("—");
  });
});

describe("charts", () => {
  it("line chart maps data into the plot frame and skips non-finite points", () => {
    const svg = lineChart({
      title: "t",
      xLabel: "x",
      yLabel: "y",
      series: [
        {
          points: [
            [0, 0],
            [1, Number.NaN],
            [10, 10],
          ],
          color: "#000",
        },
      ],
    });
    // Frame: left 64, right 18 → x from 64 to 582; top 32, bottom 50 → y from 32 to 280.
    expect(svg).toContain('d="M64,280L582,32"');
  });
  it("scatter draws error bars only where std > 0", () => {
    const svg = scatterChart({
      title: "s",
      xLabel: "x",
      yLabel: "y",
      points: [
        { x: 1, y: 1, xErr: 0.1, yErr: 0.2, color: "#111", marker: "circle" },
        { x: 2, y: 2, color: "#222", marker: "square" },
      ],
    });
    expect((svg.match(/stroke="#111" stroke-width="1.4"/g) ?? []).length).toBe(2);
    expect(svg).not.toContain('stroke="#222" stroke-width="1.4"');
  });
  it("heatmap greys out missing cells and uses the viridis ends for min and max", () => {
    const svg = heatmap({
      title: "h",
      xLabel: "w",
      yLabel: "s",
      xLabels: ["a", "b"],
      yLabels: ["c", "d"],
      values: [
        [1, 2],
        [3, undefined],
      ],
      colorLabel: "v",
    });
    expect(svg).toContain(`fill="${viridis(0)}"`);
    expect(svg).toContain(`fill="${viridis(1)}"`);
    expect(svg).toContain('fill="#d9d9d9"');
    expect(viridis(0)).toBe("#440154");
    expect(viridis(1)).toBe("#fde725");
  });
});

describe("decimate", () => {
  it("keeps short series, thins long ones by bucket means, keeps the ends", () => {
    const short: Array<[number, number]> = [
      [0, 1],
      [1, 2],
    ];
    expect(decimate(short, 10)).toBe(short);
    const long = Array.from({ length: 1002 }, (_, i) => [i, i % 2] as [number, number]);
    const d = decimate(long, 12);
    expect(d).toHaveLength(12);
    expect(d[0]).toEqual([0, 0]);
    expect(d[11]).toEqual([1001, 1]);
    // Inner points 1..1000 in 10 buckets of 100: means of x = 50.5, 150.5, ...; y alternates → 0.5.
    expect(d[1]).toEqual([50.5, 0.5]);
    expect(d[10]).toEqual([950.5, 0.5]);
  });
});
