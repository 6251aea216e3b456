/**
 * Property-based tests over random valid configs of every built-in type: bounds, continuity
 * where the type promises it, monotonic phases, weights on the simplex, JSON round trip.
 */
import { buildLrSchedule, buildMixtureSchedule, createRegistry, type LrSchedule, type MixtureSchedule, type ScheduleConfig } from "@midtrain/schedulers";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { at } from "./helpers.js";

const RUNS = Number(process.env.PROPERTY_RUNS ?? 150);

interface LrCase {
  config: ScheduleConfig;
  total: number;
  /** Inclusive bounds every value must respect. */
  lo: number;
  hi: number;
  /** End of the warmup (nondecreasing before it, nonincreasing after), when monotonic. */
  monotone?: { warmupEnd: number };
  /** True when the type promises a continuous curve. */
  continuous: boolean;
  /** Times worth probing (boundaries between phases). */
  marks: number[];
}

const total = fc.integer({ min: 100, max: 1_000_000 });
const peak = fc.double({ min: 1e-6, max: 1, noNaN: true });
const unitRatio = fc.double({ min: 0, max: 1, noNaN: true });

/** A warmup as steps or as a fraction, returned with its length in steps. */
function warmupArb(T: number, maxFraction: number) {
  return fc.oneof(
    fc.integer({ min: 0, max: Math.floor(T * maxFraction) }).map((w) => ({ spec: w as unknown, w })),
    fc.double({ min: 0.01, max: maxFraction, noNaN: true }).map((f) => ({ spec: { fraction: f } as unknown, w: f * T })),
  );
}

const decayingArb: fc.Arbitrary<LrCase> = fc
  .tuple(
    total,
    peak,
    unitRatio,
    unitRatio,
    fc.constantFrom("linear", "cosine", "polynomial"),
    // power >= 0.5 keeps the decay's slope near the end within the continuity probe's modulus
    // ((1e-8 / length)^power <= 1e-4); smaller powers are continuous but steeper than that.
    fc.double({ min: 0.5, max: 5, noNaN: true }),
  )
  .chain(([T, p, r, r2, type, power]) =>
    warmupArb(T, 0.9).map(({ spec, w }) => {
      const min = p * r;
      const from = p * r2;
      const config: ScheduleConfig = { type, peak: p, min, warmupFrom: from, warmup: spec, total: T };
      if (type === "polynomial") config.power = power;
      return { config, total: T, lo: Math.min(min, from), hi: p, monotone: { warmupEnd: w }, continuous: true, marks: [w, T] };
    }),
  );

const constantArb: fc.Arbitrary<LrCase> = fc.tuple(total, peak, unitRatio).chain(([T, v, r]) =>
  warmupArb(T, 1).map(({ spec, w }) => ({
    config: { type: "constant", value: v, warmupFrom: v * r, warmup: spec, total: T },
    total: T,
    lo: v * r,
    hi: v,
    monotone: { warmupEnd: Number.POSITIVE_INFINITY },
    continuous: true,
    marks: [w],
  })),
);

const wsdArb: fc.Arbitrary<LrCase> = fc
  .tuple(total, peak, fc.double({ min: 1e-3, max: 1, noNaN: true }), fc.constantFrom("linear", "cosine", "1-sqrt", "exponential"))
  .chain(([T, p, r, shape]) =>
    fc.tuple(fc.integer({ min: 0, max: Math.floor(T / 2) }), fc.integer({ min: 1, max: Math.floor(T / 2) }), fc.boolean()).map(([w, d, asFraction]) => ({
      config: { type: "wsd", peak: p, min: p * r, warmup: w, decay: asFraction ? { fraction: d / T } : d, shape, total: T },
      total: T,
      lo: 0, // warmup starts at 0
      hi: p,
      monotone: { warmupEnd: w },
      continuous: true,
      marks: [w, T - d, T],
    })),
  );

