import { didYouMean, suggest } from "@midtrain/common";

/** Base class of every error thrown by @midtrain/data. */
export class DataError extends Error {
  constructor(message: string) {
    super(message);
    this.name = new.target.name;
  }
}

/** A record or line could not be parsed. Names the file (when known) and the 1-based line. */
export class MalformedInputError extends DataError {
  readonly file: string | undefined;
  readonly line: number | undefined;
  constructor(message: string, file?: string, line?: number) {
    const where = file ? `${file}${line !== undefined ? `:${line}` : ""}: ` : line !== undefined ? `line ${line}: ` : "";
    super(`${where}${message}`);
    this.file = file;
    this.line = line;
  }
}

/** A source produced no usable documents, or too few tokens to fill one sequence. */
export class EmptySourceError extends DataError {}

/** Mixture weights are negative, non-finite or all zero. */
export class InvalidWeightsError extends DataError {}

/** A mixture (or a lookup) names a source that the mixer does not have. */
export class UnknownSourceError extends DataError {
  readonly source: string;
  constructor(source: string, known: readonly string[], context = "mixture") {
    super(
      `${context} names unknown source '${source}'${didYouMean(suggest(source, known))}; known sources: ${known.length ? known.map((k) => `'${k}'`).join(", ") : "(none)"}. ` +
        "Add the source to the mixer or fix the name in the schedule.",
    );
    this.source = source;
  }
}

/** A file or folder that was asked for does not exist. */
export class MissingFileError extends DataError {
  readonly path: string;
  constructor(path: string, hint = "") {
    super(`file or folder not found: ${path}${hint ? ` (${hint})` : ""}`);
    this.path = path;
  }
}

/** A source would be read more than `maxEpochs` times. */
export class EpochLimitError extends DataError {
  readonly source: string;
  readonly maxEpochs: number;
  constructor(source: string, maxEpochs: number) {
    super(`source '${source}' reached its cap of ${maxEpochs} epoch(s); raise maxEpochs, lower its mixture weight, ` + "or train on fewer tokens.");
    this.source = source;
    this.maxEpochs = maxEpochs;
  }
}

/** Options or a saved state are inconsistent. */
export class DataConfigError extends DataError {}
