import { ScheduleTimeError } from "./errors.js";
import { type Params, parseSpan } from "./params.js";
import { type Clock, type ResolvedPoint, shiftTime, type TimeUnit, type TrainingTime, unitLabel } from "./time.js";
import type { LrSchedule, LrTypeDef, ParamDoc } from "./types.js";

type LrFn = (t: TrainingTime) => number;

const UNIT_DOC: ParamDoc = {
  type: "'steps' | 'tokens' | 'phase-steps'",
  description: "Axis time is counted on (inherited inside a sequential).",
  default: "steps",
};
const TOTAL_DOC: ParamDoc = {
  type: "number",
  description: "Run length in `unit`. When absent it comes from the training time (totalSteps / totalTokens / phaseSteps).",
};
const PEAK_DOC: ParamDoc = { type: "number > 0", description: "Learning rate at the end of warmup.", required: true };
const MIN_DOC: ParamDoc = { type: "number in [0, peak]", description: "Floor reached at the end of the run.", default: 0 };
const WARMUP_DOC: ParamDoc = {
  type: "Span",
  description: 'Linear warmup length: a number in `unit` or { "fraction": f } of the run.',
  default: 0,
};
const WARMUP_FROM_DOC: ParamDoc = { type: "number in [0, peak]", description: "Learning rate at time 0 (start of warmup).", default: 0 };

/** The decay shapes of `wsd` (and of mixture ramps): f(0) = 1 → f(1) = 0, as a fraction of peak - min. */
export const DECAY_SHAPES = ["linear", "cosine", "1-sqrt", "exponential"] as const;
export type DecayShape = (typeof DECAY_SHAPES)[number];

interface WarmupDecay {
  clock: Clock;
  peak: number;
  min: number;
  warmupFrom: number;
  warmup: ResolvedPoint;
}

/** Reads peak / min / warmupFrom / warmup / unit / total and checks warmup against the run. */
function readWarmupDecay(p: Params, opts: { decays: boolean }): WarmupDecay {
  const clock = p.clock();
  const peak = p.number("peak", { above: 0, hint: "the learning rate reached after warmup" });
  const min = p.number("min", { default: 0, min: 0, hint: `the floor, at most peak (${peak})` });
  if (min > peak) p.fail("min", `is ${min} but peak is ${peak}; the floor must be <= peak`);
  const warmupFrom = p.number("warmupFrom", { default: 0, min: 0 });
  if (warmupFrom > peak) p.fail("warmupFrom", `is ${warmupFrom} but peak is ${peak}; warmup must start at or below peak`);
  const warmup = p.span("warmup", clock.unit, { default: 0 });
  const w = clock.staticValue(warmup);
  const total = clock.configTotal;
  if (opts.decays && warmup.fraction === 1) {
    p.fail("warmup", "is the whole run (fraction 1); leave room for the decay with a fraction < 1");
  }
  if (w !== undefined && total !== undefined && (opts.decays ? w >= total : w > total)) {
    p.fail(
      "warmup",
      `warmup (${w} ${unitLabel(clock.unit)}) is ${w > total ? "longer than" : "as long as"} the run (total ${total}); shorten the warmup or raise "total"`,
    );
  }
  return { clock, peak, min, warmupFrom, warmup };
}

/** Warmup length and run length at time t, with the runtime form of the warmup check. */
function lengths(s: WarmupDecay, t: TrainingTime, type: string, decays: boolean): { w: number; total: number } {
  const total = s.clock.total(t, `'${type}'`);
  const w = s.clock.resolve(s.warmup, t, "warmup");
  if (decays ? w >= total : w > total) {
    throw new ScheduleTimeError(
      `${s.clock.path}: warmup (${w} ${unitLabel(s.clock.unit)}) is longer than the run (${total}); shorten the warmup or lengthen the run`,
    );
  }
  return { w, total };
}

function warmupAt(s: WarmupDecay, x: number, w: number): number {
  return s.warmupFrom + ((s.peak - s.warmupFrom) * x) / w;
}

/**
 * Fraction of (peak - min) left after a fraction q in [0, 1] of a decay of the given shape
 * (needs peak > min; with peak = min every shape is the constant peak).
 */
export function decayFactor(shape: DecayShape, q: number, peak: number, min: number): number {
  switch (shape) {
    case "linear":
      return 1 - q;
    case "cosine":
      return 0.5 * (1 + Math.cos(Math.PI * q));
    case "1-sqrt":
      return 1 - Math.sqrt(q);
    case "exponential":
      // peak * (min/peak)^q expressed as a fraction of (peak - min).
      return (peak * (min / peak) ** q - min) / (peak - min);
  }
}

