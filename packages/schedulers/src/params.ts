import { didYouMean, suggest } from "@midtrain/common";
import { ScheduleConfigError } from "./errors.js";
import { Clock, type ResolvedPoint, TIME_UNITS, type TimeUnit, unitLabel } from "./time.js";
import type { ScheduleConfig } from "./types.js";

/** Options for a numeric parameter. */
export interface NumberOptions {
  /** Used when the parameter is absent; without it the parameter is required. */
  default?: number;
  /** Inclusive lower bound. */
  min?: number;
  /** Inclusive upper bound. */
  max?: number;
  /** Exclusive lower bound. */
  above?: number;
  /** Exclusive upper bound. */
  below?: number;
  integer?: boolean;
  /** Extra advice appended to the error message. */
  hint?: string;
}

/** Keys any schedule config may carry besides its parameters. */
export const COMMON_KEYS = ["type", "$comment"] as const;

export function show(v: unknown): string {
  if (typeof v === "number") return String(v);
  try {
    const s = JSON.stringify(v);
    return s === undefined ? String(v) : s;
  } catch {
    return String(v);
  }
}

export function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

/**
 * Typed, validated access to a schedule's parameters. Every reader throws a
 * {@link ScheduleConfigError} whose message names the parameter's path and says what a valid
 * value looks like. Constructing it rejects keys that are not declared parameters.
 */
export class Params {
  constructor(
    readonly config: Record<string, unknown>,
    readonly path: string,
    readonly allowed: readonly string[],
    readonly ctx: { unit?: TimeUnit; sources?: readonly string[]; what?: string } = {},
  ) {
    for (const key of Object.keys(config)) {
      if (allowed.includes(key)) continue;
      const names = allowed.filter((k) => k !== "$comment");
      const what = ctx.what ?? "this object";
      throw new ScheduleConfigError(this.at(key), `unknown parameter '${key}' for ${what}${didYouMean(suggest(key, names))}; accepted: ${names.join(", ")}`);
    }
  }

  /** Path of a parameter, for messages. */
  at(name: string): string {
    return `${this.path}.${name}`;
  }

  fail(name: string | undefined, problem: string): never {
    throw new ScheduleConfigError(name === undefined ? this.path : this.at(name), problem);
  }

  has(name: string): boolean {
    return this.config[name] !== undefined;
  }

  raw(name: string): unknown {
    return this.config[name];
  }

  /** Params over a nested plain object (`parts[0]`), with its own accepted keys. */
  nested(value: unknown, path: string, allowed: readonly string[], what: string): Params {
    if (!isPlainObject(value)) {
      throw new ScheduleConfigError(path, `must be an object with keys ${allowed.join(", ")} (got ${show(value)})`);
    }
    return new Params(value, path, allowed, { ...this.ctx, what });
  }

  number(name: string, opts: NumberOptions = {}): number {
    const v = this.config[name];
    if (v === undefined) {
      if (opts.default !== undefined) return opts.default;
      this.fail(name, `is required: give a number${opts.hint ? ` (${opts.hint})` : ""}`);
    }
    return checkNumber(v, this.at(name), opts);
  }

  optionalNumber(name: string, opts: NumberOptions = {}): number | undefined {
    return this.config[name] === undefined ? undefined : this.number(name, opts);
  }

  string(name: string, def?: string): string {
    const v = this.config[name];
    if (v === undefined && def !== undefined) return def;
    if (typeof v !== "string" || v.length === 0) this.fail(name, `must be a non-empty string (got ${show(v)})`);
    return v;
  }

  oneOf<T extends string>(name: string, values: readonly T[], def?: T): T {
    const v = this.config[name];
    if (v === undefined && def !== undefined) return def;
    if (typeof v !== "string" || !(values as readonly string[]).includes(v)) {
      const hint = typeof v === "string" ? didYouMean(suggest(v, values)) : "";
      this.fail(name, `must be one of ${values.map((x) => `'${x}'`).join(", ")} (got ${show(v)})${hint}`);
    }
    return v as T;
  }

  boolean(name: string, def: boolean): boolean {
    const v = this.config[name];
    if (v === undefined) return def;
    if (typeof v !== "boolean") this.fail(name, `must be true or false (got ${show(v)})`);
    return v;
  }

