/**
 * `midtrain worker`: takes a sweep's jobs from the BullMQ queue and trains each in a forked
 * training process (`child.ts`), so that this process only talks to Redis: it renews job locks,
 * runs the stalled-job checks that give a lost worker's job to another worker, and passes
 * progress on to the job (what `midtrain status` shows). When a job is done it enqueues the jobs
 * that became ready through it. It stops when the queue has nothing left to run (or on a signal),
 * or keeps waiting for new sweeps with `service`.
 */
import { type ChildProcess, fork } from "node:child_process";
import { availableParallelism, hostname } from "node:os";
import { join } from "node:path";
import { DelayedError, type Job, Queue, UnrecoverableError, Worker } from "bullmq";
import type { Redis } from "ioredis";
import { type ExperimentJob, type JobProgress, planJobs } from "../jobs.js";
import { nodeEnv, nodeExperimentRegistry } from "../node.js";
import { type ExperimentPlan, planExperiment } from "../plan.js";
import type { ChildIn, ChildOut } from "./child.js";
import { connectRedis, evictionWarning, QUEUE_NAME, QueueError, STORAGE_KEY } from "./redis.js";
import { checkStorage } from "./storage.js";
import { enqueueReady, listSweeps, readSweep, type SweepJobData, type SweepRecord } from "./sweep.js";

/** What `midtrain status` reads from a running job (BullMQ job progress). */
export interface SweepJobProgress {
  phase: string;
  step: number;
  endStep: number;
  tokensPerSec: number;
  loss: number;
  etaSeconds: number;
  /** host:pid of the worker running it. */
  worker: string;
  /** When the progress was sent (ISO time). */
  at: string;
  /** Set while the job waits for another process that still holds its lock. */
  waitingFor?: string;
}

export interface QueueWorkerOptions {
  url: string;
  storage: string;
  /** This worker's midtrain version; jobs of another version are refused. */
  version: string;
  /** The built training process script (dist/queue-child.js). */
  childScript: string;
  backend?: string;
  /** Jobs at once, each in its own training process (default 1). */
  concurrency?: number;
  /** Keep waiting for jobs when the queue is empty (default: stop when it is drained). */
  service?: boolean;
  /**
   * Seconds a job's lock lasts without renewal (default 60). The worker renews it every half of
   * that however long the job trains; a worker that is gone loses its job to another worker
   * within about twice this time.
   */
  lockSeconds?: number;
  log?: (line: string) => void;
  /** Stops the worker: running jobs checkpoint and go back to the queue. */
  signal?: AbortSignal;
}

export interface QueueWorkerSummary {
  /** Jobs this worker ran to completion (the report included). */
  completed: number;
  /** Deliveries of a job that had finished already (after a lost worker). */
  skipped: number;
  /** Tries that failed (each retried with backoff until its tries are used up). */
  failed: number;
}

/** A worker of another midtrain version than the sweep's. */
export class WorkerVersionError extends QueueError {}

interface Slot {
  child?: ChildProcess;
  sweep?: string;
  ready?: Promise<{ backend: string; device: string }>;
}

/** Refuses to start when an unfinished sweep was enqueued by another version. */
async function checkVersions(queue: Queue, redis: Redis, url: string, version: string): Promise<void> {
  const pending = new Set<string>();
  for (const j of await queue.getJobs(["waiting", "active", "delayed", "prioritized", "waiting-children"])) {
    if (j) pending.add((j.data as SweepJobData).sweep);
  }
  for (const s of await listSweeps(redis)) {
    if (pending.has(s.name) && s.version !== version) {
      throw new WorkerVersionError(
        `sweep ${s.name} in the queue at ${url} was enqueued by midtrain ${s.version}; this worker is midtrain ${version}. Run workers of version ${s.version} (every host the same)`,
      );
    }
  }
}

