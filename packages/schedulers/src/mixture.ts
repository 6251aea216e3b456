import { didYouMean, suggest } from "@midtrain/common";
import { ScheduleStateError, ScheduleTimeError } from "./errors.js";
import { isPlainObject, type Params, show } from "./params.js";
import { type Clock, position, type ResolvedPoint, type TrainingTime } from "./time.js";
import type { BuildContext, MixtureFeedback, MixtureImpl, MixtureTypeDef, ParamDoc } from "./types.js";

type Weights = Record<string, number>;

const UNIT_DOC: ParamDoc = {
  type: "'steps' | 'tokens' | 'phase-steps'",
  description: "Axis that plain-number times are counted on.",
  default: "steps",
};
const TOTAL_DOC: ParamDoc = {
  type: "number",
  description: 'Run length in `unit`, for times given as { "fraction": f }; else taken from the training time.',
};
const NORMALIZE_DOC: ParamDoc = {
  type: "boolean",
  description: "Divide each weight set by its sum. When false, every weight set must already sum to 1 (within 1e-6).",
  default: false,
};

function union(...sets: Weights[]): string[] {
  const out: string[] = [];
  for (const w of sets) for (const k of Object.keys(w)) if (!out.includes(k)) out.push(k);
  return out;
}

/** (1 - q) * a + q * b over the union of their sources. */
function blend(a: Weights, b: Weights, q: number): Weights {
  const out: Weights = {};
  for (const k of Object.keys(a)) out[k] = (1 - q) * a[k];
  for (const k of Object.keys(b)) out[k] = (out[k] ?? 0) + q * b[k];
  return out;
}

/** Where t is relative to a point: its coordinate on the point's axis and the point's value. */
function reached(clock: Clock, p: ResolvedPoint, t: TrainingTime, name: string): boolean {
  return position(t, p.unit) >= clock.resolve(p, t, name);
}

/** Two points that bound an interval must count time on the same axis. */
function sameAxis(params: Params, a: ResolvedPoint, b: ResolvedPoint, aName: string, bName: string): void {
  if (a.unit !== b.unit) {
    params.fail(bName, `counts ${b.unit} but ${aName} counts ${a.unit}; give both on the same axis`);
  }
}

/** Progress in [0, 1] of t through [start, end). */
function progress(clock: Clock, start: ResolvedPoint, end: ResolvedPoint, t: TrainingTime): number {
  const x = position(t, start.unit);
  const s = clock.resolve(start, t, "start");
  const e = clock.resolve(end, t, "end");
  if (!(e > s)) {
    throw new ScheduleTimeError(`${clock.path}: end (${e}) is not after start (${s}); move end after start`);
  }
  if (x <= s) return 0;
  if (x >= e) return 1;
  return (x - s) / (e - s);
}

function checkOrder(params: Params, clock: Clock, a: ResolvedPoint, b: ResolvedPoint, bName: string, aName: string) {
  const va = clock.staticValue(a);
  const vb = clock.staticValue(b);
  if (va !== undefined && vb !== undefined && !(vb > va)) {
    params.fail(bName, `is ${vb}, not after ${aName} (${va}); it must come later`);
  }
}

const staticMix: MixtureTypeDef = {
  kind: "mixture",
  type: "static",
  description: "Fixed weights.",
  params: {
    weights: { type: "Weights", description: "{ source: weight }.", required: true },
    normalize: NORMALIZE_DOC,
  },
  build(p) {
    const weights = p.weights("weights", p.boolean("normalize", false));
    return { sources: Object.keys(weights), at: () => weights };
  },
};

const switchMix: MixtureTypeDef = {
  kind: "mixture",
  type: "switch",
  description: "`before` until time `at`, then `after` (a step change).",
  params: {
    before: { type: "Weights", description: "Weights before the switch.", required: true },
    after: { type: "Weights", description: "Weights from the switch on.", required: true },
    at: { type: "TimePoint", description: "When to switch.", required: true },
    normalize: NORMALIZE_DOC,
    total: TOTAL_DOC,
    unit: UNIT_DOC,
  },
  build(p) {
    const clock = p.clock();
    const normalize = p.boolean("normalize", false);
    const before = p.weights("before", normalize);
    const after = p.weights("after", normalize);
    const at = p.point("at", clock.unit);
    return { sources: union(before, after), at: (t) => (reached(clock, at, t, "at") ? after : before) };
  },
};

