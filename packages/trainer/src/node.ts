/**
 * Node-only parts of the trainer: `@midtrain/trainer/node`. Checkpoints in a folder, a JSONL
 * metrics file, and SIGINT/SIGTERM handling that lets the trainer checkpoint and exit cleanly.
 */
import { randomBytes } from "node:crypto";
import { promises as fs } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { TrainerError } from "./errors.js";
import { type MetricsRecord, type MetricsSink, recordToJson } from "./metrics.js";
import type { CheckpointStorage } from "./storage.js";

function checkName(name: string, what: string): void {
  if (!name || name.startsWith(".") || /[/\\]/.test(name) || name === "..") {
    throw new Error(`${what} '${name}' must be a plain name (no path separators, not starting with '.')`);
  }
}

/** Temporary folders of writes in progress in this process (never cleaned by {@link FsStorage.cleanTemporary}). */
const inProgress = new Set<string>();

/** `.tmp-<checkpoint>-<pid>-<hex>`, `.old-…`, `.del-…`: what a write or delete leaves while it runs. */
const TEMPORARY = /^\.(tmp|old|del)-(.+)-(\d+)-([0-9a-f]+)$/;

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === "EPERM"; // exists, owned by someone else
  }
}

/**
 * Checkpoints as folders of files under `root`: `root/<checkpoint>/<file>`. A checkpoint is
 * written into a hidden temporary folder (each file fsynced) and renamed into place, so a
 * crash or a failed write never leaves a torn checkpoint and never touches the others. A
 * process killed mid-write leaves a hidden folder behind; {@link FsStorage.cleanTemporary}
 * removes those (`trainPhase` calls it at the start of each phase that checkpoints here).
 */
export class FsStorage implements CheckpointStorage {
  readonly location: string;

  constructor(root: string) {
    this.location = resolve(root);
  }

  async list(): Promise<string[]> {
    let entries: import("node:fs").Dirent[];
    try {
      entries = await fs.readdir(this.location, { withFileTypes: true });
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === "ENOENT") return [];
      throw e;
    }
    return entries.filter((e) => e.isDirectory() && !e.name.startsWith(".")).map((e) => e.name);
  }

  async read(checkpoint: string, file: string): Promise<Uint8Array> {
    checkName(checkpoint, "checkpoint");
    checkName(file, "file");
    return new Uint8Array(await fs.readFile(join(this.location, checkpoint, file)));
  }

  async write(checkpoint: string, files: Record<string, Uint8Array>): Promise<void> {
    checkName(checkpoint, "checkpoint");
    for (const f of Object.keys(files)) checkName(f, "file");
    await fs.mkdir(this.location, { recursive: true });
    const tag = `${process.pid}-${randomBytes(4).toString("hex")}`;
    const tmp = join(this.location, `.tmp-${checkpoint}-${tag}`);
    const old = join(this.location, `.old-${checkpoint}-${tag}`);
    const target = join(this.location, checkpoint);
    inProgress.add(tmp).add(old);
    try {
      await fs.mkdir(tmp);
      for (const [name, data] of Object.entries(files)) {
        const fh = await fs.open(join(tmp, name), "w");
        try {
          await fh.writeFile(data);
          await fh.sync();
        } finally {
          await fh.close();
        }
      }
      let replaced = false;
      try {
        await fs.rename(tmp, target);
      } catch (e) {
        const code = (e as NodeJS.ErrnoException).code;
        if (code !== "ENOTEMPTY" && code !== "EEXIST") throw e;
        // Replace an existing checkpoint of the same name: move it aside, then swap in.
        await fs.rename(target, old);
        replaced = true;
        await fs.rename(tmp, target);
      }
      if (replaced) await fs.rm(old, { recursive: true, force: true });
      await syncDir(this.location);
    } catch (e) {
      await fs.rm(tmp, { recursive: true, force: true }).catch(() => {});
      throw e;
    } finally {
      inProgress.delete(tmp);
      inProgress.delete(old);
    }
  }

  async delete(checkpoint: string): Promise<void> {
    checkName(checkpoint, "checkpoint");
    const target = join(this.location, checkpoint);
    const trash = join(this.location, `.del-${checkpoint}-${process.pid}-${randomBytes(4).toString("hex")}`);
    inProgress.add(trash);
    try {
      try {
        await fs.rename(target, trash); // atomic disappearance, then the slow removal
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code === "ENOENT") return;
        throw e;
      }
      await fs.rm(trash, { recursive: true, force: true });
    } finally {
      inProgress.delete(trash);
    }
  }

  /**
   * Removes what killed writers left in the folder: `.tmp-*` (an unfinished write), `.del-*` (an
   * unfinished delete) and `.old-*` (the previous version of a replaced checkpoint). If a writer
   * died between moving a checkpoint aside and moving its replacement in, the `.old-*` folder is
   * the only copy, and it is moved back under its name instead. Folders of writes still running
   * (in this process, or in another live process) are left alone. Cheap when there is nothing to
   * do (one directory listing); call it before writing into a folder that a killed process may
   * have used. Resolves to the names it removed or moved back.
   */
  async cleanTemporary(): Promise<string[]> {
    let names: string[];
    try {
      names = await fs.readdir(this.location);
    } catch {
      return [];
    }
    const present = new Set(names);
    const handled: string[] = [];
    for (const n of names) {
      const m = TEMPORARY.exec(n);
      if (!m) continue;
      const path = join(this.location, n);
      const pid = Number(m[3]);
      if (inProgress.has(path) || (pid !== process.pid && processAlive(pid))) continue;
      const [, kind, checkpoint] = m;
      if (kind === "old" && !present.has(checkpoint)) {
        await fs.rename(path, join(this.location, checkpoint));
        present.add(checkpoint);
      } else {
        await fs.rm(path, { recursive: true, force: true });
      }
      handled.push(n);
    }
    if (handled.length) await syncDir(this.location);
    return handled;
  }
}