function decayType(
  type: "linear" | "cosine" | "polynomial",
  description: string,
  extra: Record<string, ParamDoc>,
  shape: (p: Params) => (q: number) => number,
): LrTypeDef {
  return {
    kind: "lr",
    type,
    description,
    params: {
      peak: PEAK_DOC,
      min: MIN_DOC,
      warmup: WARMUP_DOC,
      warmupFrom: WARMUP_FROM_DOC,
      total: TOTAL_DOC,
      unit: UNIT_DOC,
      ...extra,
    },
    build(p) {
      const s = readWarmupDecay(p, { decays: true });
      const f = shape(p);
      return (t) => {
        const x = s.clock.x(t);
        const { w, total } = lengths(s, t, type, true);
        if (x < w) return warmupAt(s, x, w);
        if (x >= total) return s.min;
        return s.min + (s.peak - s.min) * f((x - w) / (total - w));
      };
    },
  };
}

const constant: LrTypeDef = {
  kind: "lr",
  type: "constant",
  description: "A constant learning rate, after an optional linear warmup.",
  params: {
    value: { type: "number >= 0", description: "The learning rate.", required: true },
    warmup: WARMUP_DOC,
    warmupFrom: { type: "number in [0, value]", description: "Learning rate at time 0.", default: 0 },
    total: TOTAL_DOC,
    unit: UNIT_DOC,
  },
  build(p) {
    const clock = p.clock();
    const value = p.number("value", { min: 0 });
    const warmupFrom = p.number("warmupFrom", { default: 0, min: 0, max: value });
    const warmup = p.span("warmup", clock.unit, { default: 0 });
    const w0 = clock.staticValue(warmup);
    if (w0 !== undefined && clock.configTotal !== undefined && w0 > clock.configTotal) {
      p.fail("warmup", `warmup (${w0}) is longer than the run (total ${clock.configTotal}); shorten it or raise "total"`);
    }
    const noWarmup = warmup.value === 0 || warmup.fraction === 0;
    return (t) => {
      const x = clock.x(t);
      if (noWarmup) return value;
      const w = clock.resolve(warmup, t, "warmup");
      return x < w ? warmupFrom + ((value - warmupFrom) * x) / w : value;
    };
  },
};

const linear = decayType("linear", "Linear warmup to `peak`, then linear decay to `min` at the end of the run; `min` afterwards.", {}, () => (q) => 1 - q);

const cosine = decayType(
  "cosine",
  "Linear warmup to `peak`, then half-cosine decay to `min` at the end of the run; `min` afterwards.",
  {},
  () => (q) => 0.5 * (1 + Math.cos(Math.PI * q)),
);

const polynomial = decayType(
  "polynomial",
  "Linear warmup to `peak`, then min + (peak - min) * (1 - q)^power over the rest of the run.",
  { power: { type: "number > 0", description: "Exponent of the decay (1 = linear).", default: 1 } },
  (p) => {
    const power = p.number("power", { default: 1, above: 0 });
    return (q) => (1 - q) ** power;
  },
);

