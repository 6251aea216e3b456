import {
  buildLrSchedule,
  buildMixtureSchedule,
  createRegistry,
  DuplicateScheduleError,
  ScheduleConfigError,
  ScheduleTimeError,
  UnknownScheduleError,
} from "@midtrain/schedulers";
import { describe, expect, it } from "vitest";
import { at } from "./helpers.js";

/** Expects `fn` to throw an instance of `cls` whose message matches every pattern. */
function rejects(fn: () => unknown, cls: new (...a: any[]) => Error, ...patterns: RegExp[]) {
  let err: unknown;
  try {
    fn();
  } catch (e) {
    err = e;
  }
  expect(err, "expected an error").toBeInstanceOf(cls);
  for (const p of patterns) expect((err as Error).message).toMatch(p);
}

const lr = (c: Record<string, unknown>) => () => buildLrSchedule(c as any);
const mix = (c: Record<string, unknown>, sources?: string[]) => () => buildMixtureSchedule(c as any, { sources });

describe("negative steps", () => {
  it("rejects a negative warmup, total, step size or milestone", () => {
    rejects(lr({ type: "cosine", peak: 1, total: 100, warmup: -5 }), ScheduleConfigError, /^lr\.warmup: /, /number of steps >= 0/, /-5/);
    rejects(lr({ type: "cosine", peak: 1, total: -100 }), ScheduleConfigError, /^lr\.total: must be > 0 \(got -100\)/);
    rejects(lr({ type: "step", initial: 1, every: -10 }), ScheduleConfigError, /^lr\.every: .*> 0/);
    rejects(lr({ type: "multistep", initial: 1, milestones: [10, -3] }), ScheduleConfigError, /^lr\.milestones\[1\]: /);
    rejects(mix({ type: "midtraining", general: "g", specialized: "c", weight: 0.2, start: { step: -1 } }), ScheduleConfigError, /^mixture\.start: /);
  });
  it("rejects a negative or non-finite training time", () => {
    const s = buildLrSchedule({ type: "constant", value: 1 });
    rejects(() => s.at(at(-1)), ScheduleTimeError, /step = -1/, /finite step >= 0/);
    rejects(() => s.at(at(Number.NaN)), ScheduleTimeError, /step = NaN/);
  });
});

describe("warmup longer than the run", () => {
  it("is rejected at build time when the config gives the total", () => {
    rejects(
      lr({ type: "cosine", peak: 1, warmup: 7000, total: 5000 }),
      ScheduleConfigError,
      /^lr\.warmup: warmup \(7000 steps\) is longer than the run \(total 5000\)/,
      /shorten the warmup or raise "total"/,
    );
    rejects(lr({ type: "linear", peak: 1, warmup: { fraction: 1 }, total: 5000 }), ScheduleConfigError, /whole run/);
    rejects(
      lr({ type: "wsd", peak: 1, warmup: 60, decay: 50, total: 100 }),
      ScheduleConfigError,
      /^lr\.decay: warmup \(60\) \+ decay \(50\) is longer than the run/,
    );
  });
  it("is rejected at evaluation when the run length comes from the training time", () => {
    const s = buildLrSchedule({ type: "cosine", peak: 1, warmup: 7000 });
    rejects(() => s.at(at(10, { totalSteps: 5000 })), ScheduleTimeError, /warmup \(7000 steps\) is longer than the run \(5000\)/);
  });
  it("a fraction of the run without a known run length says where to give it", () => {
    const s = buildLrSchedule({ type: "cosine", peak: 1, warmup: { fraction: 0.1 } });
    rejects(() => s.at(at(10)), ScheduleTimeError, /set "total" in the config or pass totalSteps/);
  });
});

describe("weights", () => {
  it("rejects negative weights", () => {
    rejects(
      mix({ type: "static", weights: { general: 1.2, code: -0.2 } }),
      ScheduleConfigError,
      /^mixture\.weights\.code: weight is -0\.2; weights must be >= 0/,
    );
  });
  it("rejects weights that do not sum to 1 unless normalize is set", () => {
    rejects(mix({ type: "static", weights: { general: 0.8, code: 0.15 } }), ScheduleConfigError, /sum to 0\.95/, /set "normalize": true/);
    rejects(mix({ type: "ramp", from: { a: 1 }, to: { a: 0.5, b: 0.6 }, start: 0, end: 10 }), ScheduleConfigError, /^mixture\.to: weights sum to 1\.1/);
    expect(buildMixtureSchedule({ type: "static", weights: { general: 0.8, code: 0.15 }, normalize: true }).at(at(0)).code).toBeCloseTo(0.15 / 0.95, 15);
  });
  it("rejects all-zero weights even with normalize", () => {
    rejects(mix({ type: "static", weights: { a: 0, b: 0 }, normalize: true }), ScheduleConfigError, /sum to 0; give at least one source a positive weight/);
  });
  it("rejects a midtraining weight outside [0, 1]", () => {
    rejects(mix({ type: "midtraining", general: "g", specialized: "c", weight: 1.5, start: 10 }), ScheduleConfigError, /^mixture\.weight: must be <= 1/);
  });
});

