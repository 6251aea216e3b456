import type { CheckpointStorage, MetricsRecord, MetricsSink } from "@midtrain/trainer";

/**
 * A run kept in one IndexedDB database, so a reload of the page resumes it:
 * - `checkpoints`: one marker per complete checkpoint (key `<storage>/<checkpoint>`), holding its file names;
 * - `files`: the checkpoint files (key `<storage>/<checkpoint>/<file>`, value a Uint8Array);
 * - `metrics`: metrics records (auto-increment key, `path` index);
 * - `json`: JSON documents (plan, outcomes, results) by path.
 * A checkpoint's marker and files are written in one transaction, so a checkpoint is
 * either complete or absent (IndexedDB transactions are atomic, also across a reload or crash).
 */
const STORES = ["checkpoints", "files", "metrics", "json"] as const;

function req<T>(r: IDBRequest<T>): Promise<T> {
  return new Promise((resolve, reject) => {
    r.onsuccess = () => resolve(r.result);
    r.onerror = () => reject(r.error);
  });
}

function done(tx: IDBTransaction): Promise<void> {
  return new Promise((resolve, reject) => {
    tx.oncomplete = () => resolve();
    tx.onerror = () => reject(tx.error);
    tx.onabort = () => reject(tx.error ?? new Error("IndexedDB transaction aborted"));
  });
}

export function openRunDb(name: string): Promise<IDBDatabase> {
  const open = indexedDB.open(name, 1);
  open.onupgradeneeded = () => {
    const db = open.result;
    db.createObjectStore("checkpoints");
    db.createObjectStore("files");
    db.createObjectStore("metrics", { autoIncrement: true }).createIndex("path", "path");
    db.createObjectStore("json");
  };
  return req(open);
}

export async function deleteRunDb(name: string): Promise<void> {
  await req(indexedDB.deleteDatabase(name));
}

/** Keys in `[prefix, prefix + '\uffff')`. */
const under = (prefix: string) => IDBKeyRange.bound(prefix, `${prefix}\uffff`, false, true);

interface Marker {
  files: string[];
  step?: number;
  writtenAt: number;
}

/** CheckpointStorage on IndexedDB: `<root>/<checkpoint>/<file>`. */
export class IdbStorage implements CheckpointStorage {
  readonly location: string;
  constructor(
    private readonly db: IDBDatabase,
    private readonly root: string,
  ) {
    this.location = `indexeddb:${db.name}/${root}`;
  }

  async list(): Promise<string[]> {
    const tx = this.db.transaction("checkpoints", "readonly");
    const keys = (await req(tx.objectStore("checkpoints").getAllKeys(under(`${this.root}/`)))) as string[];
    return keys.map((k) => k.slice(this.root.length + 1)).filter((k) => !k.includes("/"));
  }

  async read(checkpoint: string, file: string): Promise<Uint8Array> {
    const tx = this.db.transaction(["checkpoints", "files"], "readonly");
    const marker = (await req(tx.objectStore("checkpoints").get(`${this.root}/${checkpoint}`))) as Marker | undefined;
    if (!marker) throw new Error(`no checkpoint '${checkpoint}' in ${this.location}`);
    const data = (await req(tx.objectStore("files").get(`${this.root}/${checkpoint}/${file}`))) as Uint8Array | undefined;
    if (!data) throw new Error(`checkpoint '${checkpoint}' in ${this.location} has no file '${file}'`);
    return data;
  }

  async write(checkpoint: string, files: Record<string, Uint8Array>): Promise<void> {
    const key = `${this.root}/${checkpoint}`;
    const tx = this.db.transaction(["checkpoints", "files"], "readwrite");
    const finished = done(tx);
    const fileStore = tx.objectStore("files");
    fileStore.delete(under(`${key}/`));
    for (const [name, data] of Object.entries(files)) fileStore.put(data.slice(), `${key}/${name}`);
    const m = /^ckpt-(\d+)$/.exec(checkpoint);
    const marker: Marker = { files: Object.keys(files), writtenAt: Date.now(), ...(m ? { step: Number(m[1]) } : {}) };
    tx.objectStore("checkpoints").put(marker, key);
    await finished;
  }

  async delete(checkpoint: string): Promise<void> {
    const key = `${this.root}/${checkpoint}`;
    const tx = this.db.transaction(["checkpoints", "files"], "readwrite");
    const finished = done(tx);
    tx.objectStore("checkpoints").delete(key);
    tx.objectStore("files").delete(under(`${key}/`));
    await finished;
  }
}

/** Appends metrics records of one path (the JSONL file of the Node env). */
class IdbSink implements MetricsSink {
  constructor(
    private readonly db: IDBDatabase,
    private readonly path: string,
  ) {}
  async write(record: MetricsRecord): Promise<void> {
    const tx = this.db.transaction("metrics", "readwrite");
    const finished = done(tx);
    tx.objectStore("metrics").add({ path: this.path, record });
    await finished;
  }
}

/** Every complete checkpoint in the database, newest write first. */
export async function allCheckpoints(db: IDBDatabase): Promise<Array<{ storage: string; id: string; step?: number; writtenAt: number }>> {
  const tx = db.transaction("checkpoints", "readonly");
  const store = tx.objectStore("checkpoints");
  const [keys, values] = await Promise.all([req(store.getAllKeys()), req(store.getAll())]);
  return (keys as string[])
    .map((k, i) => {
      const cut = k.lastIndexOf("/");
      const m = values[i] as Marker;
      return { storage: k.slice(0, cut), id: k.slice(cut + 1), step: m.step, writtenAt: m.writtenAt };
    })
    .sort((a, b) => b.writtenAt - a.writtenAt);
}

export async function readJson<T>(db: IDBDatabase, path: string): Promise<T | undefined> {
  const tx = db.transaction("json", "readonly");
  return (await req(tx.objectStore("json").get(path))) as T | undefined;
}

export async function writeJson(db: IDBDatabase, path: string, value: unknown): Promise<void> {
  const tx = db.transaction("json", "readwrite");
  const finished = done(tx);
  // A structured clone of plain JSON (no class instances or undefined holes survive either way).
  tx.objectStore("json").put(JSON.parse(JSON.stringify(value)), path);
  await finished;
}

export async function readMetrics(db: IDBDatabase, path: string): Promise<MetricsRecord[]> {
  const tx = db.transaction("metrics", "readonly");
  const rows = (await req(tx.objectStore("metrics").index("path").getAll(IDBKeyRange.only(path)))) as Array<{ record: MetricsRecord }>;
  return rows.map((r) => r.record);
}

/**
 * Keeps the metrics records of `path` whose step is at most `maxStep` (all for Infinity, none
 * for -1), so a job resumed from its checkpoint writes the redone steps' records once. Records
 * are whole (one transaction each), so there is no torn tail to drop.
 */
export async function rewindMetrics(db: IDBDatabase, path: string, maxStep: number): Promise<void> {
  if (maxStep === Number.POSITIVE_INFINITY) return;
  const tx = db.transaction("metrics", "readwrite");
  const finished = done(tx);
  const cursors = tx.objectStore("metrics").index("path").openCursor(IDBKeyRange.only(path));
  cursors.onsuccess = () => {
    const cursor = cursors.result;
    if (!cursor) return;
    if ((cursor.value as { record: MetricsRecord }).record.step > maxStep) cursor.delete();
    cursor.continue();
  };
  await finished;
}

export { STORES };
export const idbSink = (db: IDBDatabase, path: string): MetricsSink => new IdbSink(db, path);
