export * from "./errors.js";
export { ByteTokenizer, byteTokenizer, loadHfTokenizer, type Tokenizer, type HfTokenizerOptions } from "./tokenizer.js";
export {
  recordText,
  recordSft,
  type SftExample,
  type SftFieldOptions,
  type TextFieldOptions,
  type RecordOrigin,
} from "./records.js";
export {
  PretrainPacker,
  SftPacker,
  packPretrain,
  packSft,
  isValidationDoc,
  splitDocuments,
  type PackedSource,
  type PretrainPackOptions,
  type SftPackOptions,
} from "./pack.js";
export {
  buildSource,
  type BuiltSource,
  type SourceOptions,
  type PretrainSourceOptions,
  type SftSourceOptions,
  type SourcedRecord,
} from "./source.js";
export {
  createMixer,
  evalBatches,
  normaliseWeights,
  type Batch,
  type Mixer,
  type MixerOptions,
  type MixerState,
  type MixtureScheduleLike,
  type SourceCounters,
  type SourceStats,
  type TrainingTime,
} from "./mixer.js";
export { countTargetBytes } from "./bytes.js";
export {
  buildCorpusSource,
  corpusEntry,
  parseJsonl,
  type CorpusInfo,
  type CorpusManifest,
  type CorpusSourceOptions,
} from "./corpus.js";
