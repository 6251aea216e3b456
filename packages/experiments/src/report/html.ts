import { pearson } from "@midtrain/metrics";
import { escapeHtml, fmt, fmtDuration, fmtSi, fmtStart, fmtStats, fmtWeight } from "./format.js";
import { DASHES, type LegendItem, type LineSeries, MARKERS, type MarkerShape, PALETTE, type ScatterPoint, heatmap, lineChart, scatterChart } from "./svg.js";
import { findingsCaption, fmtFindingEstimate, groupedRows, incompleteWarning, visibleColumns } from "./table.js";
import type { BranchKind, Curve, ExperimentResults, Phase, ResultRow } from "./types.js";

const PHASE_TITLES: Record<Phase, string> = {
  pretrain: "Pretraining",
  branch: "Branches (midtraining / continued pretraining)",
  sft: "Supervised fine-tuning",
};
const KIND_MARKER: Record<BranchKind, MarkerShape> = { baseline: "circle", midtrain: "square", cpt: "triangle" };

/** Legend entries: one per branch, in its colour, with its kind's marker. */
function kindLegend(rows: readonly ResultRow[], colors: Map<string, string>): LegendItem[] {
  return uniq(rows.map((r) => `${r.branch}\u0000${r.kind}`)).map((k) => {
    const [b, kind] = k.split("\u0000");
    return { label: b, color: colors.get(b), marker: KIND_MARKER[kind as BranchKind] ?? MARKERS[0] };
  });
}

/** The note shown when no group of rows varies both start and weight. */
export const NO_GRID_NOTE = "no ablation grid in this run";

const PRETRAIN_COLOR = "#444444";

/** Stable branch → colour map: branches in order of first appearance in rows, then curves. */
function branchColors(results: ExperimentResults): Map<string, string> {
  const m = new Map<string, string>();
  const branches = [...results.rows.map((r) => r.branch), ...results.curves.filter((c) => c.phase !== "pretrain").map((c) => c.branch)];
  for (const b of branches) if (!m.has(b)) m.set(b, PALETTE[m.size % PALETTE.length]);
  // The shared pretraining trunk is drawn in neutral dark grey unless it is also a branch.
  for (const c of results.curves) if (!m.has(c.branch)) m.set(c.branch, PRETRAIN_COLOR);
  return m;
}

const finite = (x: unknown): x is number => typeof x === "number" && Number.isFinite(x);
const uniq = <T>(xs: T[]) => [...new Set(xs)];

