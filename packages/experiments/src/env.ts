import type { BuiltSource, Tokenizer } from "@midtrain/data";
import type { CheckpointStorage, MetricsRecord, MetricsSink } from "@midtrain/trainer";
import type { ExperimentConfig } from "./config.js";

/** Tokenized, packed data of an experiment, shared by its jobs. */
export interface ExperimentData {
  tokenizer: Tokenizer;
  /** Pretraining sources (train + valid). */
  sources: Record<string, Required<BuiltSource>>;
  /** SFT sets (train + valid). */
  sft: Record<string, Required<BuiltSource>>;
}

/**
 * Where an experiment keeps its files and how it reads its data. Node uses folders
 * (`nodeEnv` in `@midtrain/experiments/node`); a browser page can keep them in IndexedDB/OPFS.
 * Paths are `/`-joined keys relative to the run's root.
 */
export interface RunEnv {
  loadData(config: ExperimentConfig): Promise<ExperimentData>;
  storage(path: string): CheckpointStorage;
  sink(path: string): MetricsSink;
  /**
   * The records of a metrics file. A torn last line (a process killed mid-write) is left out
   * and reported through `onTorn`; any other malformed line is an error naming file and line.
   */
  readMetrics(path: string, onTorn?: (where: string) => void): Promise<MetricsRecord[]>;
  /**
   * Keeps the records of a metrics file whose step is at most `maxStep` (all of them for
   * Infinity, none for -1) and drops a torn last line: a resumed job redoes the steps after
   * its checkpoint, so their records are written once.
   */
  rewindMetrics(path: string, maxStep: number): Promise<void>;
  readJson<T>(path: string): Promise<T | undefined>;
  /** Imports a schedule plugin named in the config (default: a plain dynamic import). */
  importModule?(specifier: string): Promise<unknown>;
  /** Atomic: the file is either absent or complete. */
  writeJson(path: string, value: unknown): Promise<void>;
}
