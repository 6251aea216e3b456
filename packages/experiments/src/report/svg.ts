import { hashString } from "@midtrain/common";
/**
 * A small, dependency-free SVG plotting kit for the report: line charts, scatter plots with
 * error bars and heatmaps, with nice axis ticks, axis labels, legends and hover titles.
 * Pure string building, so it works in Node and in the browser.
 */
import { escapeHtml } from "./format.js";

/** Okabe–Ito palette (colour-blind safe), most distinguishable first; yellow and black last. */
export const PALETTE = ["#0072B2", "#E69F00", "#009E73", "#D55E00", "#CC79A7", "#56B4E9", "#000000", "#F0E442"];
/** Dash patterns to tell series apart within one colour (solid first). */
export const DASHES = ["", "7 4", "2 3", "9 3 2 3", "1 4", "12 5"];
export type MarkerShape = "circle" | "square" | "triangle" | "diamond" | "triangle-down" | "cross";
export const MARKERS: MarkerShape[] = ["circle", "square", "triangle", "diamond", "triangle-down", "cross"];

const FONT = `font-family="system-ui, -apple-system, Segoe UI, Helvetica, Arial, sans-serif"`;
const r2 = (x: number) => Math.round(x * 100) / 100;

export interface Ticks {
  lo: number;
  hi: number;
  step: number;
  values: number[];
  decimals: number;
}

/** "Nice" axis ticks (1, 2, 5 × 10^k) covering [min, max] with about `count` intervals. */
export function niceTicks(min: number, max: number, count = 5): Ticks {
  if (!Number.isFinite(min) || !Number.isFinite(max)) {
    min = 0;
    max = 1;
  }
  if (min > max) [min, max] = [max, min];
  if (max - min < 1e-12 * Math.max(1, Math.abs(max))) {
    const pad = Math.abs(min) > 0 ? Math.abs(min) * 0.05 : 0.5;
    min -= pad;
    max += pad;
  }
  const raw = (max - min) / count;
  const mag = 10 ** Math.floor(Math.log10(raw));
  const norm = raw / mag;
  const step = (norm < 1.5 ? 1 : norm < 3 ? 2 : norm < 7 ? 5 : 10) * mag;
  const lo = Number((Math.floor(min / step + 1e-9) * step).toPrecision(12));
  const hi = Number((Math.ceil(max / step - 1e-9) * step).toPrecision(12));
  const values: number[] = [];
  const n = Math.round((hi - lo) / step);
  for (let i = 0; i <= n; i++) values.push(Number((lo + i * step).toPrecision(12)));
  const decimals = Math.max(0, -Math.floor(Math.log10(step) + 1e-9));
  return { lo, hi, step, values, decimals };
}

export interface LegendItem {
  label: string;
  color?: string;
  dash?: string;
  marker?: MarkerShape;
}

/** SVG path/shape for a marker centred at (x, y). */
export function marker(shape: MarkerShape, x: number, y: number, color: string, size = 5, title?: string): string {
  const t = title ? `<title>${escapeHtml(title)}</title>` : "";
  const s = size;
  const common = `fill="${color}" stroke="#fff" stroke-width="1"`;
  switch (shape) {
    case "circle":
      return `<circle cx="${r2(x)}" cy="${r2(y)}" r="${s}" ${common}>${t}</circle>`;
    case "square":
      return `<rect x="${r2(x - s)}" y="${r2(y - s)}" width="${2 * s}" height="${2 * s}" ${common}>${t}</rect>`;
    case "triangle":
      return `<path d="M${r2(x)},${r2(y - s * 1.2)}L${r2(x + s * 1.1)},${r2(y + s * 0.8)}L${r2(x - s * 1.1)},${r2(y + s * 0.8)}Z" ${common}>${t}</path>`;
    case "triangle-down":
      return `<path d="M${r2(x)},${r2(y + s * 1.2)}L${r2(x + s * 1.1)},${r2(y - s * 0.8)}L${r2(x - s * 1.1)},${r2(y - s * 0.8)}Z" ${common}>${t}</path>`;
    case "diamond":
      return `<path d="M${r2(x)},${r2(y - s * 1.3)}L${r2(x + s * 1.1)},${r2(y)}L${r2(x)},${r2(y + s * 1.3)}L${r2(x - s * 1.1)},${r2(y)}Z" ${common}>${t}</path>`;
    case "cross":
      return `<path d="M${r2(x - s)},${r2(y - s)}L${r2(x + s)},${r2(y + s)}M${r2(x + s)},${r2(y - s)}L${r2(x - s)},${r2(y + s)}" stroke="${color}" stroke-width="2.5" fill="none">${t}</path>`;
  }
}