const midtraining: MixtureTypeDef = {
  kind: "mixture",
  type: "midtraining",
  description: "The midtraining switch: only `general` until `start`, then general : specialized = (1 - weight) : weight. weight = 1 is continued pretraining.",
  params: {
    general: { type: "string", description: "The pretraining source.", required: true },
    specialized: { type: "string", description: "The midtraining source.", required: true },
    weight: { type: "number in [0, 1]", description: "Share of `specialized` from `start` on.", required: true },
    start: {
      type: "TimePoint",
      description: 'When midtraining starts: a number in `unit`, { "step": n }, { "tokens": n } or { "fraction": f } of the run.',
      required: true,
    },
    total: TOTAL_DOC,
    unit: UNIT_DOC,
  },
  build(p) {
    const clock = p.clock();
    const general = p.source("general");
    const specialized = p.source("specialized");
    if (general === specialized) p.fail("specialized", `is the same source as general ('${general}'); name two different sources`);
    const weight = p.number("weight", { min: 0, max: 1, hint: "the share of the specialized source" });
    const start = p.point("start", clock.unit);
    const before: Weights = { [general]: 1 };
    const after: Weights = { [general]: 1 - weight, [specialized]: weight };
    return { sources: [general, specialized], at: (t) => (reached(clock, start, t, "start") ? after : before) };
  },
};

const ramp: MixtureTypeDef = {
  kind: "mixture",
  type: "ramp",
  description: "`from` until `start`, a linear or cosine interpolation to `to` between `start` and `end`, then `to`.",
  params: {
    from: { type: "Weights", description: "Weights up to `start`.", required: true },
    to: { type: "Weights", description: "Weights from `end` on.", required: true },
    start: { type: "TimePoint", description: "Start of the ramp.", required: true },
    end: { type: "TimePoint", description: "End of the ramp (after `start`, on the same axis).", required: true },
    shape: { type: "'linear' | 'cosine'", description: "Interpolation: q, or (1 - cos(pi q)) / 2.", default: "linear" },
    normalize: NORMALIZE_DOC,
    total: TOTAL_DOC,
    unit: UNIT_DOC,
  },
  build(p) {
    const clock = p.clock();
    const normalize = p.boolean("normalize", false);
    const from = p.weights("from", normalize);
    const to = p.weights("to", normalize);
    const start = p.point("start", clock.unit);
    const end = p.point("end", clock.unit);
    sameAxis(p, start, end, "start", "end");
    checkOrder(p, clock, start, end, "end", "start");
    const shape = p.oneOf("shape", ["linear", "cosine"] as const, "linear");
    return {
      sources: union(from, to),
      at(t) {
        const q = progress(clock, start, end, t);
        if (q === 0) return from;
        if (q === 1) return to;
        return blend(from, to, shape === "linear" ? q : 0.5 * (1 - Math.cos(Math.PI * q)));
      },
    };
  },
};

const stages: MixtureTypeDef = {
  kind: "mixture",
  type: "stages",
  description: "Piecewise-constant weights: each stage holds until its `until`; the last stage runs to the end.",
  params: {
    stages: {
      type: "{ weights: Weights, until?: TimePoint }[]",
      description: "Stages in order; every stage but the last has `until` (strictly increasing, one axis).",
      required: true,
    },
    normalize: NORMALIZE_DOC,
    total: TOTAL_DOC,
    unit: UNIT_DOC,
  },
  build(p) {
    const clock = p.clock();
    const normalize = p.boolean("normalize", false);
    const raw = p.array("stages", { minLength: 1 })!;
    const list = raw.map((value, i) => {
      const path = `${p.path}.stages[${i}]`;
      const q = p.nested(value, path, ["weights", "until", "$comment"], "a stage");
      const weights = q.weights("weights", normalize);
      const last = i === raw.length - 1;
      if (last && q.has("until")) q.fail("until", 'the last stage runs to the end of training; remove its "until"');
      const until = last ? undefined : q.point("until", clock.unit);
      return { weights, until };
    });
    for (let i = 1; i < list.length - 1; i++) {
      const prev = list[i - 1].until!;
      const cur = list[i].until!;
      const name = `stages[${i}].until`;
      if (prev.unit !== cur.unit) p.fail(name, `counts ${cur.unit} but stages[${i - 1}].until counts ${prev.unit}; use one axis`);
      checkOrder(p, clock, prev, cur, name, `stages[${i - 1}].until`);
    }
    return {
      sources: union(...list.map((s) => s.weights)),
      at(t) {
        let prev = -Infinity;
        for (let i = 0; i < list.length - 1; i++) {
          const u = clock.resolve(list[i].until!, t, `stages[${i}].until`);
          if (!(u > prev)) {
            throw new ScheduleTimeError(`${p.path}: stages[${i}].until (${u}) is not after the previous stage's end (${prev})`);
          }
          prev = u;
          if (position(t, list[i].until!.unit) < u) return list[i].weights;
        }
        return list[list.length - 1].weights;
      },
    };
  },
};