const wsd: LrTypeDef = {
  kind: "lr",
  type: "wsd",
  description: "Warmup-stable-decay: linear warmup to `peak`, hold it, then decay to `min` over the last `decay` of the run with the chosen shape.",
  params: {
    peak: PEAK_DOC,
    min: { ...MIN_DOC, description: "Floor reached at the end of the run (must be > 0 for shape 'exponential')." },
    warmup: WARMUP_DOC,
    warmupFrom: WARMUP_FROM_DOC,
    decay: {
      type: "Span",
      description: 'Decay length: a number in `unit` or { "fraction": f } of the run; the decay ends at the end of the run.',
      required: true,
    },
    shape: { type: "'linear' | 'cosine' | '1-sqrt' | 'exponential'", description: "Decay shape.", default: "linear" },
    total: TOTAL_DOC,
    unit: UNIT_DOC,
  },
  build(p) {
    const s = readWarmupDecay(p, { decays: false });
    const decay = p.span("decay", s.clock.unit, { positive: true });
    const shape = p.oneOf("shape", DECAY_SHAPES, "linear");
    if (shape === "exponential" && !(s.min > 0)) {
      p.fail("min", "must be > 0 for shape 'exponential' (the decay is peak * (min/peak)^q); set a positive floor or pick another shape");
    }
    const w0 = s.clock.staticValue(s.warmup);
    const d0 = s.clock.staticValue(decay);
    const total0 = s.clock.configTotal;
    if (w0 !== undefined && d0 !== undefined && total0 !== undefined && w0 + d0 > total0) {
      p.fail("decay", `warmup (${w0}) + decay (${d0}) is longer than the run (total ${total0}); shorten one of them or raise "total"`);
    }
    if ((s.warmup.fraction ?? 0) + (decay.fraction ?? 0) > 1) {
      p.fail("decay", "warmup and decay fractions add up to more than 1; shorten one of them");
    }
    return (t) => {
      const x = s.clock.x(t);
      const total = s.clock.total(t, "'wsd'");
      const w = s.clock.resolve(s.warmup, t, "warmup");
      const d = s.clock.resolve(decay, t, "decay");
      if (w + d > total) {
        throw new ScheduleTimeError(`${s.clock.path}: warmup (${w}) + decay (${d}) is longer than the run (${total}); shorten them or lengthen the run`);
      }
      if (x < w) return warmupAt(s, x, w);
      const decayStart = total - d;
      if (x < decayStart) return s.peak;
      if (x >= total || s.min === s.peak) return s.min;
      return s.min + (s.peak - s.min) * decayFactor(shape, (x - decayStart) / d, s.peak, s.min);
    };
  },
};

const inverseSqrt: LrTypeDef = {
  kind: "lr",
  type: "inverse-sqrt",
  description:
    "Linear warmup to `peak`, then peak * sqrt(timescale / (x - warmup + timescale)): the inverse square root decay of the Transformer paper, continuous at the end of warmup.",
  params: {
    peak: PEAK_DOC,
    warmup: WARMUP_DOC,
    warmupFrom: WARMUP_FROM_DOC,
    timescale: {
      type: "number > 0",
      description: "How fast the decay starts; defaults to the warmup length (then lr = peak * sqrt(warmup / x)).",
    },
    total: TOTAL_DOC,
    unit: UNIT_DOC,
  },
  build(p) {
    const clock = p.clock();
    const peak = p.number("peak", { above: 0 });
    const warmupFrom = p.number("warmupFrom", { default: 0, min: 0, max: peak });
    const warmup = p.span("warmup", clock.unit, { default: 0 });
    const timescale = p.optionalNumber("timescale", { above: 0 });
    if (timescale === undefined && (warmup.value === 0 || warmup.fraction === 0)) {
      p.fail("timescale", "is required when warmup is 0 (it defaults to the warmup length); give a positive number");
    }
    return (t) => {
      const x = clock.x(t);
      const w = clock.resolve(warmup, t, "warmup");
      const ts = timescale ?? w;
      if (x < w) return warmupFrom + ((peak - warmupFrom) * x) / w;
      return peak * Math.sqrt(ts / (x - w + ts));
    };
  },
};

const step: LrTypeDef = {
  kind: "lr",
  type: "step",
  description: "initial * gamma^floor(x / every): multiply by gamma every `every` units.",
  params: {
    initial: { type: "number > 0", description: "Learning rate at time 0.", required: true },
    gamma: { type: "number > 0", description: "Factor applied at each step boundary.", default: 0.1 },
    every: { type: "Span > 0", description: "Distance between boundaries.", required: true },
    total: TOTAL_DOC,
    unit: UNIT_DOC,
  },
  build(p) {
    const clock = p.clock();
    const initial = p.number("initial", { above: 0 });
    const gamma = p.number("gamma", { default: 0.1, above: 0 });
    const every = p.span("every", clock.unit, { positive: true });
    return (t) => initial * gamma ** Math.floor(clock.x(t) / clock.resolve(every, t, "every"));
  },
};

