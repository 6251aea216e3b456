import type { ExperimentData, RunEnv } from "@midtrain/experiments";
import { IdbStorage, idbSink, readJson, readMetrics, rewindMetrics, writeJson } from "./idb.js";

/**
 * The browser's RunEnv: the run's files live in one IndexedDB database (see idb.ts), the data
 * comes from `loadData` (the served corpora), loaded once per page.
 */
export function browserEnv(db: IDBDatabase, loadData: RunEnv["loadData"]): RunEnv {
  let cached: Promise<ExperimentData> | undefined;
  return {
    loadData(config) {
      cached ??= loadData(config);
      return cached;
    },
    storage: (p) => new IdbStorage(db, p),
    sink: (p) => idbSink(db, p),
    readMetrics: (p) => readMetrics(db, p),
    rewindMetrics: (p, maxStep) => rewindMetrics(db, p, maxStep),
    readJson: <T>(p: string) => readJson<T>(db, p),
    writeJson: (p, v) => writeJson(db, p, v),
  };
}