const inverseSqrtArb: fc.Arbitrary<LrCase> = fc
  .tuple(total, peak, fc.integer({ min: 0, max: 10_000 }), fc.integer({ min: 1, max: 10_000 }))
  .map(([T, p, w, ts]) => ({
    config: w > 0 ? { type: "inverse-sqrt", peak: p, warmup: w } : { type: "inverse-sqrt", peak: p, timescale: ts },
    total: T,
    lo: 0,
    hi: p,
    monotone: { warmupEnd: w },
    continuous: true,
    marks: [w],
  }));

const stepArb: fc.Arbitrary<LrCase> = fc.tuple(total, peak, fc.double({ min: 0.01, max: 1, noNaN: true }), fc.boolean()).chain(
  ([T, init, gamma, multi]): fc.Arbitrary<LrCase> =>
    multi
      ? fc.uniqueArray(fc.integer({ min: 1, max: T }), { minLength: 1, maxLength: 5 }).map((ms) => {
          const milestones = [...ms].sort((a, b) => a - b);
          return {
            config: { type: "multistep", initial: init, gamma, milestones },
            total: T,
            lo: init * gamma ** milestones.length,
            hi: init,
            monotone: { warmupEnd: 0 },
            continuous: false,
            marks: milestones,
          };
        })
      : fc.integer({ min: 1, max: T }).map((every) => ({
          config: { type: "step", initial: init, gamma, every },
          total: T,
          lo: init * gamma ** Math.floor((1.2 * T) / every),
          hi: init,
          monotone: { warmupEnd: 0 },
          continuous: false,
          marks: [every],
        })),
);

/** Composites over random simple parts: bounds come from the parts. */
const compositeArb: fc.Arbitrary<LrCase> = fc
  .tuple(fc.constantFrom("sequential", "multiply", "scale"), fc.array(decayingArb, { minLength: 1, maxLength: 3 }), fc.double({ min: 0, max: 3, noNaN: true }))
  .map(([type, parts, factor]) => {
    const T = parts.reduce((s, p) => s + p.total, 0);
    // Children in a composite take their run length from the part, so drop their totals.
    const strip = (c: ScheduleConfig) => {
      const { total: _drop, ...rest } = c;
      return rest as ScheduleConfig;
    };
    if (type === "sequential") {
      const lo = Math.min(...parts.map((p) => p.lo));
      const hi = Math.max(...parts.map((p) => p.hi));
      let start = 0;
      const marks: number[] = [];
      for (const p of parts) {
        marks.push(start, ...p.marks.map((m) => start + m));
        start += p.total;
      }
      return {
        config: { type, total: T, parts: parts.map((p) => ({ length: p.total, schedule: strip(p.config) })) },
        total: T,
        lo,
        hi,
        continuous: false,
        marks,
      };
    }
    if (type === "multiply") {
      return {
        config: { type, scale: factor, schedules: parts.map((p) => p.config) },
        total: parts[0].total,
        lo: factor * parts.reduce((s, p) => s * p.lo, 1),
        hi: factor * parts.reduce((s, p) => s * p.hi, 1),
        continuous: true,
        marks: parts.flatMap((p) => p.marks),
      };
    }
    const [p] = parts;
    return { config: { type, factor, schedule: p.config }, total: p.total, lo: factor * p.lo, hi: factor * p.hi, continuous: true, marks: p.marks };
  });

const lrCase = fc.oneof(decayingArb, constantArb, wsdArb, inverseSqrtArb, stepArb, compositeArb);
const unitTimes = fc.array(fc.double({ min: 0, max: 1.2, noNaN: true }), { minLength: 1, maxLength: 20 });

function roundTrip(s: LrSchedule): LrSchedule {
  return buildLrSchedule(JSON.parse(JSON.stringify(s.config)));
}

