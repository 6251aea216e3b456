/**
 * One `midtrain run` per run folder. The lock is proper-lockfile's (a folder created
 * atomically, its mtime refreshed while the run lives, stale after `STALE_MS` without a refresh;
 * it works on network file systems too). Beside it, `run-owner.json` names the holder, so a
 * second run says who holds the folder, and a run on the same host whose process is gone
 * (kill -9, a crash) is taken over at once instead of after the stale time.
 */
import { existsSync, realpathSync } from "node:fs";
import { mkdir, readFile, rm } from "node:fs/promises";
import { hostname } from "node:os";
import { dirname, join, resolve, sep } from "node:path";
import lockfile from "proper-lockfile";
import { ExperimentError } from "./errors.js";
import { writeFileAtomic } from "./report/write.js";

const STALE_MS = 30_000;
const UPDATE_MS = 5_000;
const LOCK = ".run.lock";
const OWNER = "run-owner.json";

/** Another live process holds the run folder. */
export class RunLockedError extends ExperimentError {
  constructor(
    readonly dir: string,
    readonly owner?: LockOwner,
  ) {
    super(
      `${dir} is in use by another midtrain run${owner ? ` (pid ${owner.pid} on ${owner.host}, started ${owner.startedAt})` : ""}. ` +
        "Wait for it to finish, stop it, or use another --out folder. A lock left by a run that crashed on another host is taken over 30 s after its last refresh.",
    );
  }
}

/** The output folder cannot hold a run (a pseudo file system, not a folder, not writable). */
export class RunFolderError extends ExperimentError {}

export interface LockOwner {
  pid: number;
  host: string;
  startedAt: string;
  command: string;
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === "EPERM";
  }
}

/** The nearest existing ancestor of `p`, with links resolved. */
function existingAncestor(p: string): string {
  let cur = resolve(p);
  while (!existsSync(cur)) {
    const up = dirname(cur);
    if (up === cur) break;
    cur = up;
  }
  try {
    return realpathSync(cur);
  } catch {
    return cur;
  }
}

/**
 * Checks that `dir` can be a run folder before anything is created: not inside a kernel
 * pseudo file system (where a recursive mkdir never returns), and a folder if it exists.
 */
export function checkRunFolder(dir: string): string {
  const abs = resolve(dir);
  const base = existingAncestor(abs);
  for (const pseudo of ["/proc", "/sys", "/dev"]) {
    if (base === pseudo || base.startsWith(pseudo + sep) || abs === pseudo || abs.startsWith(pseudo + sep)) {
      throw new RunFolderError(`--out ${abs} is inside ${pseudo}, a kernel pseudo file system; choose a folder on a disk`);
    }
  }
  return abs;
}

export interface RunLock {
  readonly dir: string;
  release(): Promise<void>;
}

/** Takes the run folder for this process (creating it), or throws {@link RunLockedError}. */
export async function acquireRunLock(dir: string): Promise<RunLock> {
  const abs = checkRunFolder(dir);
  try {
    await mkdir(abs, { recursive: true });
  } catch (e) {
    throw new RunFolderError(`cannot create the run folder ${abs}: ${(e as Error).message}`);
  }
  const lockfilePath = join(abs, LOCK);
  const ownerPath = join(abs, OWNER);
  const options = {
    lockfilePath,
    realpath: false,
    stale: STALE_MS,
    update: UPDATE_MS,
    retries: 0,
    // A long synchronous step can delay a refresh; say so instead of crashing the run.
    onCompromised: (err: Error) => console.error(`[midtrain] warning: the run lock of ${abs} was not refreshed in time (${err.message})`),
  };
  const readOwner = async (): Promise<LockOwner | undefined> => {
    try {
      return JSON.parse(await readFile(ownerPath, "utf8")) as LockOwner;
    } catch {
      return undefined;
    }
  };
  let release: () => Promise<void>;
  try {
    release = await lockfile.lock(abs, options);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code !== "ELOCKED") throw new RunFolderError(`cannot lock the run folder ${abs}: ${(e as Error).message}`);
    const owner = await readOwner();
    if (!owner || owner.host !== hostname() || alive(owner.pid)) throw new RunLockedError(abs, owner);
    // The holder died on this host: its lock is stale now, not in 30 s.
    await rm(lockfilePath, { recursive: true, force: true });
    try {
      release = await lockfile.lock(abs, options);
    } catch {
      throw new RunLockedError(abs, await readOwner());
    }
  }
  const me: LockOwner = { pid: process.pid, host: hostname(), startedAt: new Date().toISOString(), command: process.argv.slice(1).join(" ") };
  try {
    await writeFileAtomic(ownerPath, `${JSON.stringify(me, null, 2)}\n`);
  } catch (e) {
    await release().catch(() => {});
    throw new RunFolderError(`cannot write in the run folder ${abs}: ${(e as Error).message}`);
  }
  let released = false;
  return {
    dir: abs,
    async release() {
      if (released) return;
      released = true;
      await rm(ownerPath, { force: true }).catch(() => {});
      await release().catch(() => {});
    },
  };
}