/** Approximate width of `text` at 12px in a sans-serif font. */
const textWidth = (text: string, px = 12) => [...text].length * px * 0.58;

/** Lays legend items out in rows of at most `width` px; returns the SVG and its height. */
function legend(items: LegendItem[], x0: number, y0: number, width: number): { svg: string; height: number } {
  if (items.length === 0) return { svg: "", height: 0 };
  const rowH = 20;
  let x = x0;
  let y = y0 + 12;
  const parts: string[] = [];
  for (const it of items) {
    const w = 30 + textWidth(it.label) + 16;
    if (x > x0 && x + w > x0 + width) {
      x = x0;
      y += rowH;
    }
    if (it.marker) {
      parts.push(marker(it.marker, x + 11, y - 4, it.color ?? "#444", 5));
    } else {
      const dash = it.dash ? ` stroke-dasharray="${it.dash}"` : "";
      parts.push(`<line x1="${r2(x)}" y1="${r2(y - 4)}" x2="${r2(x + 24)}" y2="${r2(y - 4)}" stroke="${it.color ?? "#444"}" stroke-width="2.5"${dash}/>`);
    }
    parts.push(`<text x="${r2(x + 30)}" y="${r2(y)}" font-size="12" fill="#222">${escapeHtml(it.label)}</text>`);
    x += w;
  }
  return { svg: `<g class="legend">${parts.join("")}</g>`, height: y - y0 + 10 };
}

interface Frame {
  width: number;
  height: number;
  left: number;
  right: number;
  top: number;
  bottom: number;
}

function axes(
  f: Frame,
  xt: Ticks,
  yt: Ticks,
  opts: { title: string; xLabel: string; yLabel: string; xFormat?: (v: number) => string; yFormat?: (v: number) => string },
): { svg: string; sx: (v: number) => number; sy: (v: number) => number } {
  const pw = f.width - f.left - f.right;
  const ph = f.height - f.top - f.bottom;
  const sx = (v: number) => f.left + ((v - xt.lo) / (xt.hi - xt.lo)) * pw;
  const sy = (v: number) => f.top + ph - ((v - yt.lo) / (yt.hi - yt.lo)) * ph;
  const xf = opts.xFormat ?? ((v: number) => v.toFixed(xt.decimals));
  const yf = opts.yFormat ?? ((v: number) => v.toFixed(yt.decimals));
  const p: string[] = [];
  p.push(`<rect x="${f.left}" y="${f.top}" width="${pw}" height="${ph}" fill="#fff" stroke="#999"/>`);
  for (const v of xt.values) {
    const x = r2(sx(v));
    p.push(`<line x1="${x}" y1="${f.top}" x2="${x}" y2="${f.top + ph}" stroke="#e6e6e6"/>`);
    p.push(`<line x1="${x}" y1="${f.top + ph}" x2="${x}" y2="${f.top + ph + 5}" stroke="#666"/>`);
    p.push(`<text x="${x}" y="${f.top + ph + 18}" font-size="11" text-anchor="middle" fill="#333">${escapeHtml(xf(v))}</text>`);
  }
  for (const v of yt.values) {
    const y = r2(sy(v));
    p.push(`<line x1="${f.left}" y1="${y}" x2="${f.left + pw}" y2="${y}" stroke="#e6e6e6"/>`);
    p.push(`<line x1="${f.left - 5}" y1="${y}" x2="${f.left}" y2="${y}" stroke="#666"/>`);
    p.push(`<text x="${f.left - 8}" y="${r2(y + 4)}" font-size="11" text-anchor="end" fill="#333">${escapeHtml(yf(v))}</text>`);
  }
  p.push(`<rect x="${f.left}" y="${f.top}" width="${pw}" height="${ph}" fill="none" stroke="#999"/>`);
  p.push(`<text x="${r2(f.left + pw / 2)}" y="${f.top + ph + 38}" font-size="12" text-anchor="middle" fill="#222">${escapeHtml(opts.xLabel)}</text>`);
  const yx = 16;
  const yy = r2(f.top + ph / 2);
  p.push(`<text x="${yx}" y="${yy}" font-size="12" text-anchor="middle" fill="#222" transform="rotate(-90 ${yx} ${yy})">${escapeHtml(opts.yLabel)}</text>`);
  p.push(`<text x="${f.left}" y="20" font-size="14" font-weight="600" fill="#111">${escapeHtml(opts.title)}</text>`);
  return { svg: p.join(""), sx, sy };
}