export async function runQueueWorker(o: QueueWorkerOptions): Promise<QueueWorkerSummary> {
  const log = o.log ?? ((l: string) => console.error(l));
  const me = `${hostname()}:${process.pid}`;
  const concurrency = Math.max(1, o.concurrency ?? 1);
  const lockMs = Math.max(1, o.lockSeconds ?? 60) * 1000;
  const redis = await connectRedis(o.url, { persistent: true });
  const queue = new Queue(QUEUE_NAME, { connection: redis });
  const summary: QueueWorkerSummary = { completed: 0, skipped: 0, failed: 0 };
  const slots: Slot[] = Array.from({ length: concurrency }, () => ({}));
  const closeChildren = () => {
    for (const s of slots) if (s.child?.connected) s.child.disconnect();
  };
  let worker: Worker | undefined;
  try {
    const storage = await checkStorage(o.storage, await redis.get(STORAGE_KEY), o.url);
    await checkVersions(queue, redis, o.url, o.version);
    const warn = await evictionWarning(redis);
    if (warn) log(`[midtrain worker] warning: ${warn}`);

    const sweeps = new Map<string, Promise<{ sweep: SweepRecord; plan: ExperimentPlan; jobs: ExperimentJob[] }>>();
    const sweepOf = (name: string) => {
      let s = sweeps.get(name);
      if (!s) {
        s = (async () => {
          const sweep = await readSweep(redis, name);
          if (!sweep) throw new UnrecoverableError(`sweep ${name} is not recorded in the queue at ${o.url} (its keys were deleted); enqueue it again`);
          const plan = planExperiment(sweep.config, await nodeExperimentRegistry(sweep.config));
          return { sweep, plan, jobs: planJobs(plan) };
        })();
        s.catch(() => sweeps.delete(name));
        sweeps.set(name, s);
      }
      return s;
    };
    const blasThreads = Math.max(1, Math.floor(availableParallelism() / concurrency));
    const free = Array.from({ length: concurrency }, (_, i) => i).reverse();

    /** The training process of a slot, (re)started for the sweep. */
    const childFor = (slot: Slot, sweep: SweepRecord) => {
      const alive = slot.child && slot.child.exitCode === null && slot.child.signalCode === null;
      if (alive && slot.sweep === sweep.name) return slot;
      if (slot.child?.connected) slot.child.disconnect();
      const child = fork(o.childScript, [], { stdio: ["ignore", "inherit", "inherit", "ipc"] });
      slot.child = child;
      slot.sweep = sweep.name;
      slot.ready = new Promise((res, rej) => {
        const onMsg = (m: ChildOut) => {
          if (m.type !== "ready" && m.type !== "error") return;
          child.off("message", onMsg);
          child.off("exit", onExit);
          if (m.type === "ready") res({ backend: m.backend, device: m.device });
          else rej(new Error(`the training process could not start: ${m.message}`));
        };
        const onExit = (code: number | null, sig: NodeJS.Signals | null) =>
          rej(new Error(`the training process ${sig ? `was killed by ${sig}` : `exited with ${code}`}`));
        child.on("message", onMsg);
        child.once("exit", onExit);
      });
      slot.ready.catch(() => {});
      const init: ChildIn = { type: "init", root: join(storage, sweep.name), config: sweep.config, backend: o.backend ?? sweep.config.backend, blasThreads };
      child.send(init);
      return slot;
    };

    /** Sends one request to a slot's training process and waits for its answer. */
    const request = async (slot: Slot, m: ChildIn, onMsg: (m: ChildOut) => void) => {
      await slot.ready;
      const child = slot.child!;
      return new Promise<Extract<ChildOut, { type: "done" }>>((res, rej) => {
        const finish = (f: () => void) => {
          child.off("message", listen);
          child.off("exit", onExit);
          f();
        };
        const listen = (r: ChildOut) => {
          if (r.type === "done") finish(() => res(r));
          else if (r.type === "error") {
            const err = new Error(r.message);
            (err as Error & { interrupted?: boolean }).interrupted = r.interrupted;
            finish(() => rej(err));
          } else onMsg(r);
        };
        const onExit = (code: number | null, sig: NodeJS.Signals | null) =>
          finish(() => rej(new Error(`the training process ${sig ? `was killed by ${sig}` : `exited with code ${code}`}`)));
        child.on("message", listen);
        child.once("exit", onExit);
        child.send(m);
      });
    };

    let stopping = false;
    let mismatch: WorkerVersionError | undefined;
    const processor = async (job: Job, token?: string) => {
      const d = job.data as SweepJobData;
      if (d.version !== o.version) {
        // Leave it to a worker of its version; this one stops.
        mismatch ??= new WorkerVersionError(
          `job ${job.id} of sweep ${d.sweep} was enqueued by midtrain ${d.version}; this worker is midtrain ${o.version}. Run workers of version ${d.version}`,
        );
        stopping = true;
        await job.moveToDelayed(Date.now() + 5000, token);
        throw new DelayedError();
      }
      const { sweep, plan, jobs } = await sweepOf(d.sweep);
      const slotIndex = free.pop()!;
      const slot = childFor(slots[slotIndex], sweep);
      const t0 = Date.now();
      try {
        if (d.report) {
          const wallSeconds = (Date.now() - Date.parse(sweep.createdAt)) / 1000;
          await request(slot, { type: "report", wallSeconds, note: `run through the queue at ${o.url}; wall time ${wallSeconds.toFixed(0)} s` }, () => {});
          log(`[midtrain worker ${me}] wrote the report of ${d.sweep}: ${join(storage, d.sweep, "results.json")}`);
          summary.completed++;
          return { worker: me, report: true };
        }
        const planJob = jobs.find((j) => j.id === d.job);
        if (!planJob) throw new UnrecoverableError(`job ${d.job} is not in the plan of sweep ${d.sweep}`);
        log(`[midtrain worker ${me}] start ${d.sweep} ${planJob.id} (try ${job.attemptsMade + 1})`);
        let last = 0;
        const done = await request(slot, { type: "job", job: planJob }, (m) => {
          let p: SweepJobProgress | undefined;
          if (m.type === "progress") {
            const now = Date.now();
            const q: JobProgress = m.progress;
            if (now - last < 1000 && q.step !== q.endStep) return;
            last = now;
            p = {
              phase: q.phase,
              step: q.step,
              endStep: q.endStep,
              tokensPerSec: q.tokensPerSec,
              loss: q.loss,
              etaSeconds: q.etaSeconds,
              worker: me,
              at: new Date().toISOString(),
            };
          } else if (m.type === "waiting") {
            log(`[midtrain worker ${me}] ${planJob.id} is held by ${m.holder}; waiting for it`);
            p = {
              phase: "waiting",
              step: 0,
              endStep: 0,
              tokensPerSec: 0,
              loss: Number.NaN,
              etaSeconds: Number.NaN,
              worker: me,
              at: new Date().toISOString(),
              waitingFor: m.holder,
            };
          }
          if (p) job.updateProgress(p as never).catch(() => {});
        });
        if (done.skipped) summary.skipped++;
        else summary.completed++;
        await enqueueReady(queue, sweep, plan, nodeEnv(join(storage, d.sweep)));
        log(`[midtrain worker ${me}] ${done.skipped ? "already done" : "done"} ${d.sweep} ${planJob.id} (${((Date.now() - t0) / 1000).toFixed(1)} s)`);
        return { worker: me, skipped: Boolean(done.skipped), seconds: (Date.now() - t0) / 1000 };
      } catch (e) {
        if ((e as { interrupted?: boolean }).interrupted) {
          // Stopped by a signal after a checkpoint: back to the queue without using up a try.
          log(`[midtrain worker ${me}] ${d.job} stopped with a checkpoint; it goes back to the queue`);
          await job.moveToDelayed(Date.now() + 1000, token);
          throw new DelayedError();
        }
        if (!(e instanceof UnrecoverableError)) summary.failed++;
        log(`[midtrain worker ${me}] ${d.job ?? "report"} of ${d.sweep} failed: ${(e as Error).message}`);
        throw e;
      } finally {
        free.push(slotIndex);
      }
    };

    worker = new Worker(QUEUE_NAME, processor, {
      connection: redis,
      concurrency,
      lockDuration: lockMs,
      stalledInterval: Math.max(500, Math.round(lockMs / 2)),
      // A job may lose its worker a few times (kill -9, a lost host) before it counts as failed.
      maxStalledCount: 5,
      autorun: true,
    });
    let redisDown = false;
    worker.on("error", (e) => {
      if (!redisDown) log(`[midtrain worker ${me}] queue connection problem (${e.message}); retrying`);
      redisDown = true;
    });
    redis.on("ready", () => {
      if (redisDown) log(`[midtrain worker ${me}] reconnected to ${o.url}`);
      redisDown = false;
    });
    log(`[midtrain worker ${me}] taking jobs from ${o.url} (storage ${storage}, ${concurrency} at once, lock ${lockMs / 1000} s)`);

    const onAbort = () => {
      stopping = true;
      for (const s of slots) if (s.child && s.child.exitCode === null) s.child.kill("SIGTERM");
    };
    o.signal?.addEventListener("abort", onAbort, { once: true });
    // Drained: nothing waiting, delayed or running anywhere (a running job may still enqueue its dependents).
    let idleChecks = 0;
    while (!stopping) {
      await new Promise((r) => setTimeout(r, 1000));
      if (o.service || free.length < concurrency) {
        idleChecks = 0;
        continue;
      }
      try {
        const c = await queue.getJobCounts("waiting", "active", "delayed", "prioritized", "waiting-children");
        idleChecks = Object.values(c).some((n) => n > 0) ? 0 : idleChecks + 1;
      } catch {
        idleChecks = 0;
      }
      if (idleChecks >= 2) break;
    }
    o.signal?.removeEventListener("abort", onAbort);
    await worker.close();
    if (mismatch) throw mismatch;
    log(
      `[midtrain worker ${me}] ${o.signal?.aborted ? "stopped" : "the queue is drained"}: ${summary.completed} job(s) done, ${summary.skipped} already done, ${summary.failed} failed tries`,
    );
    return summary;
  } finally {
    closeChildren();
    await worker?.close().catch(() => {});
    await queue.close().catch(() => {});
    redis.disconnect();
  }
}
