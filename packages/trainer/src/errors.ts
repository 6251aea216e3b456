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

/**
 * A file of a checkpoint does not match the checksum recorded when the checkpoint was written
 * (flipped bits, a truncated or overwritten file). Names the checkpoint, the file and where it
 * is; the remedy is to delete that checkpoint and resume from an earlier one (`resume()`
 * without a checkpoint name skips corrupt checkpoints by itself).
 */
export class CheckpointCorruptError extends CheckpointReadError {
  readonly checkpoint: string;
  readonly file: string;
  /** The storage's location (`CheckpointStorage.location`), if it has one. */
  readonly location: string | undefined;
  constructor(checkpoint: string, file: string, location: string | undefined, detail: string) {
    const where = location ? `${location}/${checkpoint}` : `checkpoint '${checkpoint}' of the checkpoint storage`;
    super(
      `checkpoint '${checkpoint}'${location ? ` in ${location}` : ""} is corrupt: ${file} ${detail}. ` +
        `Delete ${where} and resume from an earlier checkpoint (resume() without a checkpoint name skips corrupt ones).`,
    );
    this.checkpoint = checkpoint;
    this.file = file;
    this.location = location;
  }
}
