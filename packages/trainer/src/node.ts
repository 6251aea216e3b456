/**
 * Node-only parts of the trainer: `@midtrain/trainer/node`. Checkpoints in a folder, a JSONL
 * metrics file, and SIGINT/SIGTERM handling that lets the trainer checkpoint and exit cleanly.
 */
import { randomBytes } from "node:crypto";
import { promises as fs } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { type MetricsRecord, type MetricsSink, recordToJson } from "./metrics.js";
import type { CheckpointStorage } from "./storage.js";

function checkName(name: string, what: string): void {
  if (!name || name.startsWith(".") || /[/\\]/.test(name) || name === "..") {
    throw new Error(`${what} '${name}' must be a plain name (no path separators, not starting with '.')`);
  }
}

/**
 * Checkpoints as folders of files under `root`: `root/<checkpoint>/<file>`. A checkpoint is
 * written into a hidden temporary folder (each file fsynced) and renamed into place, so a
 * crash or a failed write never leaves a torn checkpoint and never touches the others.
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
    const target = join(this.location, checkpoint);
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
      let old: string | undefined;
      try {
        await fs.rename(tmp, target);
      } catch (e) {
        const code = (e as NodeJS.ErrnoException).code;
        if (code !== "ENOTEMPTY" && code !== "EEXIST") throw e;
        // Replace an existing checkpoint of the same name: move it aside, then swap in.
        old = join(this.location, `.old-${checkpoint}-${tag}`);
        await fs.rename(target, old);
        await fs.rename(tmp, target);
      }
      if (old) await fs.rm(old, { recursive: true, force: true });
      await syncDir(this.location);
    } catch (e) {
      await fs.rm(tmp, { recursive: true, force: true }).catch(() => {});
      throw e;
    }
  }

  async delete(checkpoint: string): Promise<void> {
    checkName(checkpoint, "checkpoint");
    const target = join(this.location, checkpoint);
    const trash = join(this.location, `.del-${checkpoint}-${process.pid}-${randomBytes(4).toString("hex")}`);
    try {
      await fs.rename(target, trash); // atomic disappearance, then the slow removal
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === "ENOENT") return;
      throw e;
    }
    await fs.rm(trash, { recursive: true, force: true });
  }

  /** Removes temporary folders left by killed writers. Resolves to their names. */
  async cleanTemporary(): Promise<string[]> {
    let names: string[];
    try {
      names = await fs.readdir(this.location);
    } catch {
      return [];
    }
    const stale = names.filter((n) => /^\.(tmp|old|del)-/.test(n));
    for (const n of stale) await fs.rm(join(this.location, n), { recursive: true, force: true });
    return stale;
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

/** Appends one JSON line per record to a file (created with its folder). */
export class JsonlSink implements MetricsSink {
  readonly path: string;
  private handle: Promise<import("node:fs/promises").FileHandle> | undefined;

  constructor(path: string) {
    this.path = resolve(path);
  }

  private open() {
    this.handle ??= fs.mkdir(dirname(this.path), { recursive: true }).then(() => fs.open(this.path, "a"));
    return this.handle;
  }

  async write(record: MetricsRecord): Promise<void> {
    const fh = await this.open();
    await fh.appendFile(`${recordToJson(record)}\n`);
  }

  async close(): Promise<void> {
    if (!this.handle) return;
    const fh = await this.handle;
    this.handle = undefined;
    await fh.close();
  }
}

/** Reads a JSONL metrics file back. */
export async function readJsonl(path: string): Promise<MetricsRecord[]> {
  const text = await fs.readFile(path, "utf8");
  return text
    .split("\n")
    .filter((l) => l.trim())
    .map((l) => JSON.parse(l));
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
export function installSignalHandlers(
  options: { signals?: NodeJS.Signals[]; onSignal?: (sig: NodeJS.Signals) => void } = {},
): SignalHandlers {
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
