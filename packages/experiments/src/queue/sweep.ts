/**
 * Enqueueing a sweep: the same plan and the same jobs as `midtrain run`, put on a BullMQ queue.
 * A job's BullMQ id is derived from the plan (sweep name + job id), so adding a job twice adds
 * it once: the jobs that are ready are enqueued at the start, and a job that finishes enqueues
 * those that became ready through it (branches once their trunk checkpoint exists, SFT runs once
 * their branch is done, the report once everything is).
 */
import { join } from "node:path";
import type { Registry } from "@midtrain/schedulers";
import { type JobsOptions, Queue } from "bullmq";
import type { Redis } from "ioredis";
import type { ExperimentConfig } from "../config.js";
import type { RunEnv } from "../env.js";
import { ExperimentError } from "../errors.js";
import { type ExperimentJob, planJobs } from "../jobs.js";
import { nodeEnv } from "../node.js";
import { type ExperimentPlan, planExperiment } from "../plan.js";
import { claimRunFolder, finishedJobs } from "../runner.js";
import { connectRedis, QUEUE_NAME, QueueError, STORAGE_KEY, SWEEPS_KEY, sweepKey } from "./redis.js";
import { claimStorage, StorageError } from "./storage.js";

/** What a BullMQ job of a sweep carries. */
export interface SweepJobData {
  sweep: string;
  /** The plan's job id; absent for the report job. */
  job?: string;
  report?: true;
  /** The midtrain version that enqueued it (a worker of another version refuses it). */
  version: string;
}

/** A sweep as Redis records it. */
export interface SweepRecord {
  name: string;
  config: ExperimentConfig;
  version: string;
  createdAt: string;
  attempts: number;
  backoffSeconds: number;
}

/** The report job's id in the plan's namespace. */
export const REPORT_JOB = "report";

/** The BullMQ job id of a plan job: deterministic, without `:` (which BullMQ keeps for itself). */
export function queueJobId(sweep: string, job: string): string {
  return `${sweep}|${job}`.replaceAll(":", "!");
}

/** Jobs not finished whose dependencies all are: what can run now. */
export function readyJobs(jobs: readonly ExperimentJob[], done: ReadonlySet<string>): ExperimentJob[] {
  return jobs.filter((j) => !done.has(j.id) && j.deps.every((d) => done.has(d)));
}

/** Lower runs first (BullMQ priorities): trunk segments are the critical path, the report comes last. */
const PRIORITY = { trunk: 1, branch: 2, sft: 3, report: 4 } as const;

export async function readSweep(redis: Redis, name: string): Promise<SweepRecord | undefined> {
  const h = await redis.hgetall(sweepKey(name));
  if (!h.config) return undefined;
  return {
    name,
    config: JSON.parse(h.config) as ExperimentConfig,
    version: h.version,
    createdAt: h.createdAt,
    attempts: Number(h.attempts),
    backoffSeconds: Number(h.backoffSeconds),
  };
}

export async function listSweeps(redis: Redis): Promise<SweepRecord[]> {
  const names = (await redis.smembers(SWEEPS_KEY)).sort();
  const out: SweepRecord[] = [];
  for (const n of names) {
    const s = await readSweep(redis, n);
    if (s) out.push(s);
  }
  return out;
}

function jobOptions(sweep: SweepRecord, id: string, priority: number): JobsOptions {
  return {
    jobId: queueJobId(sweep.name, id),
    priority,
    attempts: sweep.attempts,
    backoff: { type: "exponential", delay: sweep.backoffSeconds * 1000 },
    // Finished jobs stay: their ids keep a second add from running them again, and `status` counts them.
    removeOnComplete: false,
    removeOnFail: false,
  };
}

/**
 * Adds every job of the sweep that can run now (all dependencies have an outcome), and the
 * report once every job has one. Idempotent: ids that exist in any state are left as they are.
 * Returns the plan ids it added.
 */
export async function enqueueReady(queue: Queue, sweep: SweepRecord, plan: ExperimentPlan, env: RunEnv): Promise<string[]> {
  const jobs = planJobs(plan);
  const done = await finishedJobs(env, jobs);
  const bulk: Array<{ name: string; data: SweepJobData; opts: JobsOptions }> = readyJobs(jobs, done).map((j) => ({
    name: sweep.name,
    data: { sweep: sweep.name, job: j.id, version: sweep.version },
    opts: jobOptions(sweep, j.id, PRIORITY[j.kind]),
  }));
  if (done.size === jobs.length) {
    bulk.push({ name: sweep.name, data: { sweep: sweep.name, report: true, version: sweep.version }, opts: jobOptions(sweep, REPORT_JOB, PRIORITY.report) });
  }
  // Only ids the queue does not hold yet (the ids keep a concurrent add of the same job single, too).
  const fresh: typeof bulk = [];
  for (const b of bulk) if ((await queue.getJobState(b.opts.jobId!)) === "unknown") fresh.push(b);
  if (fresh.length) await queue.addBulk(fresh);
  return fresh.map((b) => b.data.job ?? REPORT_JOB);
}