function curvePanels(results: ExperimentResults, colors: Map<string, string>): string {
  if (results.curves.length === 0) return `<p class="note">No loss curves were recorded in this run.</p>`;
  // SFT curves: keep only each branch × domain's best learning rates when the rows name them.
  const bestLrs = new Map<string, Set<number>>();
  for (const r of results.rows) if (r.bestLr?.length) bestLrs.set(`${r.branch}\u0000${r.sftDomain}`, new Set(r.bestLr));
  let filtered = false;
  const curves = results.curves.filter((c) => {
    if (c.phase !== "sft" || c.lr === undefined) return true;
    const best = bestLrs.get(`${c.branch}\u0000${c.sftDomain ?? ""}`);
    const keep = !best || best.has(c.lr);
    if (!keep) filtered = true;
    return keep;
  });
  const panels: Array<{ title: string; curves: Curve[] }> = [];
  for (const phase of ["pretrain", "branch", "sft"] as Phase[]) {
    const cs = curves.filter((c) => c.phase === phase);
    if (cs.length === 0) continue;
    if (phase === "sft") {
      for (const d of uniq(cs.map((c) => c.sftDomain ?? ""))) {
        panels.push({ title: `${PHASE_TITLES.sft}${d ? ` — ${d}` : ""}`, curves: cs.filter((c) => (c.sftDomain ?? "") === d) });
      }
    } else panels.push({ title: PHASE_TITLES[phase], curves: cs });
  }
  const svgs = panels.map(({ title, curves: cs }) => {
    const useTokens = cs.some((c) => c.points.some((p) => finite(p.tokens) && p.tokens > 0));
    const xOf = (p: { step: number; tokens: number }) => (useTokens ? p.tokens : p.step);
    const valNames = uniq(cs.flatMap((c) => c.points.flatMap((p) => Object.keys(p.valLoss ?? {})))).sort();
    const hasTrain = cs.some((c) => c.points.some((p) => finite(p.trainLoss)));
    const keys = [...(hasTrain ? ["train"] : []), ...valNames.map((n) => `val: ${n}`)];
    const dashOf = new Map(keys.map((k, i) => [k, DASHES[i % DASHES.length]]));
    const perBranch = new Map<string, number>();
    for (const c of cs) perBranch.set(c.branch, (perBranch.get(c.branch) ?? 0) + 1);
    const series: LineSeries[] = [];
    for (const c of cs) {
      const many = (perBranch.get(c.branch) ?? 1) > 1;
      const tag = [c.branch, c.sftDomain, c.seed !== undefined ? `seed ${c.seed}` : "", c.lr !== undefined ? `lr ${c.lr}` : ""].filter(Boolean).join(" · ");
      const color = colors.get(c.branch) ?? "#444";
      if (hasTrain) {
        series.push({
          points: c.points.filter((p) => finite(p.trainLoss)).map((p) => [xOf(p), p.trainLoss!] as [number, number]),
          color,
          dash: dashOf.get("train"),
          opacity: many ? 0.6 : 0.95,
          strokeWidth: many ? 1.3 : 1.8,
          title: `${tag} · train`,
        });
      }
      for (const n of valNames) {
        series.push({
          points: c.points.filter((p) => finite(p.valLoss?.[n])).map((p) => [xOf(p), p.valLoss![n]] as [number, number]),
          color,
          dash: dashOf.get(`val: ${n}`),
          opacity: many ? 0.7 : 1,
          strokeWidth: 2,
          title: `${tag} · val ${n}`,
        });
      }
    }
    const legend: LegendItem[] = [
      ...uniq(cs.map((c) => c.branch)).map((b) => ({ label: b, color: colors.get(b) })),
      ...keys.map((k) => ({ label: k, color: "#555", dash: dashOf.get(k) })),
    ];
    return lineChart({
      title,
      xLabel: useTokens ? "tokens seen" : "step",
      yLabel: "loss (nats)",
      series: series.filter((s) => s.points.length > 0),
      legend,
      xFormat: useTokens ? fmtSi : undefined,
    });
  });
  const note = filtered ? `<p class="note">SFT curves are shown at each branch's best learning rate(s).</p>` : "";
  return `${note}<div class="plots">${svgs.map((s) => `<figure>${s}</figure>`).join("")}</div>`;
}

function scatterPanels(results: ExperimentResults, colors: Map<string, string>): string {
  if (results.rows.length === 0) return `<p class="note">No result rows.</p>`;
  const domains = uniq(results.rows.map((r) => r.sftDomain));
  const svgs = domains.map((d) => {
    const rows = results.rows.filter((r) => r.sftDomain === d);
    const points: ScatterPoint[] = rows.map((r) => ({
      x: r.generalLossAfterSft.mean,
      y: r.sftLoss.mean,
      xErr: r.generalLossAfterSft.n > 1 ? r.generalLossAfterSft.std : undefined,
      yErr: r.sftLoss.n > 1 ? r.sftLoss.std : undefined,
      color: colors.get(r.branch) ?? "#444",
      marker: KIND_MARKER[r.kind] ?? MARKERS[0],
      title: `${r.branch} (${r.kind}) on ${d}: SFT loss ${fmtStats(r.sftLoss)}, general loss after SFT ${fmtStats(r.generalLossAfterSft)}, n = ${r.sftLoss.n}`,
    }));
    const legend = kindLegend(rows, colors);
    return scatterChart({
      title: `SFT on ${d}`,
      xLabel: "general loss after SFT (nats) → more forgetting",
      yLabel: "in-domain SFT loss (nats)",
      points,
      legend,
    });
  });
  return `<p class="caption">One point per branch; lower-left is better (lower in-domain loss, less forgetting). Error bars: ±1 sample standard deviation over seeds. Markers: ● baseline, ■ midtraining, ▲ continued pretraining.</p><div class="plots">${svgs.map((s) => `<figure>${s}</figure>`).join("")}</div>`;
}