describe("LR schedules on random valid configs", () => {
  it("stay within their bounds, finite and >= 0", () => {
    fc.assert(
      fc.property(lrCase, unitTimes, (c, us) => {
        const s = buildLrSchedule(c.config);
        const tol = 1e-12 * Math.max(1, c.hi);
        for (const x of [...us.map((u) => u * c.total), ...c.marks]) {
          const v = s.at(at(x));
          expect(Number.isFinite(v)).toBe(true);
          expect(v).toBeGreaterThanOrEqual(Math.max(0, c.lo - tol));
          expect(v).toBeLessThanOrEqual(c.hi + tol);
        }
      }),
      { numRuns: RUNS },
    );
  });

  it("are continuous where promised (no jump over 1e-3 of the peak across a 1e-8-step window)", () => {
    fc.assert(
      fc.property(
        lrCase.filter((c) => c.continuous),
        unitTimes,
        (c, us) => {
          const s = buildLrSchedule(c.config);
          const d = 1e-8;
          for (const x of [...us.map((u) => u * c.total), ...c.marks]) {
            const a = s.at(at(Math.max(0, x - d)));
            const b = s.at(at(x + d));
            expect(Math.abs(a - b)).toBeLessThanOrEqual(1e-3 * Math.max(c.hi, 1e-300));
          }
        },
      ),
      { numRuns: RUNS },
    );
  });

  it("are monotonic in each phase: nondecreasing during warmup, nonincreasing after", () => {
    fc.assert(
      fc.property(
        lrCase.filter((c) => c.monotone !== undefined),
        fc.array(fc.double({ min: 0, max: 1.2, noNaN: true }), { minLength: 2, maxLength: 30 }),
        (c, us) => {
          const s = buildLrSchedule(c.config);
          const w = c.monotone!.warmupEnd;
          const xs = [...us.map((u) => u * c.total), ...c.marks].sort((a, b) => a - b);
          const tol = 1e-12 * c.hi;
          for (let i = 1; i < xs.length; i++) {
            const [x0, x1] = [xs[i - 1], xs[i]];
            const [v0, v1] = [s.at(at(x0)), s.at(at(x1))];
            if (x1 < w) expect(v1).toBeGreaterThanOrEqual(v0 - tol);
            else if (x0 >= w) expect(v1).toBeLessThanOrEqual(v0 + tol);
          }
        },
      ),
      { numRuns: RUNS },
    );
  });

  it("survive a JSON round trip: config → JSON → build gives identical values", () => {
    fc.assert(
      fc.property(lrCase, unitTimes, (c, us) => {
        const s = buildLrSchedule(c.config);
        const r = roundTrip(s);
        expect(r.config).toEqual(s.config);
        for (const u of us) expect(r.at(at(u * c.total))).toBe(s.at(at(u * c.total)));
      }),
      { numRuns: RUNS },
    );
  });
});

// ---------------------------------------------------------------------------------------
// Mixtures

const POOL = ["general", "code", "math", "web", "qa"];
const sourcesArb = fc.shuffledSubarray(POOL, { minLength: 2, maxLength: POOL.length });

/** Weights over a subset of `sources`, either exactly normalized or raw with normalize: true. */
function weightsArb(sources: string[]) {
  return fc
    .tuple(
      fc.shuffledSubarray(sources, { minLength: 1 }),
      fc.array(fc.double({ min: 0.001, max: 10, noNaN: true }), { minLength: sources.length, maxLength: sources.length }),
    )
    .map(([subset, raw]) => {
      const sum = subset.reduce((s, _, i) => s + raw[i], 0);
      return Object.fromEntries(subset.map((s, i) => [s, raw[i] / sum]));
    });
}

interface MixCase {
  config: ScheduleConfig;
  sources: string[];
  total: number;
  continuous: boolean;
  marks: number[];
  /** Per-source monotonic direction between two marks, when the type promises one. */
  check?: (s: MixtureSchedule, xs: number[]) => void;
}

