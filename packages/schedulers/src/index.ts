/**
 * The public API of `@midtrain/schedulers`: building schedules, the registry and plugins, the
 * training-time helpers, the typed errors, and the types a plugin is written against.
 * Everything not listed here (the built-in type tables, the value parsers behind `Params`,
 * the time arithmetic behind `Clock`) is internal to the package.
 */
export {
  buildLrSchedule,
  buildMixtureSchedule,
  createRegistry,
  defaultRegistry,
  loadPlugin,
  loadPlugins,
  loadSchedules,
  type PluginImportOptions,
  type SchedulesConfig,
} from "./api.js";
export {
  DuplicateScheduleError,
  PluginLoadError,
  ScheduleConfigError,
  ScheduleError,
  ScheduleStateError,
  ScheduleTimeError,
  UnknownScheduleError,
} from "./errors.js";
export { type NumberOptions, Params } from "./params.js";
export { type BuildOptions, type MixtureBuildOptions, Registry } from "./registry.js";
// The suggestions every typed error here uses, for plugins and hosts that check names of their own.
export { didYouMean, suggest } from "@midtrain/common";
export {
  Clock,
  type ResolvedPoint,
  type Span,
  type TimePoint,
  type TimeUnit,
  type TrainingTime,
  type TrainingTimeInit,
  trainingTime,
} from "./time.js";
export type {
  BuildContext,
  LrSchedule,
  LrTypeDef,
  MixtureFeedback,
  MixtureImpl,
  MixtureSchedule,
  MixtureTypeDef,
  ParamDoc,
  ScheduleConfig,
  ScheduleKind,
  SchedulePlugin,
  ScheduleTypeDef,
} from "./types.js";
