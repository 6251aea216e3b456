/**
 * One process trains a job at a time, whatever the queue does: BullMQ delivers a job at least
 * once (a worker that loses its lock, or whose host seems lost, has its job given to another),
 * so the process that trains holds a lock on the shared storage for the job (proper-lockfile: an
 * atomic mkdir refreshed while it lives, stale 30 s after its last refresh, which works on network
 * file systems). A second delivery waits for the first holder to finish or die; a holder that died on
 * the same host (kill -9) is taken over at once.
 */
import { mkdir, readFile, rm } from "node:fs/promises";
import { hostname } from "node:os";
import { join } from "node:path";
import lockfile from "proper-lockfile";
import { writeFileAtomic } from "../report/write.js";

const STALE_MS = 30_000;
const UPDATE_MS = 5_000;

export interface JobLockHolder {
  pid: number;
  host: string;
  since: string;
}

export interface JobLock {
  release(): Promise<void>;
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === "EPERM";
  }
}

/** A file name for a job id (ids hold `/`, `@`, `:`). */
const safeName = (id: string) => id.replace(/[^A-Za-z0-9._-]/g, (c) => `_${c.charCodeAt(0).toString(16)}`);

/** The file that names the process holding job `id`'s lock in run folder `root` (while it is held). */
export const jobLockOwnerPath = (root: string, id: string) => join(root, ".jobs", `${safeName(id)}.owner.json`);

/**
 * Takes the lock of job `id` in the run folder `root` (under `.jobs/`), waiting while a live
 * process holds it; `onWait` is told once who holds it.
 */
export async function acquireJobLock(root: string, id: string, onWait?: (holder: JobLockHolder | undefined) => void, pollMs = 500): Promise<JobLock> {
  const dir = join(root, ".jobs");
  await mkdir(dir, { recursive: true });
  const base = join(dir, safeName(id));
  const ownerPath = jobLockOwnerPath(root, id);
  const options = {
    lockfilePath: `${base}.lock`,
    realpath: false,
    stale: STALE_MS,
    update: UPDATE_MS,
    retries: 0,
    onCompromised: (err: Error) => console.error(`[midtrain] warning: the lock of job ${id} was not refreshed in time (${err.message})`),
  };
  const readOwner = async (): Promise<JobLockHolder | undefined> => {
    try {
      return JSON.parse(await readFile(ownerPath, "utf8")) as JobLockHolder;
    } catch {
      return undefined;
    }
  };
  let told = false;
  for (;;) {
    try {
      const release = await lockfile.lock(base, options);
      await writeFileAtomic(ownerPath, `${JSON.stringify({ pid: process.pid, host: hostname(), since: new Date().toISOString() } satisfies JobLockHolder)}\n`);
      return {
        async release() {
          await rm(ownerPath, { force: true }).catch(() => {});
          await release().catch(() => {});
        },
      };
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== "ELOCKED") throw e;
    }
    const owner = await readOwner();
    if (owner && owner.host === hostname() && !alive(owner.pid)) {
      // Its holder died on this host: the lock is stale now, not in 30 s.
      await rm(options.lockfilePath, { recursive: true, force: true });
      await rm(ownerPath, { force: true });
      continue;
    }
    if (!told) {
      told = true;
      onWait?.(owner);
    }
    await new Promise((r) => setTimeout(r, pollMs));
  }
}
