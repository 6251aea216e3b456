import { fmtLrs, fmtPercent, fmtSigned, fmtStart, fmtStats, fmtWeight } from "./format.js";
import type { Finding } from "../findings.js";
import type { ExperimentResults, ResultRow } from "./types.js";

export interface TableColumn {
  key: string;
  header: string;
  align: "left" | "right";
  /** Always shown, even when every row is empty in this column. */
  required?: boolean;
  value(row: ResultRow): string;
}

const mix = (r: ResultRow) => (r.specialized ? `${r.specialized} ${fmtWeight(r.weight)}` : r.kind === "baseline" ? "general only" : "—");

/** Columns of the results table, shared by the terminal table and the HTML report. */
export const TABLE_COLUMNS: readonly TableColumn[] = [
  { key: "sftDomain", header: "SFT", align: "left", required: true, value: (r) => r.sftDomain },
  { key: "branch", header: "Branch", align: "left", required: true, value: (r) => r.branch },
  { key: "kind", header: "Kind", align: "left", required: true, value: (r) => r.kind },
  { key: "mix", header: "Mixture", align: "left", value: mix },
  { key: "start", header: "Start", align: "right", value: fmtStart },
  { key: "sftLoss", header: "SFT loss", align: "right", required: true, value: (r) => fmtStats(r.sftLoss) },
  { key: "sftValLoss", header: "SFT val", align: "right", value: (r) => fmtStats(r.sftValLoss) },
  {
    key: "generalAfter",
    header: "General after SFT",
    align: "right",
    required: true,
    value: (r) => fmtStats(r.generalLossAfterSft),
  },
  {
    key: "generalBefore",
    header: "General before SFT",
    align: "right",
    value: (r) => fmtStats(r.generalLossBeforeSft),
  },
  { key: "relImprovement", header: "Rel. impr.", align: "right", value: (r) => fmtPercent(r.relImprovement) },
  { key: "forgetting", header: "Forgetting", align: "right", value: (r) => fmtSigned(r.forgettingVsBaseline) },
  { key: "pa", header: "PA", align: "right", value: (r) => fmtSigned(r.proximityAdvantage, 4) },
  { key: "n", header: "n", align: "right", required: true, value: (r) => String(r.sftLoss.n) },
  { key: "bestLr", header: "Best LR", align: "right", value: (r) => fmtLrs(r.bestLr) },
];

/** Rows grouped by SFT domain (domains in order of first appearance), stable within a domain. */
export function groupedRows(rows: readonly ResultRow[]): ResultRow[] {
  const order = new Map<string, number>();
  for (const r of rows) if (!order.has(r.sftDomain)) order.set(r.sftDomain, order.size);
  return rows
    .map((r, i) => ({ r, i }))
    .sort((a, b) => order.get(a.r.sftDomain)! - order.get(b.r.sftDomain)! || a.i - b.i)
    .map(({ r }) => r);
}

/** The columns that have at least one value in these rows (plus the required ones). */
export function visibleColumns(rows: readonly ResultRow[]): TableColumn[] {
  return TABLE_COLUMNS.filter((c) => c.required || rows.some((r) => c.value(r) !== "—"));
}

/** Display width in code points (enough for the ASCII, ±, — and % this table uses). */
const width = (s: string) => [...s].length;
const pad = (s: string, w: number, align: "left" | "right") => (align === "left" ? s + " ".repeat(w - width(s)) : " ".repeat(w - width(s)) + s);

/**
 * Fixed-width plain-text results table for the terminal: one line per result row, grouped by
 * SFT domain, losses as `mean ± std` over seeds (nats). Every line has the same width.
 */
export function formatResultsTable(results: Pick<ExperimentResults, "rows" | "missing">): string {
  const warning = incompleteWarning(results);
  const rows = groupedRows(results.rows);
  const cols = visibleColumns(rows);
  const cells = rows.map((r) => cols.map((c) => c.value(r)));
  const widths = cols.map((c, j) => Math.max(width(c.header), ...cells.map((row) => width(row[j]))));
  const line = (vals: string[]) => vals.map((v, j) => pad(v, widths[j], cols[j].align)).join("  ");
  const out = [line(cols.map((c) => c.header)), widths.map((w) => "-".repeat(w)).join("  ")];
  let prev: string | undefined;
  rows.forEach((r, i) => {
    if (prev !== undefined && r.sftDomain !== prev) out.push(" ".repeat(width(out[0])));
    prev = r.sftDomain;
    out.push(line(cells[i]));
  });
  if (rows.length === 0) out.push(pad("(no result rows)", width(out[0]), "left"));
  return warning ? `${warning}\n${out.join("\n")}` : out.join("\n");
}