const mixCase: fc.Arbitrary<MixCase> = fc
  .tuple(sourcesArb, fc.integer({ min: 100, max: 1_000_000 }), fc.constantFrom("static", "switch", "midtraining", "ramp", "stages", "curriculum", "doremi"))
  .chain(([sources, T, type]): fc.Arbitrary<MixCase> => {
    const w = weightsArb(sources);
    const point = fc.integer({ min: 0, max: T });
    switch (type) {
      case "static":
        return w.map((weights) => ({ config: { type, weights }, sources, total: T, continuous: true, marks: [] }));
      case "switch":
        return fc.tuple(w, w, point).map(([before, after, k]) => ({
          config: { type, before, after, at: k },
          sources,
          total: T,
          continuous: false,
          marks: [k],
        }));
      case "midtraining":
        return fc
          .tuple(
            fc.double({ min: 0, max: 1, noNaN: true }),
            fc.oneof(
              point.map((k) => ({ step: k })),
              fc.double({ min: 0, max: 1, noNaN: true }).map((f) => ({ fraction: f })),
            ),
          )
          .map(([weight, start]) => {
            const k = "step" in start ? start.step : start.fraction * T;
            return {
              config: { type, general: sources[0], specialized: sources[1], weight, start, total: T },
              sources,
              total: T,
              continuous: false,
              marks: [k],
              check: (s: MixtureSchedule, xs: number[]) => {
                for (const x of xs) expect(s.at(at(x))[sources[1]]).toBe(x < k ? 0 : weight);
              },
            };
          });
      case "ramp":
        return fc
          .tuple(w, w, point, point, fc.constantFrom("linear", "cosine"))
          .filter(([, , a, b]) => a !== b)
          .map(([from, to, a, b, shape]) => {
            const [start, end] = a < b ? [a, b] : [b, a];
            return {
              config: { type, from, to, start, end, shape },
              sources,
              total: T,
              continuous: true,
              marks: [start, end],
              check: (s: MixtureSchedule, xs: number[]) => {
                // Each source moves monotonically from its `from` weight to its `to` weight.
                const sorted = [...xs].sort((x, y) => x - y);
                for (const src of sources) {
                  const f = from[src] ?? 0;
                  const t = to[src] ?? 0;
                  const vals = sorted.map((x) => s.at(at(x))[src]);
                  for (const v of vals) {
                    expect(v).toBeGreaterThanOrEqual(Math.min(f, t) - 1e-12);
                    expect(v).toBeLessThanOrEqual(Math.max(f, t) + 1e-12);
                  }
                  for (let i = 1; i < vals.length; i++) {
                    if (t >= f) expect(vals[i]).toBeGreaterThanOrEqual(vals[i - 1] - 1e-12);
                    else expect(vals[i]).toBeLessThanOrEqual(vals[i - 1] + 1e-12);
                  }
                }
              },
            };
          });
      case "stages":
        return fc
          .tuple(fc.array(w, { minLength: 1, maxLength: 4 }), fc.uniqueArray(fc.integer({ min: 1, max: T }), { minLength: 3, maxLength: 3 }))
          .map(([ws, untils]) => {
            const u = [...untils].sort((a, b) => a - b).slice(0, ws.length - 1);
            return {
              config: { type, stages: ws.map((weights, i) => (i < ws.length - 1 ? { weights, until: u[i] } : { weights })) },
              sources,
              total: T,
              continuous: false,
              marks: u,
            };
          });
      case "curriculum":
        return fc
          .tuple(point, point)
          .filter(([a, b]) => a !== b)
          .map(([a, b]) => {
            const [start, end] = a < b ? [a, b] : [b, a];
            return {
              config: { type, from: sources[0], to: sources.slice(1), start, end },
              sources,
              total: T,
              continuous: true,
              marks: [start, end],
              check: (s: MixtureSchedule, xs: number[]) => {
                const vals = [...xs].sort((x, y) => x - y).map((x) => s.at(at(x))[sources[0]]);
                for (let i = 1; i < vals.length; i++) expect(vals[i]).toBeLessThanOrEqual(vals[i - 1] + 1e-12);
              },
            };
          });
      default:
        return fc
          .tuple(w, fc.double({ min: 0.001, max: 5, noNaN: true }), fc.double({ min: 0, max: 0.5, noNaN: true }))
          .map(([initial, stepSize, smoothing]) => {
            // doremi needs every source > 0: give the unmentioned ones a small weight.
            const full = Object.fromEntries(sources.map((src) => [src, (initial[src] ?? 0) + 0.01]));
            return {
              config: { type: "doremi", initial: full, stepSize, smoothing, normalize: true },
              sources,
              total: T,
              continuous: true,
              marks: [],
            };
          });
    }
  });

