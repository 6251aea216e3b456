/**
 * The public API of `@midtrain/data`, the browser-safe core: tokenizers, records, packing,
 * sources, the mixer and the shipped corpora's packing rules. Node-only file access is in
 * `./node.ts` (`@midtrain/data/node`). Everything not listed here is internal to the package.
 */
export {
  DataConfigError,
  DataError,
  EmptySourceError,
  EpochLimitError,
  InvalidWeightsError,
  MalformedInputError,
  MissingFileError,
  UnknownSourceError,
} from "./errors.js";
export {
  BpeTokenizer,
  ByteTokenizer,
  byteTokenizer,
  type HfTokenizerOptions,
  loadHfTokenizer,
  type Tokenizer,
  TokenizerFormatError,
  UnsupportedTokenizerError,
} from "./tokenizer.js";
export {
  type RecordOrigin,
  recordSft,
  recordText,
  type SftExample,
  type SftFieldOptions,
  type TextFieldOptions,
} from "./records.js";
export {
  isValidationDoc,
  type PackedSource,
  PretrainPacker,
  type PretrainPackOptions,
  packPretrain,
  packSft,
  SftPacker,
  type SftPackOptions,
  splitDocuments,
} from "./pack.js";
export {
  type BuiltSource,
  buildSource,
  type PretrainSourceOptions,
  type SftSourceOptions,
  type SourcedRecord,
  type SourceOptions,
} from "./source.js";
export {
  type Batch,
  createMixer,
  evalBatches,
  type Mixer,
  type MixerOptions,
  type MixerState,
  type MixtureScheduleLike,
  type SourceCounters,
  type SourceStats,
  type TrainingTime,
} from "./mixer.js";
export { countTargetBytes } from "./bytes.js";
export { type BpeTrainOptions, type BpeTrainProgress, type BpeTrainResult, type BpeTrainSource, trainBpeTokenizer } from "./bpe/train.js";
export {
  buildCorpusSource,
  type CorpusInfo,
  type CorpusManifest,
  type CorpusSourceOptions,
  corpusEntry,
  parseJsonl,
} from "./corpus.js";
export {
  isValidationText,
  memoryShard,
  type ShardData,
  type StoreInput,
  type StoreManifest,
  type StoreShard,
  type StoreSourceOptions,
  type StoreSplit,
  StoreSplitReader,
  type StoreSplitTotals,
  storeSource,
  TokenStoreError,
  tokenizerFingerprint,
} from "./store.js";