/** Groups of rows (same SFT domain and specialized source) that vary both start and weight. */
export function ablationGrids(rows: readonly ResultRow[]): Array<{ sftDomain: string; specialized: string; rows: ResultRow[] }> {
  const groups = new Map<string, ResultRow[]>();
  for (const r of rows) {
    if (r.kind !== "midtrain" || !finite(r.startFraction) || !finite(r.weight)) continue;
    const k = `${r.sftDomain}\u0000${r.specialized ?? ""}`;
    groups.set(k, [...(groups.get(k) ?? []), r]);
  }
  return [...groups]
    .filter(([, rs]) => uniq(rs.map((r) => r.startFraction)).length > 1 && uniq(rs.map((r) => r.weight)).length > 1)
    .map(([k, rs]) => {
      const [sftDomain, specialized] = k.split("\u0000");
      return { sftDomain, specialized, rows: rs };
    });
}

function heatmapPanels(results: ExperimentResults): string {
  const grids = ablationGrids(results.rows);
  if (grids.length === 0) return `<p class="note">${NO_GRID_NOTE}.</p>`;
  const out: string[] = [];
  for (const g of grids) {
    const weights = uniq(g.rows.map((r) => r.weight!)).sort((a, b) => a - b);
    const starts = uniq(g.rows.map((r) => r.startFraction!)).sort((a, b) => a - b);
    const cell = (pick: (r: ResultRow) => { mean: number; std: number; n: number }) => {
      const values = starts.map((s) => weights.map((w) => g.rows.find((r) => r.startFraction === s && r.weight === w)));
      return {
        values: values.map((row) => row.map((r) => (r && finite(pick(r).mean) ? pick(r).mean : undefined))),
        cellText: values.map((row) =>
          row.map((r) => {
            if (!r) return undefined;
            const st = pick(r);
            return st.n > 1 && finite(st.std) ? `${fmt(st.mean)} ±${fmt(st.std)}` : fmt(st.mean);
          }),
        ),
      };
    };
    const common = {
      xLabel: `${g.specialized || "specialized"} weight`,
      yLabel: "start (of pretraining)",
      xLabels: weights.map(fmtWeight),
      yLabels: starts.map((s) => fmtStart({ startFraction: s })),
    };
    out.push(
      heatmap({
        ...common,
        title: `SFT loss on ${g.sftDomain} — ${g.specialized || "midtraining"} timing × weight`,
        ...cell((r) => r.sftLoss),
        colorLabel: "SFT loss (nats), lower is better",
      }),
      heatmap({
        ...common,
        title: `General loss after SFT on ${g.sftDomain} — timing × weight`,
        ...cell((r) => r.generalLossAfterSft),
        colorLabel: "general loss (nats), lower = less forgetting",
      }),
    );
  }
  return `<div class="plots">${out.map((s) => `<figure>${s}</figure>`).join("")}</div>`;
}

function proximityPanel(results: ExperimentResults, colors: Map<string, string>): string {
  const rows = results.rows.filter((r) => finite(r.proximityAdvantage) && finite(r.relImprovement));
  if (rows.length < 3) return "";
  let r: string;
  try {
    const v = pearson(
      rows.map((x) => x.proximityAdvantage!),
      rows.map((x) => x.relImprovement!),
    );
    r = `Pearson r = ${v.toFixed(2)} over ${rows.length} branch × domain rows.`;
  } catch {
    r = "Correlation undefined: one of the two is constant across rows.";
  }
  const svg = scatterChart({
    title: "Proximity advantage vs relative improvement",
    xLabel: "proximity advantage d(general, SFT) − d(mid, SFT)",
    yLabel: "relative improvement of SFT loss",
    width: 560,
    points: rows.map((x) => ({
      x: x.proximityAdvantage!,
      y: x.relImprovement!,
      color: colors.get(x.branch) ?? "#444",
      marker: KIND_MARKER[x.kind] ?? MARKERS[0],
      title: `${x.branch} on ${x.sftDomain}: PA ${x.proximityAdvantage!.toFixed(4)}, improvement ${(x.relImprovement! * 100).toFixed(2)}%`,
    })),
    legend: kindLegend(rows, colors),
  });
  return `<h2>Proximity advantage</h2><p class="caption">${escapeHtml(r)} Proximity advantage = d(general, SFT) − d(mid, SFT) with the token-unigram distance; positive = the branch's training data is closer to the SFT data.</p><div class="plots"><figure>${svg}</figure></div>`;
}

