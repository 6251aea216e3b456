/** Base class of every error thrown by `@midtrain/trainer`. */
export class TrainerError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
  }
}

/** Options handed to the trainer are inconsistent or out of range. */
export class TrainerConfigError extends TrainerError {}

/** An optimizer state does not fit the parameters it is restored into. */
export class OptimizerStateError extends TrainerError {}

/**
 * Too many optimizer steps in a row had a non-finite loss or gradient. None of them was
 * applied; `lastCheckpoint` (if any) is the last good checkpoint, left untouched.
 */
export class NonFiniteLossError extends TrainerError {
  readonly step: number;
  readonly inARow: number;
  readonly lastCheckpoint: string | undefined;
  constructor(step: number, inARow: number, lastCheckpoint: string | undefined, detail: string) {
    super(
      `${inARow} optimizer steps in a row had a non-finite loss or gradient (last: ${detail}) after step ${step}; ` +
        "none was applied. " +
        (lastCheckpoint
          ? `The last good checkpoint is '${lastCheckpoint}': resume from it with a lower learning rate, tighter clipping or different data.`
          : "No checkpoint was written yet: lower the learning rate or check the data and model initialization."),
    );
    this.step = step;
    this.inARow = inARow;
    this.lastCheckpoint = lastCheckpoint;
  }
}

/** A checkpoint could not be written; the previous checkpoints are intact. */
export class CheckpointWriteError extends TrainerError {}

/** A checkpoint is missing, incomplete or not a midtrain trainer checkpoint. */
export class CheckpointReadError extends TrainerError {}
