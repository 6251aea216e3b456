/** Base class for every error this package throws. */
export class BackendError extends Error {
  constructor(message: string) {
    super(message);
    this.name = new.target.name;
  }
}

/** A backend was asked for by name but cannot start here. */
export class BackendUnavailableError extends BackendError {
  constructor(
    readonly backend: string,
    message: string,
    override readonly cause?: unknown,
  ) {
    super(message);
  }
}

/** A backend name that is not one of ours. */
export class UnknownBackendError extends BackendError {}