async function syncDir(dir: string): Promise<void> {
  try {
    const fh = await fs.open(dir, "r");
    try {
      await fh.sync();
    } finally {
      await fh.close();
    }
  } catch {
    // Not every platform can fsync a directory; the rename is still atomic.
  }
}

/** A metrics (JSONL) file has a line that is not JSON, other than a torn last line. */
export class MetricsFileError extends TrainerError {
  readonly path: string;
  /** 1-based line number. */
  readonly line: number;
  constructor(path: string, line: number, detail: string) {
    super(
      `${path}:${line}: ${detail}. Only the last line of a metrics file may be incomplete (a write cut short); ` +
        "fix or delete this line, or restore the file.",
    );
    this.path = path;
    this.line = line;
  }
}

/** The incomplete last line of a JSONL file (a process died or the disk filled up mid-write). */
export interface TornTail {
  path: string;
  /** 1-based line number of the incomplete line. */
  line: number;
  /** Its size in bytes. */
  bytes: number;
}

const NL = 0x0a;

/** Whether `bytes` (a line without its newline) is a JSON value. */
function isJson(bytes: Uint8Array): boolean {
  try {
    JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(bytes));
    return true;
  } catch {
    return false;
  }
}

/**
 * Appends one JSON line per record to a file (created with its folder). Each record is written
 * as one complete line in one write. On opening, a file that does not end with a newline (a
 * process died or the disk filled up mid-write) is repaired first: an incomplete last line is
 * cut off (see {@link JsonlSink.repairedTail}), a complete one gets its newline; so appending
 * never glues a record onto a torn one. A write that fails part-way is cut back the same way
 * before the next one.
 */
export class JsonlSink implements MetricsSink {
  readonly path: string;
  /** The torn last line removed when the file was opened, if there was one. */
  repairedTail: TornTail | undefined;
  private handle: Promise<import("node:fs/promises").FileHandle> | undefined;
  /** Size of the file up to its last complete line. */
  private size = 0;
  /** A write failed; the file may end with part of a line. */
  private dirty = false;

  constructor(path: string) {
    this.path = resolve(path);
  }

  private open() {
    this.handle ??= (async () => {
      await fs.mkdir(dirname(this.path), { recursive: true });
      await this.repair();
      return fs.open(this.path, "a");
    })();
    return this.handle;
  }