  /** The time unit: the `unit` parameter, else the one inherited from a parent, else steps. */
  unit(): TimeUnit {
    const inherited = this.ctx.unit ?? "steps";
    const unit = this.oneOf("unit", TIME_UNITS, inherited);
    if (this.ctx.unit !== undefined && unit !== this.ctx.unit) {
      this.fail(
        "unit",
        `is '${unit}' but the enclosing schedule counts '${this.ctx.unit}'; a part must count time in its parent's unit (drop "unit" here to inherit it)`,
      );
    }
    return unit;
  }

  /** The schedule's clock: its unit plus the optional `total` run length in that unit. */
  clock(): Clock {
    const unit = this.unit();
    const total = this.optionalNumber("total", { above: 0, hint: `the length of the run in ${unitLabel(unit)}` });
    return new Clock(unit, total, this.path);
  }

  /**
   * A length of time: a number in the schedule's unit, or `{ "fraction": f }` of the run.
   * `positive` rejects zero.
   */
  span(name: string, unit: TimeUnit, opts: { default?: number; positive?: boolean } = {}): ResolvedPoint {
    const v = this.config[name];
    if (v === undefined) {
      if (opts.default !== undefined) return { unit, value: opts.default };
      this.fail(name, `is required: give a number of ${unitLabel(unit)} or { "fraction": f } of the run`);
    }
    return parseSpan(v, this.at(name), unit, opts.positive ?? false);
  }

  /**
   * A point in time: a number in the schedule's unit, `{ "step": n }`, `{ "tokens": n }`
   * or `{ "fraction": f }` of the run.
   */
  point(name: string, unit: TimeUnit, opts: { default?: number } = {}): ResolvedPoint {
    const v = this.config[name];
    if (v === undefined) {
      if (opts.default !== undefined) return { unit, value: opts.default };
      this.fail(name, `is required: give a number of ${unitLabel(unit)}, { "step": n }, { "tokens": n } or { "fraction": f } of the run`);
    }
    return parsePoint(v, this.at(name), unit);
  }

  /** A source name, checked against the declared sources when there are any. */
  source(name: string): string {
    const s = this.string(name);
    this.checkSource(s, this.at(name));
    return s;
  }

  checkSource(s: string, path: string): void {
    const known = this.ctx.sources;
    if (known && !known.includes(s)) {
      throw new ScheduleConfigError(path, `unknown source '${s}'${didYouMean(suggest(s, known))}; declared sources: ${known.join(", ")}`);
    }
  }

  /**
   * Mixture weights `{ source: weight }`, returned normalized to sum 1. Weights must be
   * finite and >= 0 with a positive sum; unless `normalize` is true they must already sum
   * to 1 (within 1e-6).
   */
  weights(name: string, normalize: boolean): Record<string, number> {
    return parseWeights(this.config[name], this.at(name), normalize, (s, p) => this.checkSource(s, p));
  }

  /** A nested schedule config (an object with a string `type`). */
  schedule(name: string): ScheduleConfig {
    const v = this.config[name];
    if (!isPlainObject(v) || typeof v.type !== "string") {
      this.fail(name, `must be a schedule config { "type": ..., ...params } (got ${show(v)})`);
    }
    return v as ScheduleConfig;
  }

  array(name: string, opts: { minLength?: number; required?: boolean } = {}): unknown[] | undefined {
    const v = this.config[name];
    if (v === undefined && opts.required === false) return undefined;
    if (!Array.isArray(v)) this.fail(name, `must be an array (got ${show(v)})`);
    if (opts.minLength !== undefined && v.length < opts.minLength) {
      this.fail(name, `needs at least ${opts.minLength} entr${opts.minLength === 1 ? "y" : "ies"} (got ${v.length})`);
    }
    return v;
  }
}

export function checkNumber(v: unknown, path: string, opts: NumberOptions): number {
  const hint = opts.hint ? `; ${opts.hint}` : "";
  if (typeof v !== "number" || !Number.isFinite(v)) {
    throw new ScheduleConfigError(path, `must be a finite number (got ${show(v)})${hint}`);
  }
  if (opts.integer && !Number.isInteger(v)) throw new ScheduleConfigError(path, `must be an integer (got ${v})${hint}`);
  if (opts.min !== undefined && v < opts.min) throw new ScheduleConfigError(path, `must be >= ${opts.min} (got ${v})${hint}`);
  if (opts.max !== undefined && v > opts.max) throw new ScheduleConfigError(path, `must be <= ${opts.max} (got ${v})${hint}`);
  if (opts.above !== undefined && v <= opts.above) {
    throw new ScheduleConfigError(path, `must be > ${opts.above} (got ${v})${hint}`);
  }
  if (opts.below !== undefined && v >= opts.below) {
    throw new ScheduleConfigError(path, `must be < ${opts.below} (got ${v})${hint}`);
  }
  return v;
}