function wrapSvg(width: number, height: number, title: string, body: string): string {
  return `<svg class="plot" viewBox="0 0 ${r2(width)} ${r2(height)}" width="${r2(width)}" height="${r2(height)}" role="img" aria-label="${escapeHtml(title)}" ${FONT}><title>${escapeHtml(title)}</title>${body}</svg>`;
}

export interface LineSeries {
  points: Array<[number, number]>;
  color: string;
  dash?: string;
  opacity?: number;
  strokeWidth?: number;
  /** Hover text. */
  title?: string;
}

export interface LineChartSpec {
  title: string;
  xLabel: string;
  yLabel: string;
  series: LineSeries[];
  legend?: LegendItem[];
  xFormat?: (v: number) => string;
  /** Long series are thinned to about this many points (bucket means; first and last kept). Default 600. */
  maxPointsPerSeries?: number;
  width?: number;
  height?: number;
}

/**
 * Thins a series to about `max` points by averaging consecutive buckets, keeping the first and
 * last points exactly, so a 100k-step training curve stays a small SVG path.
 */
export function decimate(points: Array<[number, number]>, max: number): Array<[number, number]> {
  if (points.length <= max || max < 3) return points;
  const inner = points.slice(1, -1);
  const buckets = max - 2;
  const out: Array<[number, number]> = [points[0]];
  for (let b = 0; b < buckets; b++) {
    const lo = Math.floor((b * inner.length) / buckets);
    const hi = Math.floor(((b + 1) * inner.length) / buckets);
    if (hi <= lo) continue;
    let sx = 0;
    let sy = 0;
    for (let i = lo; i < hi; i++) {
      sx += inner[i][0];
      sy += inner[i][1];
    }
    out.push([sx / (hi - lo), sy / (hi - lo)]);
  }
  out.push(points[points.length - 1]);
  return out;
}

/** A line chart; series with a single point are drawn as a dot. */
export function lineChart(spec: LineChartSpec): string {
  const f: Frame = { width: spec.width ?? 600, height: spec.height ?? 330, left: 64, right: 18, top: 32, bottom: 50 };
  const pts = spec.series.flatMap((s) => s.points).filter(([x, y]) => Number.isFinite(x) && Number.isFinite(y));
  const xs = pts.map((p) => p[0]);
  const ys = pts.map((p) => p[1]);
  const xt = niceTicks(Math.min(...xs), Math.max(...xs), 6);
  const yt = niceTicks(Math.min(...ys), Math.max(...ys), 5);
  const { svg: axesSvg, sx, sy } = axes(f, xt, yt, spec);
  const lines = spec.series.map((s) => {
    const p = decimate(
      s.points.filter(([x, y]) => Number.isFinite(x) && Number.isFinite(y)),
      spec.maxPointsPerSeries ?? 600,
    );
    const title = s.title ? `<title>${escapeHtml(s.title)}</title>` : "";
    if (p.length === 1) return marker("circle", sx(p[0][0]), sy(p[0][1]), s.color, 3.5, s.title);
    const d = p.map(([x, y], i) => `${i ? "L" : "M"}${r2(sx(x))},${r2(sy(y))}`).join("");
    const dash = s.dash ? ` stroke-dasharray="${s.dash}"` : "";
    const op = s.opacity !== undefined ? ` stroke-opacity="${s.opacity}"` : "";
    return `<path d="${d}" fill="none" stroke="${s.color}" stroke-width="${s.strokeWidth ?? 1.8}"${dash}${op} stroke-linejoin="round">${title}</path>`;
  });
  const lg = legend(spec.legend ?? [], f.left, f.height - 4, f.width - f.left - f.right);
  const empty = pts.length === 0 ? `<text x="${f.width / 2}" y="${f.height / 2}" text-anchor="middle" font-size="13" fill="#777">no data</text>` : "";
  return wrapSvg(f.width, f.height + lg.height, spec.title, axesSvg + lines.join("") + empty + lg.svg);
}

