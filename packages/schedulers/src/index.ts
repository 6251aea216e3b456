export {
  buildLrSchedule,
  buildMixtureSchedule,
  builtinPlugin,
  createRegistry,
  defaultRegistry,
  loadPlugin,
  loadPlugins,
  loadSchedules,
  type PluginImportOptions,
  pluginFromModule,
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
export { DECAY_SHAPES, type DecayShape, decayFactor, LR_TYPES } from "./lr.js";
export { MIXTURE_TYPES } from "./mixture.js";
export {
  checkNumber,
  isPlainObject,
  type NumberOptions,
  Params,
  parsePoint,
  parseSpan,
  parseWeights,
  WEIGHT_SUM_TOLERANCE,
} from "./params.js";
export { type BuildOptions, isSchedulePlugin, type MixtureBuildOptions, Registry } from "./registry.js";
// The suggestions every typed error here uses, for plugins that validate their own parameters.
export { didYouMean, suggest } from "@midtrain/common";
export {
  Clock,
  position,
  type ResolvedPoint,
  runLength,
  type Span,
  shiftTime,
  TIME_UNITS,
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
