import type { Curve, ExperimentResults, ResultRow, SeedStats } from "../../src/report/types.js";

function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s * 1664525 + 1013904223) >>> 0;
    return s / 4294967296;
  };
}

function stats(values: number[]): SeedStats {
  const n = values.length;
  const mean = values.reduce((a, b) => a + b, 0) / n;
  const std = n > 1 ? Math.sqrt(values.reduce((a, b) => a + (b - mean) ** 2, 0) / (n - 1)) : 0;
  return { mean, std, n, values };
}

function curve(
  id: string,
  phase: Curve["phase"],
  branch: string,
  from: number,
  steps: number,
  start: number,
  end: number,
  r: () => number,
  extra: Partial<Curve> = {},
  val: string[] = ["general"],
): Curve {
  const points = Array.from({ length: steps + 1 }, (_, i) => {
    const t = i / steps;
    const base = end + (start - end) * Math.exp(-4 * t);
    return {
      step: from + i * 10,
      tokens: (from + i * 10) * 4096,
      trainLoss: base + (r() - 0.5) * 0.08,
      valLoss: i % 2 === 0 ? Object.fromEntries(val.map((v, k) => [v, base + 0.05 + k * 0.3])) : undefined,
    };
  });
  return { id, phase, branch, points, ...extra };
}

/**
 * A synthetic, deterministic results object shaped like a small study: 3 branches (general-only
 * baseline, 20% code midtraining, code continued pretraining) × 2 SFT domains × 3 seeds, with
 * loss curves for every phase. With `grid: true`, 4 more midtraining rows form a 2 × 2
 * timing × weight ablation. Test data for the report tests (not part of the package).
 */
export function sampleResults(options: { grid?: boolean } = {}): ExperimentResults {
  const r = rng(7);
  const branches = [
    { branch: "baseline", kind: "baseline" as const },
    { branch: "mid-code-20", kind: "midtrain" as const, specialized: "code", weight: 0.2, startFraction: 0.6 },
    { branch: "cpt-code", kind: "cpt" as const, specialized: "code", weight: 1, startFraction: 0.6 },
  ];
  const domains = [
    { name: "code", sft: [2.31, 2.13, 2.22], general: [5.25, 5.08, 5.37] },
    { name: "math", sft: [1.16, 1.15, 1.16], general: [5.31, 5.29, 5.33] },
  ];
  const rows: ResultRow[] = [];
  for (const d of domains) {
    branches.forEach((b, i) => {
      const sft = stats([0, 1, 2].map(() => d.sft[i] + (r() - 0.5) * 0.02));
      const gen = stats([0, 1, 2].map(() => d.general[i] + (r() - 0.5) * 0.04));
      rows.push({
        ...b,
        sftDomain: d.name,
        sftLoss: sft,
        generalLossAfterSft: gen,
        generalLossBeforeSft: stats([4.9 + i * 0.05]),
        bestLr: [3e-4, 3e-4, 1e-3],
      });
    });
  }
  for (const row of rows) {
    const base = rows.find((x) => x.kind === "baseline" && x.sftDomain === row.sftDomain)!;
    row.relImprovement = (base.sftLoss.mean - row.sftLoss.mean) / base.sftLoss.mean;
    row.forgettingVsBaseline = row.generalLossAfterSft.mean - base.generalLossAfterSft.mean;
    row.proximityAdvantage = row.kind === "baseline" ? 0 : row.sftDomain === "code" ? 0.04 * (row.weight ?? 0) + 0.01 : 0.002;
  }
  if (options.grid) {
    for (const startFraction of [0.2, 0.6]) {
      for (const weight of [0.1, 0.3]) {
        const sft = stats([0, 1].map(() => 2.2 - weight * 0.3 - startFraction * 0.1 + (r() - 0.5) * 0.01));
        const gen = stats([0, 1].map(() => 5.1 + weight * 0.2 + (r() - 0.5) * 0.02));
        rows.push({
          branch: `mid-code-s${startFraction * 100}-w${weight * 100}`,
          kind: "midtrain",
          specialized: "code",
          weight,
          startFraction,
          sftDomain: "code",
          sftLoss: sft,
          generalLossAfterSft: gen,
        });
      }
    }
  }
  const curves: Curve[] = [curve("pretrain", "pretrain", "pretrain", 0, 40, 10.8, 5.6, r)];
  branches.forEach((b, i) => {
    curves.push(curve(`branch-${b.branch}`, "branch", b.branch, 240, 16, 5.6, 5.2 - i * 0.1, r, {}, ["general", "code"]));
  });
  for (const d of domains) {
    branches.forEach((b, i) => {
      for (const seed of [0, 1]) {
        for (const lr of [3e-4, 1e-4]) {
          curves.push(
            curve(
              `sft-${b.branch}-${d.name}-${seed}-${lr}`,
              "sft",
              b.branch,
              0,
              12,
              d.sft[i] + 1.2,
              d.sft[i],
              r,
              {
                sftDomain: d.name,
                seed,
                lr,
              },
              [d.name],
            ),
          );
        }
      }
    });
  }
  return {
    name: "micro midtraining study (synthetic sample)",
    createdAt: "2026-01-02T03:04:05.000Z",
    backend: "cpu",
    device: "2-core CPU",
    wallSeconds: 754,
    notes: ["Synthetic numbers for rendering tests: not results.", 'Losses in nats; <b>HTML</b> & "quotes" are escaped.'],
    curves,
    rows,
  };
}
