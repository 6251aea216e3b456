import { DataConfigError } from "./errors.js";
import { isValidationDoc, type PackedSource, PretrainPacker, SftPacker } from "./pack.js";
import { type RecordOrigin, recordSft, recordText, type SftFieldOptions } from "./records.js";
import type { Tokenizer } from "./tokenizer.js";

/** A record with where it came from (file, line), as the Node readers yield them. */
export interface SourcedRecord {
  record: unknown;
  origin?: RecordOrigin;
}

interface CommonSourceOptions {
  tokenizer: Tokenizer;
  seqLen: number;
  /** Fraction of documents held out for validation, chosen per document before packing. Default 0. */
  validFraction?: number;
  /** Seed of the validation split. Default 0. */
  splitSeed?: number;
  /** Name used in error messages. */
  name?: string;
  /** Stop after this many documents (for quick runs). */
  limit?: number;
}

export interface PretrainSourceOptions extends CommonSourceOptions {
  kind?: "pretrain";
  /** Field with the text when records are objects. Default `text`. */
  textField?: string;
  /** Keep the final partial block of the training split, padded and masked. Default false. */
  keepTail?: boolean;
}

export interface SftSourceOptions extends CommonSourceOptions {
  kind: "sft";
  /** Field mapping (see SftFieldOptions). */
  fields?: SftFieldOptions;
  /** Mask prompt tokens from the loss. Default true. */
  maskPrompt?: boolean;
  /** Text between prompt and response. Default "\n". */
  separator?: string;
}

export type SourceOptions = PretrainSourceOptions | SftSourceOptions;

export interface BuiltSource {
  train: PackedSource;
  /** Held-out documents, packed the same way (pretraining keeps the final partial block). Absent when validFraction is 0. */
  valid?: PackedSource;
}

function isSourced(x: unknown): x is SourcedRecord {
  return typeof x === "object" && x !== null && "record" in x && Object.keys(x).every((k) => k === "record" || k === "origin");
}

/**
 * Tokenizes and packs a stream of records (strings, objects, or {record, origin} from the Node
 * readers) into a training source and, with `validFraction`, a disjoint validation source.
 */
export async function buildSource(records: Iterable<unknown> | AsyncIterable<unknown>, options: SourceOptions): Promise<BuiltSource> {
  const frac = options.validFraction ?? 0;
  if (!(frac >= 0 && frac < 1)) throw new DataConfigError(`validFraction must be in [0, 1), got ${frac}`);
  const seed = options.splitSeed ?? 0;
  const limit = options.limit ?? Number.POSITIVE_INFINITY;
  const sft = options.kind === "sft";
  const mk = (valid: boolean) =>
    sft
      ? new SftPacker(options.tokenizer, {
          seqLen: options.seqLen,
          maskPrompt: (options as SftSourceOptions).maskPrompt,
          separator: (options as SftSourceOptions).separator,
          name: `${options.name ?? "sft"}${valid ? " (validation)" : ""}`,
        })
      : new PretrainPacker(options.tokenizer, {
          seqLen: options.seqLen,
          keepTail: valid || (options as PretrainSourceOptions).keepTail,
          name: `${options.name ?? "pretrain"}${valid ? " (validation)" : ""}`,
        });
  const train = mk(false);
  const valid = frac > 0 ? mk(true) : undefined;
  let i = 0;
  for await (const item of records as AsyncIterable<unknown>) {
    if (i >= limit) break;
    const { record, origin } = isSourced(item) ? item : { record: item, origin: undefined };
    const target = valid && isValidationDoc(i, frac, seed) ? valid : train;
    if (sft) (target as SftPacker).add(recordSft(record, (options as SftSourceOptions).fields, origin));
    else (target as PretrainPacker).add(recordText(record, { textField: (options as PretrainSourceOptions).textField }, origin));
    i++;
  }
  return { train: train.finish(), valid: valid?.finish(true) };
}