export interface EnqueueOptions {
  url: string;
  storage: string;
  config: ExperimentConfig;
  registry: Registry;
  version: string;
  /** Tries per job before it is marked failed (default 3). */
  attempts?: number;
  /** First retry delay; it doubles with each retry (default 30 s). */
  backoffSeconds?: number;
}

export interface EnqueueResult {
  sweep: string;
  /** The sweep's run folder on the storage (what `midtrain report` reads). */
  root: string;
  /** True when the sweep was in the queue already (the same config): it resumes. */
  resumed: boolean;
  enqueued: string[];
  /** Failed jobs given another round of tries. */
  retried: string[];
  done: number;
  total: number;
}

/** A sweep of this name is in the queue with another config or version. */
export class SweepConflictError extends QueueError {}

/**
 * Plans the config and puts its runnable jobs on the queue at `url`, its files under
 * `storage/<name>`. The same config again resumes the sweep (failed jobs are retried); another
 * config under the same name is refused, in Redis and in the run folder alike.
 */
export async function enqueueSweep(o: EnqueueOptions): Promise<EnqueueResult> {
  const redis = await connectRedis(o.url);
  try {
    const { dir: storage, token } = await claimStorage(o.storage);
    const theirs = await redis.get(STORAGE_KEY);
    if (theirs && theirs !== token) {
      throw new StorageError(
        `the queue at ${o.url} belongs to another storage folder (marker ${theirs}; --storage ${storage} has ${token}); give the folder its sweeps use, or another Redis`,
      );
    }
    const name = o.config.name;
    const plan = planExperiment(o.config, o.registry);
    const jobs = planJobs(plan);
    const prior = await readSweep(redis, name);
    if (prior && JSON.stringify(prior.config) !== JSON.stringify(o.config)) {
      throw new SweepConflictError(
        `a sweep named ${name} is in the queue at ${o.url} already (enqueued ${prior.createdAt}) with a different config; give this config another name, or use another Redis`,
      );
    }
    if (prior && prior.version !== o.version) {
      throw new SweepConflictError(
        `sweep ${name} was enqueued by midtrain ${prior.version}; this is midtrain ${o.version}. Resume it with midtrain ${prior.version}`,
      );
    }
    const root = join(storage, name);
    const env = nodeEnv(root);
    try {
      await claimRunFolder(env, o.config, jobs);
    } catch (e) {
      if (e instanceof ExperimentError) {
        throw new SweepConflictError(`${root} holds a run of a different config named ${name}; rename the config, or delete that folder to start over`);
      }
      throw e;
    }
    const sweep: SweepRecord = prior ?? {
      name,
      config: o.config,
      version: o.version,
      createdAt: new Date().toISOString(),
      attempts: o.attempts ?? 3,
      backoffSeconds: o.backoffSeconds ?? 30,
    };
    if (!prior) {
      await redis
        .multi()
        .set(STORAGE_KEY, token)
        .hset(sweepKey(name), {
          config: JSON.stringify(sweep.config),
          version: sweep.version,
          createdAt: sweep.createdAt,
          attempts: String(sweep.attempts),
          backoffSeconds: String(sweep.backoffSeconds),
        })
        .sadd(SWEEPS_KEY, name)
        .exec();
    }
    const queue = new Queue(QUEUE_NAME, { connection: redis });
    try {
      const retried: string[] = [];
      if (prior) {
        for (const j of await queue.getJobs(["failed"])) {
          if ((j.data as SweepJobData).sweep !== name) continue;
          await j.retry("failed");
          retried.push((j.data as SweepJobData).job ?? REPORT_JOB);
        }
      }
      const enqueued = await enqueueReady(queue, sweep, plan, env);
      const done = (await finishedJobs(env, jobs)).size;
      return { sweep: name, root, resumed: Boolean(prior), enqueued, retried, done, total: jobs.length };
    } finally {
      await queue.close();
    }
  } finally {
    redis.disconnect();
  }
}