export interface ScatterPoint {
  x: number;
  y: number;
  xErr?: number;
  yErr?: number;
  color: string;
  marker: MarkerShape;
  title?: string;
}

export interface ScatterSpec {
  title: string;
  xLabel: string;
  yLabel: string;
  points: ScatterPoint[];
  legend?: LegendItem[];
  width?: number;
  height?: number;
}

/** Scatter plot with optional ±error bars in x and y. */
export function scatterChart(spec: ScatterSpec): string {
  const f: Frame = { width: spec.width ?? 460, height: spec.height ?? 340, left: 64, right: 18, top: 32, bottom: 50 };
  const ok = spec.points.filter((p) => Number.isFinite(p.x) && Number.isFinite(p.y));
  const e = (v: number | undefined) => (v !== undefined && Number.isFinite(v) ? Math.abs(v) : 0);
  const xs = ok.flatMap((p) => [p.x - e(p.xErr), p.x + e(p.xErr)]);
  const ys = ok.flatMap((p) => [p.y - e(p.yErr), p.y + e(p.yErr)]);
  const xt = niceTicks(Math.min(...xs), Math.max(...xs), 4);
  const yt = niceTicks(Math.min(...ys), Math.max(...ys), 5);
  const { svg: axesSvg, sx, sy } = axes(f, xt, yt, spec);
  const parts: string[] = [];
  for (const p of ok) {
    const x = sx(p.x);
    const y = sy(p.y);
    const cap = 4;
    if (e(p.xErr) > 0) {
      const x1 = r2(sx(p.x - e(p.xErr)));
      const x2 = r2(sx(p.x + e(p.xErr)));
      parts.push(
        `<path d="M${x1},${r2(y)}H${x2}M${x1},${r2(y - cap)}V${r2(y + cap)}M${x2},${r2(y - cap)}V${r2(y + cap)}" stroke="${p.color}" stroke-width="1.4" fill="none"/>`,
      );
    }
    if (e(p.yErr) > 0) {
      const y1 = r2(sy(p.y - e(p.yErr)));
      const y2 = r2(sy(p.y + e(p.yErr)));
      parts.push(
        `<path d="M${r2(x)},${y1}V${y2}M${r2(x - cap)},${y1}H${r2(x + cap)}M${r2(x - cap)},${y2}H${r2(x + cap)}" stroke="${p.color}" stroke-width="1.4" fill="none"/>`,
      );
    }
  }
  for (const p of ok) parts.push(marker(p.marker, sx(p.x), sy(p.y), p.color, 6, p.title));
  const lg = legend(spec.legend ?? [], f.left, f.height - 4, f.width - f.left - f.right);
  return wrapSvg(f.width, f.height + lg.height, spec.title, axesSvg + parts.join("") + lg.svg);
}

/** Viridis colour map (perceptually uniform, colour-blind safe), t in [0, 1]. */
export function viridis(t: number): string {
  const stops = [
    [68, 1, 84],
    [59, 82, 139],
    [33, 145, 140],
    [94, 201, 98],
    [253, 231, 37],
  ];
  const u = Math.min(1, Math.max(0, Number.isFinite(t) ? t : 0)) * (stops.length - 1);
  const i = Math.min(stops.length - 2, Math.floor(u));
  const f = u - i;
  const c = stops[i].map((v, k) => Math.round(v + f * (stops[i + 1][k] - v)));
  return `#${c.map((v) => v.toString(16).padStart(2, "0")).join("")}`;
}

function textOn(hex: string): string {
  const [r, g, b] = [1, 3, 5].map((i) => Number.parseInt(hex.slice(i, i + 2), 16) / 255);
  return 0.2126 * r + 0.7152 * g + 0.0722 * b > 0.5 ? "#111" : "#fff";
}

export interface HeatmapSpec {
  title: string;
  xLabel: string;
  yLabel: string;
  xLabels: string[];
  yLabels: string[];
  /** values[row][col]; row i is yLabels[i] (drawn top to bottom). Missing cells are grey. */
  values: Array<Array<number | undefined>>;
  /** Text drawn in each cell (defaults to the value with 3 decimals). */
  cellText?: Array<Array<string | undefined>>;
  /** Colour-bar caption, e.g. "SFT loss (nats), lower is better". */
  colorLabel: string;
}