function findingsTable(results: ExperimentResults): string {
  const fs = results.findings;
  if (!fs?.length) return "";
  const body = fs
    .map((f) => {
      const note = f.note ? `<br><span class="note">${escapeHtml(f.note)}</span>` : "";
      return `<tr><td class="left verdict-${f.verdict.replace(/ /g, "-")}">${escapeHtml(f.verdict)}</td><td class="right">${escapeHtml(fmtFindingEstimate(f))}</td><td class="right">${f.interval ? f.interval.n : "—"}</td><td class="left">${escapeHtml(f.claim)}${note}<br><span class="note">${escapeHtml(f.metric)}. Paper: ${escapeHtml(f.paper)}</span></td></tr>`;
    })
    .join("");
  return `<h2>Findings</h2><p class="caption">${escapeHtml(findingsCaption(fs))}</p><table><tr><th class="left">Verdict</th><th class="right">Estimate [interval]</th><th class="right">n</th><th class="left">Finding</th></tr>${body}</table>`;
}

/** Mean per layer over the entries of one group. */
function meanPerLayer(groups: Map<string, number[][]>): Array<[string, number[]]> {
  return [...groups].map(([label, runs]) => [label, runs[0].map((_, l) => runs.reduce((acc, r) => acc + r[l], 0) / runs.length)]);
}

function ckaSection(results: ExperimentResults): string {
  const cka = results.cka;
  if (!cka) return "";
  const groups = new Map<string, number[][]>();
  const add = (label: string, perLayer: number[]) => groups.set(label, [...(groups.get(label) ?? []), perLayer]);
  for (const e of cka.branchVsBaseline) add(`${e.branch} vs baseline, before SFT`, e.perLayer);
  for (const e of cka.sftVsStart) add(`${e.branch}, after vs before ${e.sftDomain} SFT`, e.perLayer);
  const rows = meanPerLayer(groups);
  if (!rows.length) return "";
  const nLayers = Math.max(...rows.map(([, v]) => v.length));
  const head = `<tr><th class="left">Models compared</th>${Array.from({ length: nLayers }, (_, l) => `<th class="right">${l === 0 ? "embed" : `block ${l}`}</th>`).join("")}<th class="right">n</th></tr>`;
  const body = rows
    .map(
      ([label, v]) =>
        `<tr><td class="left">${escapeHtml(label)}</td>${v.map((x) => `<td class="right">${x.toFixed(3)}</td>`).join("")}<td class="right">${groups.get(label)!.length}</td></tr>`,
    )
    .join("");
  return `<h2>Representation similarity (linear CKA)</h2><p class="caption">Linear CKA per layer on a fixed batch of general validation sequences (1 = the same representation up to rotation and scale), mean over pretraining seeds (SFT: over the runs the LR protocol selected).</p><table>${head}${body}</table>`;
}

function resultsTable(rows: readonly ResultRow[]): string {
  if (rows.length === 0) return `<p class="note">No result rows.</p>`;
  const sorted = groupedRows(rows);
  const cols = visibleColumns(sorted);
  // Bold the best (lowest) mean per domain for the two loss columns.
  const best = new Map<string, { sft: number; general: number }>();
  for (const r of sorted) {
    const b = best.get(r.sftDomain) ?? { sft: Number.POSITIVE_INFINITY, general: Number.POSITIVE_INFINITY };
    best.set(r.sftDomain, {
      sft: finite(r.sftLoss.mean) ? Math.min(b.sft, r.sftLoss.mean) : b.sft,
      general: finite(r.generalLossAfterSft.mean) ? Math.min(b.general, r.generalLossAfterSft.mean) : b.general,
    });
  }
  const head = `<tr>${cols.map((c) => `<th class="${c.align}">${escapeHtml(c.header)}</th>`).join("")}</tr>`;
  let prev: string | undefined;
  const body = sorted
    .map((r) => {
      const first = prev !== undefined && prev !== r.sftDomain ? ` class="group"` : "";
      prev = r.sftDomain;
      const b = best.get(r.sftDomain)!;
      const tds = cols.map((c) => {
        const v = escapeHtml(c.value(r));
        const bold = (c.key === "sftLoss" && r.sftLoss.mean === b.sft) || (c.key === "generalAfter" && r.generalLossAfterSft.mean === b.general);
        return `<td class="${c.align}">${bold ? `<strong>${v}</strong>` : v}</td>`;
      });
      return `<tr${first}>${tds.join("")}</tr>`;
    })
    .join("");
  return `<table><thead>${head}</thead><tbody>${body}</tbody></table>
<p class="caption">Losses in nats, mean ± sample standard deviation over seeds; bold = lowest per SFT domain. Relative improvement = (L_base − L) / L_base of the SFT loss (positive = better than the general-only baseline). Forgetting = general loss after SFT minus the baseline's (positive = more forgetting).</p>`;
}

