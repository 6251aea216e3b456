import type { Params } from "./params.js";
import type { Registry } from "./registry.js";
import type { TimeUnit, TrainingTime } from "./time.js";

/** A schedule as JSON: a registered `type` plus that type's parameters. */
export type ScheduleConfig = { type: string; [k: string]: unknown };

/** Which family a schedule belongs to. */
export type ScheduleKind = "lr" | "mixture";

/** A learning-rate schedule: a pure function of training time. */
export interface LrSchedule {
  kind: "lr";
  /** A copy of the config it was built from; `JSON.stringify` it to save the schedule. */
  config: ScheduleConfig;
  at(t: TrainingTime): number;
}

/** Feedback a stateful mixture learns from: the latest loss of each source. */
export interface MixtureFeedback {
  time: TrainingTime;
  lossBySource: Record<string, number>;
}

/**
 * A mixture schedule: weights for every source in `sources`, each >= 0, summing to 1.
 * Stateless schedules are pure functions of time; a stateful one (`stateful: true`) also
 * learns from `update` and exposes `getState`/`setState` for checkpoints.
 */
export interface MixtureSchedule {
  kind: "mixture";
  config: ScheduleConfig;
  sources: string[];
  at(t: TrainingTime): Record<string, number>;
  stateful: boolean;
  getState?(): unknown;
  setState?(s: unknown): void;
  update?(feedback: MixtureFeedback): void;
}

/** Documentation of one parameter of a schedule type (also the list of accepted keys). */
export interface ParamDoc {
  /** Type as written in docs: `"number"`, `"Span"`, `"Weights"`, `"'linear' | 'cosine'"`... */
  type: string;
  description: string;
  required?: boolean;
  default?: unknown;
}

/** What a type's `build` gets besides its parameters. */
export interface BuildContext {
  registry: Registry;
  /** Where this schedule sits in the config, for error messages. */
  path: string;
  /** Time unit inherited from an enclosing schedule (a part of a sequential). */
  unit?: TimeUnit;
  /** Source names the caller declared; weights may only name these. */
  sources?: readonly string[];
  /** Builds a nested LR schedule (a part of a composite). */
  buildLr(config: unknown, path: string, opts?: { unit?: TimeUnit }): LrSchedule;
  /** Builds a nested mixture schedule. */
  buildMixture(config: unknown, path: string, opts?: { unit?: TimeUnit }): MixtureSchedule;
}

/** What a mixture type's `build` returns; the registry wraps it into a {@link MixtureSchedule}. */
export interface MixtureImpl {
  /** The sources this schedule gives weight to (others get 0). */
  sources: readonly string[];
  /** Weights of (some of) `sources`; missing ones count as 0. Need not be normalized. */
  at(t: TrainingTime): Record<string, number>;
  getState?(): unknown;
  setState?(s: unknown): void;
  update?(feedback: MixtureFeedback): void;
}

/** A learning-rate schedule type. */
export interface LrTypeDef {
  kind: "lr";
  type: string;
  description: string;
  params: Record<string, ParamDoc>;
  build(p: Params, ctx: BuildContext): (t: TrainingTime) => number;
}

/** A mixture schedule type. */
export interface MixtureTypeDef {
  kind: "mixture";
  type: string;
  description: string;
  params: Record<string, ParamDoc>;
  /** True when the schedule learns from feedback (then `build` must return state methods). */
  stateful?: boolean;
  build(p: Params, ctx: BuildContext): MixtureImpl;
}

export type ScheduleTypeDef = LrTypeDef | MixtureTypeDef;

/**
 * The plugin contract: a package exports one of these (as its default export or as a named
 * export `plugin`), and `loadPlugin(packageName)` registers its types.
 */
export interface SchedulePlugin {
  /** Usually the package name. */
  name: string;
  description?: string;
  types: readonly ScheduleTypeDef[];
}