  /** Cuts the file back to its last complete line (or completes a last line that is whole JSON). */
  private async repair(): Promise<void> {
    let fh: import("node:fs/promises").FileHandle;
    try {
      fh = await fs.open(this.path, "r+");
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === "ENOENT") return;
      throw e;
    }
    try {
      const { size } = await fh.stat();
      this.size = size;
      if (size === 0) return;
      const last = new Uint8Array(1);
      await fh.read(last, 0, 1, size - 1);
      if (last[0] === NL) return;
      // Find the start of the last line, reading backwards in chunks.
      let start = 0;
      const chunk = new Uint8Array(64 * 1024);
      for (let end = size; end > 0 && start === 0; ) {
        const from = Math.max(0, end - chunk.length);
        await fh.read(chunk, 0, end - from, from);
        const i = chunk.subarray(0, end - from).lastIndexOf(NL);
        if (i >= 0) start = from + i + 1;
        end = from;
      }
      const tail = new Uint8Array(size - start);
      await fh.read(tail, 0, tail.length, start);
      if (isJson(tail)) {
        await fh.write(new Uint8Array([NL]), 0, 1, size);
        this.size = size + 1;
      } else {
        let line = 1;
        for (let pos = 0; pos < start; ) {
          const n = Math.min(chunk.length, start - pos);
          await fh.read(chunk, 0, n, pos);
          for (let i = 0; i < n; i++) if (chunk[i] === NL) line++;
          pos += n;
        }
        await fh.truncate(start);
        this.size = start;
        this.repairedTail = { path: this.path, line, bytes: size - start };
      }
      await fh.sync();
    } finally {
      await fh.close();
    }
  }

  async write(record: MetricsRecord): Promise<void> {
    const fh = await this.open();
    if (this.dirty) {
      await fh.truncate(this.size);
      this.dirty = false;
    }
    const line = new TextEncoder().encode(`${recordToJson(record)}\n`);
    try {
      const { bytesWritten } = await fh.write(line, 0, line.length);
      if (bytesWritten !== line.length) throw new Error(`only ${bytesWritten} of ${line.length} bytes were written`);
    } catch (e) {
      this.dirty = true;
      throw new Error(`cannot append a metrics record to ${this.path}: ${(e as Error).message}`, { cause: e });
    }
    this.size += line.length;
  }

  async close(): Promise<void> {
    if (!this.handle) return;
    const fh = await this.handle;
    this.handle = undefined;
    await fh.close();
  }
}

export interface ReadJsonlOptions {
  /** Called when the file ends with an incomplete line, which is left out of the result. */
  onTornTail?(tail: TornTail): void;
}

/**
 * Reads a JSONL metrics file back. An incomplete last line (no newline, not JSON: a write cut
 * short) is left out and reported to `onTornTail`; any other line that is not JSON throws
 * {@link MetricsFileError} with the file and line number.
 */
export async function readJsonl(path: string, options: ReadJsonlOptions = {}): Promise<MetricsRecord[]> {
  const buf = await fs.readFile(path);
  const lines = buf.toString("utf8").split("\n");
  const out: MetricsRecord[] = [];
  for (let i = 0; i < lines.length; i++) {
    const l = lines[i];
    if (!l.trim()) continue;
    try {
      out.push(JSON.parse(l));
    } catch (e) {
      if (i === lines.length - 1) {
        // No newline after it: a torn last line.
        options.onTornTail?.({ path, line: i + 1, bytes: buf.length - (buf.lastIndexOf(NL) + 1) });
        break;
      }
      throw new MetricsFileError(path, i + 1, `not valid JSON (${(e as Error).message})`);
    }
  }
  return out;
}

export interface SignalHandlers {
  /** Aborted on the first signal: pass it to `trainPhase`, which checkpoints and returns. */
  signal: AbortSignal;
  /** The signal received, if any. */
  received(): NodeJS.Signals | undefined;
  /** Removes the handlers. */
  dispose(): void;
}

/**
 * Turns SIGINT/SIGTERM into an AbortSignal so training stops after the current step with a
 * checkpoint. A second signal exits at once with code 128 + signal number.
 */
export function installSignalHandlers(options: { signals?: NodeJS.Signals[]; onSignal?: (sig: NodeJS.Signals) => void } = {}): SignalHandlers {
  const controller = new AbortController();
  const signals = options.signals ?? ["SIGINT", "SIGTERM"];
  let got: NodeJS.Signals | undefined;
  const handler = (sig: NodeJS.Signals) => {
    if (got) {
      const num = sig === "SIGINT" ? 2 : sig === "SIGTERM" ? 15 : 1;
      process.exit(128 + num);
    }
    got = sig;
    options.onSignal?.(sig);
    controller.abort(new Error(`received ${sig}`));
  };
  for (const s of signals) process.on(s, handler);
  return {
    signal: controller.signal,
    received: () => got,
    dispose: () => {
      for (const s of signals) process.off(s, handler);
    },
  };
}
