/**
 * A sweep through the BullMQ queue, as processes: `midtrain run --queue` enqueues, `midtrain
 * worker`s train, each with its own Redis on a free loopback port. Workers are killed with SIGKILL
 * (the worker and its training process, as a lost host) during the trunk and during a branch;
 * Redis is killed and restarted from its append-only file mid-sweep; `midtrain status` is read
 * while jobs train. Each sweep must end with the results.json of a local `midtrain run` of the
 * same config (cpu backend: identical numbers), every job done once.
 */
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { jobLockOwnerPath } from "../src/queue/job-lock.js";
import { type CliRun, ensureCliBuilt, killGroup, runCli, shrunkStudyYaml, startCli, trainSteps, waitFor } from "./helpers/cli-process.js";
import { startRedis, type TestRedis } from "./helpers/redis.js";

const CONFIG = shrunkStudyYaml("qtest");
const JOBS = [
  "trunk@p1:12",
  "trunk@p1:30",
  "branch@p1/mid",
  "sft@p1/baseline/code/lr0.001/s1",
  "sft@p1/baseline/code/lr0.003/s1",
  "sft@p1/mid/code/lr0.001/s1",
  "sft@p1/mid/code/lr0.003/s1",
];

let dir: string;
let config: string;
let reference: unknown;
const servers: TestRedis[] = [];
const workers: CliRun[] = [];

beforeAll(async () => {
  ensureCliBuilt();
  dir = mkdtempSync(join(tmpdir(), "midtrain-queue-"));
  config = join(dir, "qtest.yaml");
  writeFileSync(config, CONFIG);
}, 300_000);
afterAll(async () => {
  for (const w of workers) killGroup(w.child, "SIGKILL");
  for (const s of servers) await s.stop();
  rmSync(dir, { recursive: true, force: true });
});

/** results.json without what differs between any two runs (times, device, wall-clock notes). */
function results(out: string) {
  const r = JSON.parse(readFileSync(join(out, "results.json"), "utf8"));
  delete r.createdAt;
  delete r.wallSeconds;
  delete r.device;
  r.notes = (r.notes as string[]).filter((n) => !/wall time/.test(n));
  return r;
}

/** Outcome files in a run folder. */
function outcomes(out: string): string[] {
  if (!existsSync(out)) return [];
  return readdirSync(out, { recursive: true, withFileTypes: true })
    .filter((e) => e.isFile() && /^outcome.*\.json$/.test(e.name))
    .map((e) => join(e.parentPath, e.name));
}

/**
 * Steps that were the first of a training call (a job's start or a resume): a step continuing a
 * call began after the previous step ended (elapsed - own time >= the previous step's elapsed).
 */
function restarts(path: string): number[] {
  const recs = readFileSync(path, "utf8")
    .split("\n")
    .filter((l) => l.includes('"type":"train"'))
    .map((l) => JSON.parse(l) as { step: number; elapsedMs: number; stepMs: number });
  return recs.filter((r, i) => i === 0 || r.elapsedMs - r.stepMs < recs[i - 1].elapsedMs).map((r) => r.step);
}

function parentOf(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
  return Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
}

/** The worker whose training process holds job `id`'s lock now. */
function workerTraining(root: string, id: string): CliRun {
  const owner = JSON.parse(readFileSync(jobLockOwnerPath(root, id), "utf8")) as { pid: number };
  const w = workers.find((x) => x.child.pid === parentOf(owner.pid));
  if (!w) throw new Error(`no worker of this test trains ${id} (lock held by pid ${owner.pid})`);
  return w;
}

function startWorker(url: string, storage: string): CliRun {
  const w = startCli(["worker", "--queue", url, "--storage", storage, "--lock-seconds", "3"], { timeoutMs: 240_000 });
  workers.push(w);
  return w;
}

/** Lines `done <sweep> <job>` (a job trained to its end) across the workers' output. */
function doneLines(runs: CliRun[]): string[] {
  return runs.flatMap((w) => [...w.output().matchAll(/\] done qtest (\S+) \(/g)].map((m) => m[1])).sort();
}

