/**
 * An example third-party plugin for `@midtrain/schedulers`: a cyclic ("triangular") learning
 * rate and a "sawtooth" mixture. It imports only types from `@midtrain/schedulers`; all it
 * needs at run time (validated parameters, the clock) arrives as arguments of `build`.
 */
import type { LrTypeDef, MixtureTypeDef, Params, SchedulePlugin } from "@midtrain/schedulers";

const UNIT = {
  type: "'steps' | 'tokens' | 'phase-steps'",
  description: "Axis time is counted on.",
  default: "steps",
};
const TOTAL = { type: "number", description: 'Run length in `unit`, for { "fraction": f } periods.' };

const MODES = ["triangular", "triangular2", "exp-range"] as const;

/**
 * Cyclical learning rate (Smith, 2017): rises linearly from `base` to `max` over `halfCycle`,
 * falls back over the next `halfCycle`, and repeats. `triangular2` halves the amplitude every
 * cycle; `exp-range` scales it by gamma^x.
 */
export const triangular: LrTypeDef = {
  kind: "lr",
  type: "triangular",
  description: "Cyclic learning rate between `base` and `max` with a triangular wave.",
  params: {
    base: { type: "number >= 0", description: "Lowest learning rate.", required: true },
    max: { type: "number > base", description: "Highest learning rate.", required: true },
    halfCycle: { type: "Span > 0", description: "Length of the rising (and of the falling) half of a cycle.", required: true },
    mode: { type: "'triangular' | 'triangular2' | 'exp-range'", description: "Amplitude policy.", default: "triangular" },
    gamma: { type: "number in (0, 1]", description: "Per-unit amplitude decay for 'exp-range'.", default: 1 },
    total: TOTAL,
    unit: UNIT,
  },
  build(p: Params) {
    const clock = p.clock();
    const base = p.number("base", { min: 0 });
    const max = p.number("max", { above: base, hint: "the peak of each cycle, above base" });
    const halfCycle = p.span("halfCycle", clock.unit, { positive: true });
    const mode = p.oneOf("mode", MODES, "triangular");
    const gamma = p.number("gamma", { default: 1, above: 0, max: 1 });
    return (t) => {
      const x = clock.x(t);
      const h = clock.resolve(halfCycle, t, "halfCycle");
      const cycle = Math.floor(1 + x / (2 * h));
      const wave = Math.max(0, 1 - Math.abs(x / h - 2 * cycle + 1));
      const scale = mode === "triangular" ? 1 : mode === "triangular2" ? 1 / 2 ** (cycle - 1) : gamma ** x;
      return base + (max - base) * wave * scale;
    };
  },
};

/**
 * Sawtooth mixture: the share of `target` rises linearly from `low` to `high` over each
 * `period`, then drops back to `low`; `base` gets the rest.
 */
export const sawtooth: MixtureTypeDef = {
  kind: "mixture",
  type: "sawtooth",
  description: "The share of `target` ramps from `low` to `high` every `period`, then resets; `base` gets the rest.",
  params: {
    base: { type: "string", description: "Source that gets 1 - share.", required: true },
    target: { type: "string", description: "Source whose share follows the sawtooth.", required: true },
    low: { type: "number in [0, 1]", description: "Share at the start of each period.", default: 0 },
    high: { type: "number in [low, 1]", description: "Share reached at the end of each period.", required: true },
    period: { type: "Span > 0", description: "Length of one tooth.", required: true },
    total: TOTAL,
    unit: UNIT,
  },
  build(p: Params) {
    const clock = p.clock();
    const base = p.source("base");
    const target = p.source("target");
    if (base === target) p.fail("target", `is the same source as base ('${base}'); name two different sources`);
    const low = p.number("low", { default: 0, min: 0, max: 1 });
    const high = p.number("high", { min: low, max: 1, hint: "a share between low and 1" });
    const period = p.span("period", clock.unit, { positive: true });
    return {
      sources: [base, target],
      at(t) {
        const x = clock.x(t);
        const len = clock.resolve(period, t, "period");
        const phase = x / len - Math.floor(x / len);
        const share = low + (high - low) * phase;
        return { [base]: 1 - share, [target]: share };
      },
    };
  },
};

/** The plugin object: what `loadPlugin("@midtrain/example-scheduler-plugin")` registers. */
export const plugin: SchedulePlugin = {
  name: "@midtrain/example-scheduler-plugin",
  description: "Example plugin: a triangular cyclic LR and a sawtooth mixture.",
  types: [triangular, sawtooth],
};

export default plugin;
