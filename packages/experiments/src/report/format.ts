import type { SeedStats } from "./types.js";

const ESCAPES: Record<string, string> = { "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" };

/** Escapes text for HTML element content and quoted attribute values. */
export function escapeHtml(s: unknown): string {
  return String(s).replace(/[&<>"']/g, (c) => ESCAPES[c]);
}

const isNum = (x: unknown): x is number => typeof x === "number" && Number.isFinite(x);

/** `x` with `digits` decimals, or an em dash when missing / non-finite. */
export function fmt(x: number | undefined, digits = 3): string {
  return isNum(x) ? x.toFixed(digits) : "—";
}

/** Signed, e.g. `+0.123` / `-0.447`. */
export function fmtSigned(x: number | undefined, digits = 3): string {
  if (!isNum(x)) return "—";
  const s = x.toFixed(digits);
  return x >= 0 && !s.startsWith("-") ? `+${s}` : s;
}

/** Signed percentage of a fraction: `0.0764` → `+7.64%`. */
export function fmtPercent(x: number | undefined, digits = 2): string {
  return isNum(x) ? `${fmtSigned(x * 100, digits)}%` : "—";
}

/** `mean ± std` (std only when n > 1). */
export function fmtStats(s: SeedStats | undefined, digits = 3): string {
  if (!s || !isNum(s.mean)) return "—";
  return s.n > 1 && isNum(s.std) ? `${s.mean.toFixed(digits)} ± ${s.std.toFixed(digits)}` : s.mean.toFixed(digits);
}

/** Token counts and other large numbers with SI suffixes: `1.5M`, `128B`, `900`. */
export function fmtSi(x: number): string {
  const a = Math.abs(x);
  const units: Array<[number, string]> = [
    [1e12, "T"],
    [1e9, "B"],
    [1e6, "M"],
    [1e3, "k"],
  ];
  for (const [v, u] of units) if (a >= v) return `${Number((x / v).toPrecision(3))}${u}`;
  return String(Number(x.toPrecision(3)));
}

/** `754` → `12m 34s`. */
export function fmtDuration(seconds: number | undefined): string {
  if (!isNum(seconds)) return "—";
  const s = Math.round(seconds);
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const r = s % 60;
  return h > 0 ? `${h}h ${m}m ${r}s` : m > 0 ? `${m}m ${r}s` : `${r}s`;
}

/** Learning rate in short scientific notation: `0.0003` → `3e-4`, `0.0015` → `1.5e-3`. */
export function fmtLr(x: number): string {
  if (!isNum(x)) return "—";
  if (x === 0) return "0";
  const [m, e] = x.toExponential(3).split("e");
  return `${Number(m)}e${Number(e)}`;
}

/** Distinct best learning rates, e.g. `3e-4, 1e-3`. */
export function fmtLrs(lrs: number[] | undefined): string {
  if (!lrs || lrs.length === 0) return "—";
  return [...new Set(lrs)].map(fmtLr).join(", ");
}

/** Timing of a branch: `40%` of pretraining, or `step 1200`, or `—`. */
export function fmtStart(row: { startFraction?: number; startStep?: number }): string {
  if (isNum(row.startFraction)) return `${Number((row.startFraction * 100).toPrecision(3))}%`;
  if (isNum(row.startStep)) return `step ${row.startStep}`;
  return "—";
}

export function fmtWeight(w: number | undefined): string {
  return isNum(w) ? `${Number((w * 100).toPrecision(3))}%` : "—";
}