export function parseSpan(v: unknown, path: string, unit: TimeUnit, positive: boolean): ResolvedPoint {
  const expect = `a number of ${unitLabel(unit)} ${positive ? "> 0" : ">= 0"} or { "fraction": f } with ${positive ? "0 < f" : "0 <= f"} <= 1`;
  if (typeof v === "number") {
    if (!Number.isFinite(v) || v < 0 || (positive && v === 0)) {
      throw new ScheduleConfigError(path, `must be ${expect} (got ${show(v)})`);
    }
    return { unit, value: v };
  }
  if (isPlainObject(v) && Object.keys(v).length === 1 && "fraction" in v) {
    const f = v.fraction;
    if (typeof f !== "number" || !Number.isFinite(f) || f < 0 || f > 1 || (positive && f === 0)) {
      throw new ScheduleConfigError(path, `must be ${expect} (got ${show(v)})`);
    }
    return { unit, fraction: f };
  }
  throw new ScheduleConfigError(path, `must be ${expect} (got ${show(v)})`);
}

export function parsePoint(v: unknown, path: string, unit: TimeUnit): ResolvedPoint {
  const expect = `a number of ${unitLabel(unit)} >= 0, { "step": n }, { "tokens": n } or { "fraction": f } with 0 <= f <= 1`;
  if (typeof v === "number") {
    if (!Number.isFinite(v) || v < 0) throw new ScheduleConfigError(path, `must be ${expect} (got ${show(v)})`);
    return { unit, value: v };
  }
  if (isPlainObject(v) && Object.keys(v).length === 1) {
    const [key] = Object.keys(v);
    const n = v[key];
    const ok = typeof n === "number" && Number.isFinite(n) && n >= 0;
    if (key === "fraction") {
      if (!ok || (n as number) > 1) throw new ScheduleConfigError(path, `must be ${expect} (got ${show(v)})`);
      return { unit, fraction: n as number };
    }
    if (key === "step" || key === "tokens") {
      if (!ok) throw new ScheduleConfigError(path, `must be ${expect} (got ${show(v)})`);
      return { unit: key === "step" ? "steps" : "tokens", value: n as number };
    }
    throw new ScheduleConfigError(path, `unknown key '${key}'${didYouMean(suggest(key, ["step", "tokens", "fraction"]))}; must be ${expect}`);
  }
  throw new ScheduleConfigError(path, `must be ${expect} (got ${show(v)})`);
}

/** Tolerance on the sum of weights when `normalize` is false. */
export const WEIGHT_SUM_TOLERANCE = 1e-6;

export function parseWeights(v: unknown, path: string, normalize: boolean, checkSource?: (s: string, path: string) => void): Record<string, number> {
  if (!isPlainObject(v) || Object.keys(v).length === 0) {
    throw new ScheduleConfigError(path, `must be an object { "source": weight, ... } with at least one source (got ${show(v)})`);
  }
  let sum = 0;
  for (const [source, w] of Object.entries(v)) {
    checkSource?.(source, `${path}.${source}`);
    if (typeof w !== "number" || !Number.isFinite(w)) {
      throw new ScheduleConfigError(`${path}.${source}`, `weight must be a finite number (got ${show(w)})`);
    }
    if (w < 0) throw new ScheduleConfigError(`${path}.${source}`, `weight is ${w}; weights must be >= 0`);
    sum += w;
  }
  if (!(sum > 0)) throw new ScheduleConfigError(path, "weights sum to 0; give at least one source a positive weight");
  if (!normalize && Math.abs(sum - 1) > WEIGHT_SUM_TOLERANCE) {
    throw new ScheduleConfigError(path, `weights sum to ${sum}, not 1; fix them so they sum to 1 or set "normalize": true to divide by their sum`);
  }
  const out: Record<string, number> = {};
  for (const [source, w] of Object.entries(v)) out[source] = (w as number) / sum;
  return out;
}