describe("unknown sources", () => {
  const declared = ["general", "code", "math"];
  it("rejects a weight for an undeclared source, with a suggestion", () => {
    rejects(
      mix({ type: "static", weights: { general: 0.8, cdoe: 0.2 } }, declared),
      ScheduleConfigError,
      /^mixture\.weights\.cdoe: unknown source 'cdoe' — did you mean 'code'\?/,
      /declared sources: general, code, math/,
    );
    rejects(
      mix({ type: "midtraining", general: "generl", specialized: "code", weight: 0.2, start: 10 }, declared),
      ScheduleConfigError,
      /^mixture\.general: unknown source 'generl' — did you mean 'general'\?/,
    );
    rejects(
      mix({ type: "curriculum", from: "general", to: ["code", "maths"] }, declared),
      ScheduleConfigError,
      /^mixture\.to\[1\]: unknown source 'maths' — did you mean 'math'\?/,
    );
  });
  it("rejects a reference loss for a source the schedule does not have", () => {
    rejects(mix({ type: "doremi", initial: { a: 0.5, b: 0.5 }, referenceLoss: { c: 1 } }), ScheduleConfigError, /^mixture\.referenceLoss\.c: unknown source/);
  });
  it("rejects duplicate or empty declared sources", () => {
    rejects(mix({ type: "static", weights: { a: 1 } }, ["a", "a"]), ScheduleConfigError, /declared twice/);
    rejects(mix({ type: "static", weights: { a: 1 } }, []), ScheduleConfigError, /non-empty list/);
  });
});

describe("unknown types and parameters", () => {
  it("suggests the closest type for a misspelled LR type", () => {
    rejects(
      lr({ type: "cosin", peak: 1 }),
      UnknownScheduleError,
      /^lr\.type: unknown learning-rate schedule 'cosin' — did you mean 'cosine'\?/,
      /Known lr types: constant, cosine/,
      /needs the plugin loaded first/,
    );
    rejects(lr({ type: "wds", peak: 1 }), UnknownScheduleError, /did you mean 'wsd'\?/);
    rejects(lr({ type: "inverse_sqrt", peak: 1 }), UnknownScheduleError, /did you mean 'inverse-sqrt'\?/);
  });
  it("suggests the closest type for a misspelled mixture type", () => {
    rejects(mix({ type: "statc", weights: { a: 1 } }), UnknownScheduleError, /^mixture\.type: unknown mixture schedule 'statc' — did you mean 'static'\?/);
    rejects(mix({ type: "midtrain", general: "a", specialized: "b", weight: 0.1, start: 1 }), UnknownScheduleError, /did you mean 'midtraining'\?/);
  });
  it("says when a type belongs to the other kind", () => {
    rejects(lr({ type: "static", weights: { a: 1 } }), UnknownScheduleError, /'static' is a mixture schedule, but a learning-rate schedule is expected here/);
  });
  it("gives no suggestion when nothing is close", () => {
    rejects(lr({ type: "zzzzzzzz" }), UnknownScheduleError, /unknown learning-rate schedule 'zzzzzzzz'\. Known/);
  });
  it("rejects unknown parameters with a suggestion", () => {
    rejects(
      lr({ type: "cosine", peek: 1, total: 10 }),
      ScheduleConfigError,
      /^lr\.peek: unknown parameter 'peek' for learning-rate schedule 'cosine' — did you mean 'peak'\?/,
    );
    rejects(mix({ type: "ramp", from: { a: 1 }, to: { a: 1 }, start: 0, end: 1, shpe: "cosine" }), ScheduleConfigError, /did you mean 'shape'\?/);
    rejects(
      lr({ type: "wsd", peak: 1, decay: 10, total: 100, shape: "cosin" }),
      ScheduleConfigError,
      /^lr\.shape: must be one of .* — did you mean 'cosine'\?/,
    );
    rejects(
      mix({ type: "midtraining", general: "a", specialized: "b", weight: 0.1, start: { stpe: 10 } }),
      ScheduleConfigError,
      /unknown key 'stpe' — did you mean 'step'\?/,
    );
  });
  it("reports the path of an error inside a composite", () => {
    rejects(
      lr({ type: "sequential", parts: [{ length: 10, schedule: { type: "constant", value: 1 } }, { schedule: { type: "cosine", peak: -1 } }] }),
      ScheduleConfigError,
      /^lr\.parts\[1\]\.schedule\.peak: must be > 0 \(got -1\)/,
    );
    rejects(
      lr({ type: "sequential", parts: [{ schedule: { type: "constant", value: 1 } }, { schedule: { type: "constant", value: 1 } }] }),
      ScheduleConfigError,
      /^lr\.parts\[0\]\.length: is required on every part but the last/,
    );
  });
  it("rejects a missing or non-string type", () => {
    rejects(lr({ peak: 1 }), ScheduleConfigError, /^lr\.type: is required/);
    rejects(() => buildLrSchedule("cosine" as any), ScheduleConfigError, /^lr: must be a schedule config/);
  });
});