/** `+0.123 [+0.010, +0.236]` (or without the interval when there is none; `—` when not measured). */
export function fmtFindingEstimate(f: Finding, digits = 3): string {
  const i = f.interval;
  if (!i) return "—";
  const est = fmtSigned(i.estimate, digits);
  return i.lo === null || i.hi === null ? `${est} [no interval]` : `${est} [${fmtSigned(i.lo, digits)}, ${fmtSigned(i.hi, digits)}]`;
}

/** The caption shared by the terminal and HTML findings tables. */
export function findingsCaption(findings: readonly Finding[]): string {
  const conf = findings.find((f) => f.interval)?.interval?.confidence ?? 0.95;
  return `Findings of the paper, measured here: paired over pretraining seeds, ${Math.round(conf * 100)}% intervals (Student-t; Fisher z for the correlation); positive = the paper's direction. Reproduced = the interval excludes zero in that direction.`;
}

/**
 * The findings as a plain-text table: verdict, estimate with its interval, n, and the claim (with
 * the reason when a finding is not measured or has no interval). Empty string without findings.
 */
export function formatFindingsTable(findings: readonly Finding[] | undefined): string {
  if (!findings?.length) return "";
  const cells = findings.map((f) => [f.verdict, fmtFindingEstimate(f), f.interval ? String(f.interval.n) : "—", f.note ? `${f.claim} (${f.note})` : f.claim]);
  const head = ["Verdict", "Estimate [interval]", "n", "Finding"];
  const widths = head.map((h, j) => Math.max(width(h), ...cells.map((c) => width(c[j]))));
  const line = (vals: string[]) =>
    vals
      .map((v, j) => (j === vals.length - 1 ? v : pad(v, widths[j], j === 2 ? "right" : "left")))
      .join("  ")
      .trimEnd();
  return [findingsCaption(findings), line(head), widths.map((w, j) => "-".repeat(j === 3 ? width(head[3]) : w)).join("  "), ...cells.map(line)].join("\n");
}

/** The line that marks partial results (empty when every job finished). */
export function incompleteWarning(results: Pick<ExperimentResults, "missing">): string {
  const m = results.missing ?? [];
  if (!m.length) return "";
  const shown = m.slice(0, 6).join(", ") + (m.length > 6 ? `, … (${m.length - 6} more)` : "");
  return `PARTIAL RESULTS: ${m.length} job(s) have not finished (${shown}); means, best LRs and differences below cover only finished jobs.`;
}

const CSV_HEADER = [
  "branch",
  "kind",
  "specialized",
  "weight",
  "startFraction",
  "startStep",
  "sftDomain",
  "sftLossMean",
  "sftLossStd",
  "sftLossN",
  "generalLossAfterSftMean",
  "generalLossAfterSftStd",
  "generalLossAfterSftN",
  "generalLossBeforeSftMean",
  "generalLossBeforeSftStd",
  "relImprovement",
  "forgettingVsBaseline",
  "proximityAdvantage",
  "bestLr",
] as const;

function csvField(v: unknown): string {
  if (v === undefined || v === null) return "";
  if (typeof v === "number") return Number.isFinite(v) ? String(v) : "";
  const s = String(v);
  return /[",\n\r]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
}

/**
 * Results as CSV (RFC 4180 quoting, `\n` line ends): a header and one line per result row, in
 * input order, numbers at full precision, empty fields for missing values, best LRs joined by `;`.
 */
export function resultsToCsv(results: Pick<ExperimentResults, "rows">): string {
  const lines = [CSV_HEADER.join(",")];
  for (const r of results.rows) {
    const fields: unknown[] = [
      r.branch,
      r.kind,
      r.specialized,
      r.weight,
      r.startFraction,
      r.startStep,
      r.sftDomain,
      r.sftLoss.mean,
      r.sftLoss.std,
      r.sftLoss.n,
      r.generalLossAfterSft.mean,
      r.generalLossAfterSft.std,
      r.generalLossAfterSft.n,
      r.generalLossBeforeSft?.mean,
      r.generalLossBeforeSft?.std,
      r.relImprovement,
      r.forgettingVsBaseline,
      r.proximityAdvantage,
      r.bestLr?.join(";"),
    ];
    lines.push(fields.map(csvField).join(","));
  }
  return `${lines.join("\n")}\n`;
}