const multistep: LrTypeDef = {
  kind: "lr",
  type: "multistep",
  description: "initial * gamma^k where k is the number of milestones reached.",
  params: {
    initial: { type: "number > 0", description: "Learning rate at time 0.", required: true },
    gamma: { type: "number > 0", description: "Factor applied at each milestone.", default: 0.1 },
    milestones: { type: "Span[]", description: "Strictly increasing times at which the rate is multiplied by gamma.", required: true },
    total: TOTAL_DOC,
    unit: UNIT_DOC,
  },
  build(p) {
    const clock = p.clock();
    const initial = p.number("initial", { above: 0 });
    const gamma = p.number("gamma", { default: 0.1, above: 0 });
    const raw = p.array("milestones", { minLength: 1 })!;
    const milestones = raw.map((m, i) => parseSpan(m, p.at(`milestones[${i}]`), clock.unit, true));
    let prev = -1;
    milestones.forEach((m, i) => {
      const v = clock.staticValue(m);
      if (v === undefined) return;
      if (v <= prev) p.fail(`milestones[${i}]`, `is ${v}, not after the previous milestone (${prev}); list milestones in increasing order`);
      prev = v;
    });
    return (t) => {
      const x = clock.x(t);
      let k = 0;
      for (const m of milestones) if (x >= clock.resolve(m, t, "milestone")) k++;
      return initial * gamma ** k;
    };
  },
};

const sequential: LrTypeDef = {
  kind: "lr",
  type: "sequential",
  description: "Schedules joined end to end. Each part sees its own time: its clock starts at 0 when the part starts and its run length is the part's length.",
  params: {
    parts: {
      type: "{ length?: Span, schedule: ScheduleConfig }[]",
      description: "The parts in order; every part but the last needs a length > 0.",
      required: true,
    },
    total: TOTAL_DOC,
    unit: UNIT_DOC,
  },
  build(p, ctx) {
    const clock = p.clock();
    const raw = p.array("parts", { minLength: 1 })!;
    const parts = raw.map((value, i) => {
      const path = `${p.path}.parts[${i}]`;
      const q = p.nested(value, path, ["length", "schedule", "$comment"], "a sequential part");
      const length = q.has("length") ? q.span("length", clock.unit, { positive: true }) : undefined;
      if (length === undefined && i < raw.length - 1) {
        q.fail("length", 'is required on every part but the last: give a number or { "fraction": f } of the run');
      }
      const schedule = ctx.buildLr(q.schedule("schedule"), `${path}.schedule`, { unit: clock.unit });
      return { length, schedule };
    });
    return (t) => {
      const x = clock.x(t);
      let start = 0;
      for (let i = 0; i < parts.length; i++) {
        const part = parts[i];
        const len = part.length ? clock.resolve(part.length, t, `parts[${i}].length`) : undefined;
        if (i === parts.length - 1 || x < start + (len as number)) {
          let own = len;
          if (own === undefined) {
            const total = clock.totalOrUndefined(t);
            own = total !== undefined && total > start ? total - start : undefined;
          }
          return part.schedule.at(shiftTime(t, clock.unit, start, own));
        }
        start += len as number;
      }
      /* c8 ignore next */
      throw new Error("unreachable");
    };
  },
};

function childList(p: Params, name: string, build: (c: unknown, path: string) => LrSchedule): LrSchedule[] {
  const raw = p.array(name, { minLength: 1 })!;
  return raw.map((c, i) => build(c, `${p.path}.${name}[${i}]`));
}

const multiply: LrTypeDef = {
  kind: "lr",
  type: "multiply",
  description: "The product of several schedules (all evaluated at the same time), times `scale`.",
  params: {
    schedules: { type: "ScheduleConfig[]", description: "Factors.", required: true },
    scale: { type: "number >= 0", description: "Constant factor.", default: 1 },
  },
  build(p, ctx) {
    const scale = p.number("scale", { default: 1, min: 0 });
    const unit: TimeUnit | undefined = ctx.unit;
    const factors = childList(p, "schedules", (c, path) => ctx.buildLr(c, path, { unit }));
    return (t) => {
      let v = scale;
      for (const f of factors) v *= f.at(t);
      return v;
    };
  },
};

const scale: LrTypeDef = {
  kind: "lr",
  type: "scale",
  description: "A schedule multiplied by a constant `factor` (e.g. an LR sweep over one shape).",
  params: {
    schedule: { type: "ScheduleConfig", description: "The schedule to scale.", required: true },
    factor: { type: "number >= 0", description: "Multiplier.", required: true },
  },
  build(p, ctx) {
    const factor = p.number("factor", { min: 0 });
    const inner = ctx.buildLr(p.schedule("schedule"), p.at("schedule"), { unit: ctx.unit });
    return (t) => factor * inner.at(t);
  },
};

/** Built-in learning-rate schedule types. */
export const LR_TYPES: readonly LrTypeDef[] = [constant, linear, cosine, wsd, inverseSqrt, step, multistep, polynomial, sequential, multiply, scale];

export type { LrFn };