/** Heatmap with value labels in the cells and a colour bar. */
export function heatmap(spec: HeatmapSpec): string {
  const cellW = 92;
  const cellH = 40;
  const left = 110;
  const top = 40;
  const cols = spec.xLabels.length;
  const rows = spec.yLabels.length;
  const vals = spec.values.flat().filter((v): v is number => v !== undefined && Number.isFinite(v));
  const lo = Math.min(...vals);
  const hi = Math.max(...vals);
  const norm = (v: number) => (hi > lo ? (v - lo) / (hi - lo) : 0.5);
  const p: string[] = [];
  p.push(`<text x="${left}" y="20" font-size="14" font-weight="600" fill="#111">${escapeHtml(spec.title)}</text>`);
  for (let i = 0; i < rows; i++) {
    for (let j = 0; j < cols; j++) {
      const v = spec.values[i]?.[j];
      const x = left + j * cellW;
      const y = top + i * cellH;
      const has = v !== undefined && Number.isFinite(v);
      const fill = has ? viridis(norm(v)) : "#d9d9d9";
      const text = spec.cellText?.[i]?.[j] ?? (has ? v.toFixed(3) : "—");
      const tip = `${spec.yLabel} ${spec.yLabels[i]}, ${spec.xLabel} ${spec.xLabels[j]}: ${text}`;
      p.push(
        `<rect x="${x}" y="${y}" width="${cellW}" height="${cellH}" fill="${fill}" stroke="#fff" stroke-width="2"><title>${escapeHtml(tip)}</title></rect>`,
      );
      p.push(
        `<text x="${x + cellW / 2}" y="${y + cellH / 2 + 4}" font-size="12" text-anchor="middle" fill="${has ? textOn(fill) : "#333"}">${escapeHtml(text)}</text>`,
      );
    }
  }
  for (let j = 0; j < cols; j++) {
    p.push(
      `<text x="${left + j * cellW + cellW / 2}" y="${top + rows * cellH + 16}" font-size="11" text-anchor="middle" fill="#333">${escapeHtml(spec.xLabels[j])}</text>`,
    );
  }
  for (let i = 0; i < rows; i++) {
    p.push(`<text x="${left - 8}" y="${top + i * cellH + cellH / 2 + 4}" font-size="11" text-anchor="end" fill="#333">${escapeHtml(spec.yLabels[i])}</text>`);
  }
  const gridBottom = top + rows * cellH;
  p.push(`<text x="${left + (cols * cellW) / 2}" y="${gridBottom + 36}" font-size="12" text-anchor="middle" fill="#222">${escapeHtml(spec.xLabel)}</text>`);
  const yy = top + (rows * cellH) / 2;
  p.push(`<text x="16" y="${yy}" font-size="12" text-anchor="middle" fill="#222" transform="rotate(-90 16 ${yy})">${escapeHtml(spec.yLabel)}</text>`);
  // Colour bar.
  const barX = left + cols * cellW + 24;
  const barH = Math.max(80, rows * cellH);
  const grad = `hm${hashString(spec.title + spec.colorLabel).toString(36)}`;
  const stops = [0, 0.25, 0.5, 0.75, 1].map((t) => `<stop offset="${t}" stop-color="${viridis(1 - t)}"/>`).join("");
  p.push(`<defs><linearGradient id="${grad}" x1="0" y1="0" x2="0" y2="1">${stops}</linearGradient></defs>`);
  p.push(`<rect x="${barX}" y="${top}" width="14" height="${barH}" fill="url(#${grad})" stroke="#999"/>`);
  if (vals.length > 0) {
    p.push(`<text x="${barX + 20}" y="${top + 10}" font-size="11" fill="#333">${escapeHtml(hi.toFixed(3))}</text>`);
    p.push(`<text x="${barX + 20}" y="${top + barH}" font-size="11" fill="#333">${escapeHtml(lo.toFixed(3))}</text>`);
  }
  p.push(
    `<text x="${left + (cols * cellW) / 2}" y="${gridBottom + 54}" font-size="11" text-anchor="middle" fill="#555">colour: ${escapeHtml(spec.colorLabel)}</text>`,
  );
  const width = Math.max(barX + 70, left + textWidth(spec.title, 14) + 10, left + (cols * cellW) / 2 + textWidth(`colour: ${spec.colorLabel}`, 11) / 2 + 10);
  const height = Math.max(gridBottom + 64, top + barH + 10);
  return wrapSvg(width, height, spec.title, p.join(""));
}