const curriculum: MixtureTypeDef = {
  kind: "mixture",
  type: "curriculum",
  description:
    "Weight moves linearly from one source to others: (from: 1 - q, to: q * to-weights), q going 0 → 1 across the phase (phaseFraction) or between `start` and `end`.",
  params: {
    from: { type: "string", description: "Source that starts with all the weight.", required: true },
    to: { type: "Weights | string[]", description: "Sources that end with all the weight (a list means equal shares).", required: true },
    start: { type: "TimePoint", description: "Start of the move; with `end`. Without both, progress is the phase fraction." },
    end: { type: "TimePoint", description: "End of the move." },
    normalize: NORMALIZE_DOC,
    total: TOTAL_DOC,
    unit: UNIT_DOC,
  },
  build(p) {
    const clock = p.clock();
    const normalize = p.boolean("normalize", false);
    const from = p.source("from");
    const rawTo = p.raw("to");
    let to: Weights;
    if (Array.isArray(rawTo)) {
      if (rawTo.length === 0) p.fail("to", "needs at least one source");
      to = {};
      rawTo.forEach((s, i) => {
        if (typeof s !== "string" || s.length === 0) p.fail(`to[${i}]`, `must be a source name (got ${show(s)})`);
        p.checkSource(s, p.at(`to[${i}]`));
        if (s in to) p.fail(`to[${i}]`, `source '${s}' is listed twice`);
        to[s] = 1 / rawTo.length;
      });
    } else {
      to = p.weights("to", normalize);
    }
    if (from in to) p.fail("to", `includes '${from}', the source the curriculum moves away from; list only the other sources`);
    const hasStart = p.has("start");
    if (hasStart !== p.has("end")) {
      p.fail(hasStart ? "end" : "start", 'give both "start" and "end", or neither (then progress is the phase fraction)');
    }
    let window: { start: ResolvedPoint; end: ResolvedPoint } | undefined;
    if (hasStart) {
      const start = p.point("start", clock.unit);
      const end = p.point("end", clock.unit);
      sameAxis(p, start, end, "start", "end");
      checkOrder(p, clock, start, end, "end", "start");
      window = { start, end };
    }
    const fromOnly: Weights = { [from]: 1 };
    return {
      sources: [from, ...Object.keys(to)],
      at(t) {
        let q: number;
        if (window) q = progress(clock, window.start, window.end, t);
        else {
          const f = t.phaseFraction;
          if (typeof f !== "number" || !Number.isFinite(f)) {
            throw new ScheduleTimeError(`${p.path}: training time has phaseFraction = ${String(f)}; give a number in [0, 1]`);
          }
          q = Math.min(1, Math.max(0, f));
        }
        return blend(fromOnly, to, q);
      },
    };
  },
};

interface DoremiState {
  type: "doremi";
  logWeights: Record<string, number>;
  updates: number;
  lastStep: number | null;
}

