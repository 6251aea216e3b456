/** Base class of every error thrown by `@midtrain/model`. */
export class ModelError extends Error {
  constructor(message: string) {
    super(message);
    this.name = new.target.name;
  }
}

/** A model configuration is invalid or names an unknown preset. */
export class ModelConfigError extends ModelError {}

/** A tensor handed to the model has the wrong shape, dtype or values. */
export class ModelInputError extends ModelError {}

/** A safetensors file is malformed (bad header, offsets, dtype, truncated data). */
export class SafetensorsError extends ModelError {}

/**
 * A checkpoint does not fit the model: missing or unexpected tensors, shapes that do not
 * match `config.json`, or a `config.json` that is not a GPT-NeoX config.
 */
export class CheckpointError extends ModelError {}
