/** Base class of every error thrown by `@midtrain/schedulers`. */
export class ScheduleError extends Error {
  override name = "ScheduleError";
}

/**
 * A schedule config is invalid: a bad parameter value, a missing parameter, an unknown
 * parameter or source, or an inconsistency between parameters. `path` locates the value
 * inside the config (`lr.parts[1].schedule.warmup`).
 */
export class ScheduleConfigError extends ScheduleError {
  override name = "ScheduleConfigError";
  constructor(
    readonly path: string,
    problem: string,
  ) {
    super(`${path}: ${problem}`);
  }
}

/** A config names a schedule type that the registry does not know. */
export class UnknownScheduleError extends ScheduleConfigError {
  override name = "UnknownScheduleError";
  constructor(
    path: string,
    readonly type: string,
    readonly suggestions: readonly string[],
    problem: string,
  ) {
    super(path, problem);
  }
}

/** A schedule type (or a plugin) is registered twice in the same registry. */
export class DuplicateScheduleError extends ScheduleError {
  override name = "DuplicateScheduleError";
}

/** A plugin could not be imported, or the module does not export a plugin object. */
export class PluginLoadError extends ScheduleError {
  override name = "PluginLoadError";
}

/**
 * A schedule was evaluated at a time it cannot handle: a negative or non-finite step, a
 * fraction of the run without a known run length, or a run shorter than the warmup.
 */
export class ScheduleTimeError extends ScheduleError {
  override name = "ScheduleTimeError";
}

/** A state passed to `setState` (or feedback passed to `update`) does not fit the schedule. */
export class ScheduleStateError extends ScheduleError {
  override name = "ScheduleStateError";
}
