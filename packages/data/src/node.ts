/**
 * The public API of `@midtrain/data/node`: file readers, the shipped corpora and the
 * declarative source specs an experiment config names. It holds only the Node-only additions;
 * tokenizers, packing and the mixer come from the core entry, `@midtrain/data`. Everything not
 * listed here (format detection, the corpora folder) is internal.
 */
export {
  corpusManifest,
  corpusPath,
  type FileFormat,
  listCorpora,
  loadCorpus,
  loadCorpusSource,
  loadSource,
  loadSourceSpec,
  loadTokenizer,
  type ParquetReadOptions,
  type ReadOptions,
  readJsonl,
  readParquet,
  readRecords,
  readText,
  type SourceSpec,
  type TextReadOptions,
  type TokenizerSpec,
} from "./files.js";
export { createEncodePool, type EncodePool, type EncodePoolOptions, encodeParallel } from "./bpe/pool.js";
export {
  fileShard,
  isTokenStore,
  openTokenStore,
  prepare,
  type PrepareOptions,
  type PrepareProgress,
  type PrepareResult,
  resolveInputs,
  StoreLockedError,
  StoreMismatchError,
  StoreWriteError,
  type TokenStore,
} from "./prepare.js";