describe("a sweep on the BullMQ queue", () => {
  it("the reference: a local midtrain run of the same config", async () => {
    const out = join(dir, "reference");
    const r = await runCli(["run", config, "--out", out, "--jobs", "1"]);
    expect(r.stderr).not.toMatch(/Error/);
    expect(r.code).toBe(0);
    reference = results(out);
    expect(JSON.stringify(reference)).toMatch(/"rows":\[\{/);
  });

  it("3 workers; the one training the trunk and then the one training the branch are killed with SIGKILL: the jobs are taken over and resume from their checkpoints, the sweep completes with identical results, every job done once", async () => {
    const redis = await startRedis();
    servers.push(redis);
    const storage = join(dir, "storage-kill");
    const root = join(storage, "qtest");
    const enq = await runCli(["run", config, "--queue", redis.url, "--storage", storage]);
    expect(enq.stderr).toBe("");
    expect(enq.code).toBe(0);
    expect(enq.stdout).toMatch(/sweep qtest is on the queue: 0\/7 jobs done, enqueued 1 job\(s\) that can run now \(trunk@p1:12\)/);
    const mine = [startWorker(redis.url, storage), startWorker(redis.url, storage), startWorker(redis.url, storage)];
    const trunk = join(root, "p1/trunk/metrics.jsonl");
    await waitFor(mine[0], "the trunk's step 6", () => Math.max(0, ...trainSteps(trunk)) >= 6);
    const trunkWorker = workerTraining(root, "trunk@p1:12");
    killGroup(trunkWorker.child, "SIGKILL");
    expect((await trunkWorker.exit).signal).toBe("SIGKILL");
    mine.push(startWorker(redis.url, storage));

    const branch = join(root, "p1/branches/mid/metrics.jsonl");
    const alive = mine.find((w) => w !== trunkWorker)!;
    // After its first own checkpoint (step 16; it starts from the trunk's at 12).
    await waitFor(alive, "the branch's step 18", () => Math.max(0, ...trainSteps(branch)) >= 18);
    const branchWorker = workerTraining(root, "branch@p1/mid");
    killGroup(branchWorker.child, "SIGKILL");
    expect((await branchWorker.exit).signal).toBe("SIGKILL");
    mine.push(startWorker(redis.url, storage));

    const survivors = mine.filter((w) => w !== trunkWorker && w !== branchWorker);
    for (const w of survivors) {
      const e = await w.exit;
      expect(e.code, e.stderr).toBe(0);
      expect(e.stderr).toMatch(/the queue is drained/);
    }
    expect(results(root)).toEqual(reference);
    expect(outcomes(root)).toHaveLength(7);
    // Each job was trained to its end once; the killed ones were finished by another worker.
    expect(doneLines(mine)).toEqual([...JOBS].sort());
    // Resumed from a checkpoint, not from zero: a training process began inside the first segment
    // (1..12) and inside the branch (13..30), and every step is recorded once.
    expect(restarts(trunk).some((s) => s > 1 && s <= 12)).toBe(true);
    expect(restarts(branch).some((s) => s > 13 && s <= 30)).toBe(true);
    expect(trainSteps(trunk)).toEqual(Array.from({ length: 30 }, (_, i) => i + 1));
    expect(trainSteps(branch)).toEqual(Array.from({ length: 18 }, (_, i) => i + 13));
    const st = await runCli(["status", "--queue", redis.url]);
    expect(st.stdout).toMatch(/sweep qtest .*: 0 active, 0 waiting, 0 prioritized, 0 delayed, 8 completed, 0 failed of 8/);
    // midtrain report on the storage after the sweep: the same results.
    const rep = await runCli(["report", root]);
    expect(rep.code, rep.stderr).toBe(0);
    expect(rep.stdout).not.toMatch(/PARTIAL/);
    expect(results(root)).toEqual(reference);
    // Enqueueing the finished sweep again adds nothing and runs nothing.
    const again = await runCli(["run", config, "--queue", redis.url, "--storage", storage]);
    expect(again.code).toBe(0);
    expect(again.stdout).toMatch(/sweep qtest resumes: 7\/7 jobs done, nothing new to enqueue/);
  });

  it("midtrain status lists running jobs with their progress; Redis killed with SIGKILL and restarted from its AOF mid-sweep: the workers reconnect and the sweep completes with identical results", async () => {
    const redis = await startRedis();
    servers.push(redis);
    const storage = join(dir, "storage-redis");
    const root = join(storage, "qtest");
    expect((await runCli(["run", config, "--queue", redis.url, "--storage", storage])).code).toBe(0);
    const mine = [startWorker(redis.url, storage), startWorker(redis.url, storage)];
    const trunk = join(root, "p1/trunk/metrics.jsonl");
    await waitFor(mine[0], "the trunk's first step", () => trainSteps(trunk).length >= 1);
    // Jobs are short here: ask until a running job has sent progress (its first step's, at once).
    const line =
      /^ {2}running {2}(\S+) {2}(pretrain|branch:mid|sft:code) step (\d+)\/(\d+) {2}\d+ tok\/s {2}loss \d+\.\d{3} {2}ETA \d+s {2}\[\S+:\d+, try \d\]$/m;
    let seen: RegExpMatchArray | null = null;
    for (let i = 0; i < 20 && !seen; i++) {
      const st = await runCli(["status", "--queue", redis.url]);
      expect(st.code).toBe(0);
      expect(st.stdout).toMatch(
        /^sweep qtest \(midtrain \S+, enqueued \S+\): [1-3] active, \d+ waiting, \d+ prioritized, 0 delayed, \d+ completed, 0 failed of \d+ enqueued so far$/m,
      );
      seen = st.stdout.match(line);
    }
    expect(seen, "a running job with its progress").not.toBeNull();
    expect(JOBS).toContain(seen![1]);
    expect(Number(seen![3])).toBeLessThanOrEqual(Number(seen![4]));
    // midtrain report works on the shared storage while the sweep runs: what has finished, and what has not.
    const partial = await runCli(["report", root]);
    expect(partial.code, partial.stderr).toBe(0);
    expect(partial.stdout).toMatch(/PARTIAL RESULTS: [1-7] job\(s\) have not finished/);

    const branch = join(root, "p1/branches/mid/metrics.jsonl");
    await waitFor(mine[0], "the branch's step 14", () => Math.max(0, ...trainSteps(branch)) >= 14);
    await redis.kill("SIGKILL");
    expect(outcomes(root).length).toBeLessThan(7);
    // Down for longer than a job's lock: running jobs are seen as stalled when Redis is back.
    await new Promise((r) => setTimeout(r, 4000));
    await redis.restart();
    for (const w of mine) {
      const e = await w.exit;
      expect(e.code, e.stderr).toBe(0);
      expect(e.stderr).toMatch(/reconnected to/);
    }
    expect(results(root)).toEqual(reference);
    expect(doneLines(mine)).toEqual([...JOBS].sort());
    expect(trainSteps(trunk)).toEqual(Array.from({ length: 30 }, (_, i) => i + 1));
  });
});