function expectOnSimplex(w: Record<string, number>, sources: string[]) {
  expect(Object.keys(w)).toEqual(sources);
  let sum = 0;
  for (const s of sources) {
    expect(w[s]).toBeGreaterThanOrEqual(0);
    expect(w[s]).toBeLessThanOrEqual(1);
    sum += w[s];
  }
  expect(Math.abs(sum - 1)).toBeLessThanOrEqual(1e-12);
}

const lossesArb = fc.array(fc.array(fc.double({ min: 0, max: 20, noNaN: true }), { minLength: 5, maxLength: 5 }), { maxLength: 6 });

describe("mixture schedules on random valid configs", () => {
  it("give weights on the simplex for every declared source (sum within 1e-12)", () => {
    fc.assert(
      fc.property(mixCase, unitTimes, lossesArb, (c, us, losses) => {
        const s = buildMixtureSchedule(c.config, { sources: c.sources });
        expect(s.sources).toEqual(c.sources);
        for (const [i, l] of losses.entries()) {
          if (!s.stateful) break;
          s.update!({ time: at(i), lossBySource: Object.fromEntries(c.sources.map((src, j) => [src, l[j]])) });
        }
        for (const x of [...us.map((u) => u * c.total), ...c.marks]) expectOnSimplex(s.at(at(x)), c.sources);
      }),
      { numRuns: RUNS },
    );
  });

  it("are continuous where promised and monotonic where promised", () => {
    fc.assert(
      fc.property(mixCase, unitTimes, (c, us) => {
        const s = buildMixtureSchedule(c.config, { sources: c.sources });
        const xs = [...us.map((u) => u * c.total), ...c.marks];
        c.check?.(s, xs);
        if (!c.continuous) return;
        for (const x of xs) {
          const a = s.at(at(Math.max(0, x - 1e-8)));
          const b = s.at(at(x + 1e-8));
          for (const src of c.sources) expect(Math.abs(a[src] - b[src])).toBeLessThanOrEqual(1e-6);
        }
      }),
      { numRuns: RUNS },
    );
  });

  it("survive a JSON round trip of config (and of state for stateful ones)", () => {
    fc.assert(
      fc.property(mixCase, unitTimes, lossesArb, (c, us, losses) => {
        const s = buildMixtureSchedule(c.config, { sources: c.sources });
        for (const [i, l] of losses.entries()) {
          if (!s.stateful) break;
          s.update!({ time: at(i), lossBySource: Object.fromEntries(c.sources.map((src, j) => [src, l[j]])) });
        }
        const r = buildMixtureSchedule(JSON.parse(JSON.stringify(s.config)), { sources: c.sources });
        expect(r.config).toEqual(s.config);
        if (s.stateful) r.setState!(JSON.parse(JSON.stringify(s.getState!())));
        for (const u of us) expect(r.at(at(u * c.total))).toEqual(s.at(at(u * c.total)));
      }),
      { numRuns: RUNS },
    );
  });
});

it("every built-in type is covered by the generators above", () => {
  const covered = new Set<string>();
  for (const c of fc.sample(lrCase, 2000)) covered.add(`lr:${c.config.type}`);
  for (const c of fc.sample(mixCase, 500)) covered.add(`mixture:${c.config.type}`);
  const r = createRegistry();
  const all = [...r.types("lr").map((t) => `lr:${t}`), ...r.types("mixture").map((t) => `mixture:${t}`)];
  expect(all.filter((t) => !covered.has(t))).toEqual([]);
});
