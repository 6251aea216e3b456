/**
 * The shared storage folder of a sweep (`--storage`): every worker must see the same folder.
 * `midtrain run --queue` leaves a marker file with a random token in it and records the token in
 * Redis; a worker whose folder has no marker or another token is not looking at the shared
 * folder (an unmounted network share, a typo) and refuses to start.
 */
import { randomBytes } from "node:crypto";
import { mkdir, readFile, rm, writeFile } from "node:fs/promises";
import { join, resolve } from "node:path";
import { ExperimentError } from "../errors.js";
import { checkRunFolder } from "../lock.js";
import { writeFileAtomic } from "../report/write.js";

export const STORAGE_MARKER = ".midtrain-storage.json";

/** The storage folder cannot be used (not writable, not the shared one). */
export class StorageError extends ExperimentError {}

interface Marker {
  token: string;
  createdAt: string;
}

async function readMarker(dir: string): Promise<Marker | undefined> {
  try {
    return JSON.parse(await readFile(join(dir, STORAGE_MARKER), "utf8")) as Marker;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw new StorageError(`${join(dir, STORAGE_MARKER)} cannot be read (${(e as Error).message}); delete it and enqueue again`);
  }
}

/** Writes and removes a probe file: the folder must take new files. */
async function checkWritable(dir: string): Promise<void> {
  const probe = join(dir, `.write-probe-${process.pid}-${randomBytes(4).toString("hex")}`);
  try {
    await writeFile(probe, "ok");
    await rm(probe, { force: true });
  } catch (e) {
    throw new StorageError(`--storage ${dir} is not writable (${(e as Error).message}); give a folder every worker can write to`);
  }
}

/** For `run --queue`: creates the folder and its marker when missing; returns the marker's token. */
export async function claimStorage(dir: string): Promise<{ dir: string; token: string }> {
  const abs = checkRunFolder(resolve(dir));
  try {
    await mkdir(abs, { recursive: true });
  } catch (e) {
    throw new StorageError(`cannot create --storage ${abs} (${(e as Error).message})`);
  }
  await checkWritable(abs);
  const found = await readMarker(abs);
  if (found) return { dir: abs, token: found.token };
  const marker: Marker = { token: randomBytes(12).toString("hex"), createdAt: new Date().toISOString() };
  await writeFileAtomic(join(abs, STORAGE_MARKER), `${JSON.stringify(marker, null, 2)}\n`);
  return { dir: abs, token: marker.token };
}

/** For a worker: the folder must be writable and hold the marker whose token Redis has. */
export async function checkStorage(dir: string, token: string | null, url: string): Promise<string> {
  const abs = resolve(dir);
  const found = await readMarker(abs).catch((e) => {
    if ((e as NodeJS.ErrnoException).code === "ENOTDIR") return undefined;
    throw e;
  });
  if (token === null) {
    throw new StorageError(
      `the queue at ${url} has no sweep yet (no storage marker recorded); enqueue one with midtrain run <config> --queue ${url} --storage DIR first`,
    );
  }
  if (!found) {
    throw new StorageError(
      `--storage ${abs} is not the sweep's shared storage: it has no ${STORAGE_MARKER} (is the shared file system mounted here?). Give the folder that midtrain run --queue was given, as this host sees it`,
    );
  }
  if (found.token !== token) {
    throw new StorageError(
      `--storage ${abs} is another storage folder than the one the sweeps of ${url} use (marker ${found.token}, the queue's is ${token}); give the shared folder that midtrain run --queue was given`,
    );
  }
  await checkWritable(abs);
  return abs;
}