const CSS = `
body{font-family:system-ui,-apple-system,"Segoe UI",Helvetica,Arial,sans-serif;color:#1a1a1a;margin:0;background:#fafafa}
main{max-width:1320px;margin:0 auto;padding:24px 32px 48px}
h1{font-size:24px;margin:0 0 4px}h2{font-size:18px;margin:32px 0 8px;border-bottom:1px solid #ddd;padding-bottom:4px}
dl.info{display:grid;grid-template-columns:max-content 1fr;gap:2px 16px;font-size:14px;margin:12px 0}
dl.info dt{color:#555}dl.info dd{margin:0}
table{border-collapse:collapse;font-size:13px;background:#fff;margin:8px 0}
th,td{padding:4px 10px;border-bottom:1px solid #e4e4e4;white-space:nowrap}
th{background:#f0f0f0;font-weight:600}td.right,th.right{text-align:right;font-variant-numeric:tabular-nums}
td.left,th.left{text-align:left}tr.group td{border-top:2px solid #bbb}
.plots{display:flex;flex-wrap:wrap;gap:16px}figure{margin:0;background:#fff;border:1px solid #e4e4e4;padding:8px}
svg.plot{max-width:100%;height:auto}.note{color:#666;font-style:italic}.verdict-reproduced{color:#1a7f37;font-weight:600}.verdict-contradicted{color:#b42318;font-weight:600}.caption{color:#555;font-size:13px;max-width:1000px}
ul.notes{font-size:14px}p.partial{background:#fff3cd;border:1px solid #e0b400;padding:8px 12px}footer{margin-top:40px;color:#888;font-size:12px}
`;

/**
 * Renders the experiment report as ONE self-contained HTML document (inline CSS and SVG, no
 * scripts, no external resources): run information, the results table, loss curves per phase,
 * in-domain SFT loss vs general loss after SFT per domain, timing × weight heatmaps, and
 * proximity advantage vs improvement when available. Pure: safe to call in a browser.
 */
export function renderReportHtml(results: ExperimentResults): string {
  const colors = branchColors(results);
  const info: Array<[string, string]> = [
    ["Created", results.createdAt],
    ["Backend", results.backend],
  ];
  if (results.device) info.push(["Device", results.device]);
  if (results.wallSeconds !== undefined) info.push(["Wall time", fmtDuration(results.wallSeconds)]);
  const branches = uniq([...results.rows.map((r) => r.branch), ...results.curves.filter((c) => c.phase !== "pretrain").map((c) => c.branch)]);
  info.push(["Branches", branches.join(", ") || "—"]);
  info.push(["SFT domains", uniq(results.rows.map((r) => r.sftDomain)).join(", ") || "—"]);
  const warning = incompleteWarning(results);
  const partial = warning ? `<p class="partial"><strong>${escapeHtml(warning)}</strong></p>` : "";
  const notes = results.notes?.length ? `<ul class="notes">${results.notes.map((n) => `<li>${escapeHtml(n)}</li>`).join("")}</ul>` : "";
  return `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${escapeHtml(results.name)} — midtrain report</title>
<style>${CSS}</style>
</head>
<body>
<main>
<h1>${escapeHtml(results.name)}</h1>
<dl class="info">${info.map(([k, v]) => `<dt>${escapeHtml(k)}</dt><dd>${escapeHtml(v)}</dd>`).join("")}</dl>
${partial}
${notes}
${findingsTable(results)}
<h2>Results</h2>
${resultsTable(results.rows)}
<h2>Loss curves</h2>
${curvePanels(results, colors)}
<h2>In-domain loss vs forgetting</h2>
${scatterPanels(results, colors)}
<h2>Timing × weight</h2>
${heatmapPanels(results)}
${proximityPanel(results, colors)}
${ckaSection(results)}
<footer>Generated by @midtrain/experiments. Self-contained: no scripts, no external resources.</footer>
</main>
</body>
</html>
`;
}
