/**
 * Where checkpoints live. A checkpoint is a named set of files; {@link CheckpointStorage.write}
 * makes all of them visible at once or none of them, so a crash never leaves a torn checkpoint.
 * The Node file-system implementation is in `@midtrain/trainer/node`; a page can implement the
 * interface over IndexedDB or OPFS.
 */
export interface CheckpointStorage {
  /** Names of the complete checkpoints (any order). */
  list(): Promise<string[]>;
  /** One file of a checkpoint; rejects when the checkpoint or file does not exist. */
  read(checkpoint: string, file: string): Promise<Uint8Array>;
  /**
   * Writes every file of a checkpoint atomically, replacing a checkpoint of the same name.
   * On failure, rejects and leaves the existing checkpoints as they were.
   */
  write(checkpoint: string, files: Record<string, Uint8Array>): Promise<void>;
  /** Removes a checkpoint (no error when absent). */
  delete(checkpoint: string): Promise<void>;
  /**
   * Removes what writers that were killed mid-write left behind (temporary folders, half-deleted
   * checkpoints), never a complete checkpoint nor a write in progress; resolves to what it
   * removed. Optional; cheap when there is nothing to remove. The owner of a storage calls it
   * before writing: `trainPhase`'s checkpointing does, once at the start of each phase.
   */
  cleanTemporary?(): Promise<string[]>;
  /** Where the checkpoints are, for lineage records and messages (a folder path, a database name). */
  readonly location?: string;
}

/** Checkpoints in memory (tests, short browser sessions). Files are copied on write and read. */
export class MemoryStorage implements CheckpointStorage {
  readonly location: string;
  protected readonly checkpoints = new Map<string, Map<string, Uint8Array>>();

  constructor(location = "memory") {
    this.location = location;
  }

  async list(): Promise<string[]> {
    return [...this.checkpoints.keys()];
  }

  async read(checkpoint: string, file: string): Promise<Uint8Array> {
    const c = this.checkpoints.get(checkpoint);
    if (!c) throw new Error(`no checkpoint '${checkpoint}' in ${this.location}`);
    const f = c.get(file);
    if (!f) throw new Error(`checkpoint '${checkpoint}' in ${this.location} has no file '${file}'`);
    return f.slice();
  }

  async write(checkpoint: string, files: Record<string, Uint8Array>): Promise<void> {
    const copy = new Map(Object.entries(files).map(([k, v]) => [k, v.slice()]));
    this.checkpoints.set(checkpoint, copy);
  }

  async delete(checkpoint: string): Promise<void> {
    this.checkpoints.delete(checkpoint);
  }
}