const doremi: MixtureTypeDef = {
  kind: "mixture",
  type: "doremi",
  stateful: true,
  description:
    "Feedback-driven reweighting in the style of DoReMi: each update multiplies a source's weight by exp(stepSize * max(loss - referenceLoss, 0)); the output mixes the result with the uniform distribution (smoothing).",
  params: {
    initial: {
      type: "Weights",
      description: "Starting weights (all > 0); defaults to uniform over the declared sources.",
    },
    stepSize: { type: "number > 0", description: "Learning rate of the multiplicative update.", default: 1 },
    smoothing: { type: "number in [0, 1)", description: "Share of the uniform distribution mixed into the output.", default: 1e-3 },
    referenceLoss: {
      type: "{ source: number }",
      description: "Per-source reference loss; only the excess over it raises a weight. Missing sources use 0.",
    },
    normalize: NORMALIZE_DOC,
  },
  build(p: Params, ctx: BuildContext): MixtureImpl {
    const normalize = p.boolean("normalize", false);
    let initial: Weights;
    if (p.has("initial")) initial = p.weights("initial", normalize);
    else if (ctx.sources && ctx.sources.length > 0) {
      initial = Object.fromEntries(ctx.sources.map((s) => [s, 1 / ctx.sources!.length]));
    } else {
      p.fail("initial", "is required when no sources are declared: give starting weights { source: weight }");
    }
    const sources = Object.keys(initial);
    for (const s of sources) {
      if (!(initial[s] > 0)) {
        p.fail(`initial.${s}`, "is 0; every source needs a positive starting weight (a zero weight could never recover)");
      }
    }
    const stepSize = p.number("stepSize", { default: 1, above: 0 });
    const smoothing = p.number("smoothing", { default: 1e-3, min: 0, below: 1 });
    const reference: Record<string, number> = {};
    const rawRef = p.raw("referenceLoss");
    if (rawRef !== undefined) {
      if (!isPlainObject(rawRef)) p.fail("referenceLoss", `must be an object { source: loss } (got ${show(rawRef)})`);
      for (const [s, v] of Object.entries(rawRef as Record<string, unknown>)) {
        if (!sources.includes(s)) {
          p.fail(`referenceLoss.${s}`, `unknown source '${s}'${didYouMean(suggest(s, sources))}; sources: ${sources.join(", ")}`);
        }
        if (typeof v !== "number" || !Number.isFinite(v)) p.fail(`referenceLoss.${s}`, `must be a finite number (got ${show(v)})`);
        reference[s] = v as number;
      }
    }
    const initialLogs = (): Record<string, number> => Object.fromEntries(sources.map((s) => [s, Math.log(initial[s])]));
    let state: DoremiState = { type: "doremi", logWeights: initialLogs(), updates: 0, lastStep: null };
    const k = sources.length;
    return {
      sources,
      at() {
        let max = -Infinity;
        for (const s of sources) max = Math.max(max, state.logWeights[s]);
        let z = 0;
        const e: Weights = {};
        for (const s of sources) {
          e[s] = Math.exp(state.logWeights[s] - max);
          z += e[s];
        }
        const out: Weights = {};
        for (const s of sources) out[s] = (1 - smoothing) * (e[s] / z) + smoothing / k;
        return out;
      },
      update(feedback: MixtureFeedback) {
        const losses = feedback?.lossBySource;
        if (!isPlainObject(losses)) {
          throw new ScheduleStateError(`${p.path}: update needs { time, lossBySource: { source: loss } } (got ${show(feedback)})`);
        }
        const next = { ...state.logWeights };
        for (const [s, loss] of Object.entries(losses)) {
          if (!sources.includes(s)) {
            throw new ScheduleStateError(`${p.path}: loss for unknown source '${s}'${didYouMean(suggest(s, sources))}; sources: ${sources.join(", ")}`);
          }
          if (typeof loss !== "number" || !Number.isFinite(loss)) {
            throw new ScheduleStateError(`${p.path}: loss of '${s}' is ${String(loss)}; losses must be finite numbers`);
          }
          next[s] += stepSize * Math.max(loss - (reference[s] ?? 0), 0);
        }
        // Keep logs bounded: shift so the largest is 0 (weights are scale-free).
        let max = -Infinity;
        for (const s of sources) max = Math.max(max, next[s]);
        for (const s of sources) next[s] -= max;
        const step = feedback.time?.step;
        state = { type: "doremi", logWeights: next, updates: state.updates + 1, lastStep: typeof step === "number" ? step : null };
      },
      getState(): DoremiState {
        return { type: "doremi", logWeights: { ...state.logWeights }, updates: state.updates, lastStep: state.lastStep };
      },
      setState(s: unknown) {
        const bad = (why: string): never => {
          throw new ScheduleStateError(`${p.path}: cannot restore doremi state: ${why}`);
        };
        if (!isPlainObject(s) || s.type !== "doremi") bad(`expected { type: "doremi", logWeights, updates } (got ${show(s)})`);
        const st = s as Record<string, unknown>;
        if (!isPlainObject(st.logWeights)) bad("logWeights must be an object { source: number }");
        const logs = st.logWeights as Record<string, unknown>;
        const keys = Object.keys(logs);
        if (keys.length !== k || !sources.every((x) => keys.includes(x))) {
          bad(`its sources (${keys.join(", ")}) differ from this schedule's (${sources.join(", ")})`);
        }
        for (const x of sources) {
          if (typeof logs[x] !== "number" || !Number.isFinite(logs[x])) bad(`logWeights.${x} is not a finite number`);
        }
        if (typeof st.updates !== "number" || !Number.isInteger(st.updates) || st.updates < 0) bad("updates must be an integer >= 0");
        const lastStep = st.lastStep === undefined || st.lastStep === null ? null : st.lastStep;
        if (lastStep !== null && typeof lastStep !== "number") bad("lastStep must be a number or null");
        state = {
          type: "doremi",
          logWeights: Object.fromEntries(sources.map((x) => [x, logs[x] as number])),
          updates: st.updates as number,
          lastStep: lastStep as number | null,
        };
      },
    };
  },
};

/** Built-in mixture schedule types. */
export const MIXTURE_TYPES: readonly MixtureTypeDef[] = [staticMix, switchMix, midtraining, ramp, stages, curriculum, doremi];