describe("other inconsistent parameters", () => {
  it("min above peak, exponential decay to 0", () => {
    rejects(
      lr({ type: "cosine", peak: 1e-4, min: 1e-3, total: 10 }),
      ScheduleConfigError,
      /^lr\.min: is 0\.001 but peak is 0\.0001; the floor must be <= peak/,
    );
    rejects(lr({ type: "wsd", peak: 1, decay: 10, total: 100, shape: "exponential" }), ScheduleConfigError, /^lr\.min: must be > 0 for shape 'exponential'/);
  });
  it("a part that counts a different unit than its sequential", () => {
    rejects(
      lr({ type: "sequential", parts: [{ schedule: { type: "constant", value: 1, unit: "tokens" } }] }),
      ScheduleConfigError,
      /a part must count time in its parent's unit/,
    );
  });
  it("ramps and stages that go backwards", () => {
    rejects(mix({ type: "ramp", from: { a: 1 }, to: { b: 1 }, start: 100, end: 50 }), ScheduleConfigError, /^mixture\.end: is 50, not after start \(100\)/);
    rejects(mix({ type: "ramp", from: { a: 1 }, to: { b: 1 }, start: { step: 1 }, end: { tokens: 50 } }), ScheduleConfigError, /same axis/);
    rejects(
      mix({ type: "stages", stages: [{ weights: { a: 1 }, until: 100 }, { weights: { b: 1 }, until: 50 }, { weights: { a: 1 } }] }),
      ScheduleConfigError,
      /^mixture\.stages\[1\]\.until: is 50, not after/,
    );
    rejects(mix({ type: "stages", stages: [{ weights: { a: 1 }, until: 100 }] }), ScheduleConfigError, /remove its "until"/);
  });
  it("a curriculum or midtraining that names one source twice", () => {
    rejects(mix({ type: "curriculum", from: "a", to: ["a", "b"] }), ScheduleConfigError, /includes 'a'/);
    rejects(mix({ type: "midtraining", general: "a", specialized: "a", weight: 0.1, start: 1 }), ScheduleConfigError, /same source/);
  });
});

describe("registry", () => {
  const def = { kind: "lr" as const, type: "cosine", description: "x", params: {}, build: () => () => 1 };
  it("rejects registering a type name twice, naming the owner", () => {
    const r = createRegistry();
    let err: unknown;
    try {
      r.register({ name: "my-plugin", types: [def] });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(DuplicateScheduleError);
    expect((err as Error).message).toMatch(/learning-rate schedule type 'cosine' is already registered by plugin '@midtrain\/schedulers'/);
    expect((err as Error).message).toMatch(/give the new type another name/);
    // Nothing from the failed plugin was registered.
    expect(r.plugins()).toEqual(["@midtrain/schedulers"]);
  });
  it("allows an explicit replacement", () => {
    const r = createRegistry().register(def, { replace: true });
    expect(r.buildLr({ type: "cosine" }).at(at(5))).toBe(1);
    // ...without touching other registries.
    expect(buildLrSchedule({ type: "cosine", peak: 2, total: 10 }).at(at(0))).toBe(2);
  });
  it("lists types per kind and knows both kinds share the registry", () => {
    const r = createRegistry();
    expect(r.types("lr")).toEqual([
      "constant",
      "cosine",
      "inverse-sqrt",
      "linear",
      "multiply",
      "multistep",
      "polynomial",
      "scale",
      "sequential",
      "step",
      "wsd",
    ]);
    expect(r.types("mixture")).toEqual(["curriculum", "doremi", "midtraining", "ramp", "stages", "static", "switch"]);
    expect(r.has("cosine")).toBe(true);
    expect(r.has("cosine", "mixture")).toBe(false);
    expect(createRegistry({ builtins: false }).types()).toEqual([]);
  });
});
