/**
 * The training process of a queue worker: `midtrain worker` forks one per concurrent job, so the
 * worker's event loop (BullMQ's lock renewal, stalled checks, progress updates) never waits on
 * training. It runs the same job executor as `midtrain run` (`executeJob`), under the job's lock
 * on the shared storage. Messages in: { type: "init", root, config, backend, blasThreads },
 * { type: "job", job }, { type: "report", note }; out: "ready", "progress", "waiting", "done", "error".
 */
import { initBackend } from "@midtrain/backend";
import { installSignalHandlers } from "@midtrain/trainer/node";
import type { ExperimentConfig } from "../config.js";
import { ExperimentError } from "../errors.js";
import { type ExperimentJob, executeJob, JobInterruptedError, type JobOutcome, type JobProgress, throttledProgress } from "../jobs.js";
import { nodeEnv, nodeExperimentRegistry, writeReport } from "../node.js";
import { type ExperimentPlan, planExperiment } from "../plan.js";
import { proximityTable } from "../proximity.js";
import { collectResults, sizedPlan } from "../runner.js";
import { acquireJobLock } from "./job-lock.js";

export type ChildIn =
  | { type: "init"; root: string; config: ExperimentConfig; backend: string; blasThreads?: number }
  | { type: "job"; job: ExperimentJob }
  | { type: "report"; note: string; wallSeconds: number };

export type ChildOut =
  | { type: "ready"; backend: string; device: string }
  | { type: "progress"; progress: JobProgress }
  | { type: "waiting"; holder: string }
  | { type: "done"; skipped?: boolean; outcome?: JobOutcome }
  | { type: "error"; message: string; interrupted?: boolean };

let state: { root: string; config: ExperimentConfig; env: ReturnType<typeof nodeEnv>; plan: ExperimentPlan; backend: string; device: string } | undefined;
const send = (m: ChildOut) => process.send?.(m);
const signals = installSignalHandlers();

async function handle(m: ChildIn): Promise<void> {
  if (m.type === "init") {
    const { backend, device } = await initBackend({ prefer: m.backend as never, blasThreads: m.blasThreads, onNotice: () => {} });
    const env = nodeEnv(m.root);
    state = {
      root: m.root,
      config: m.config,
      env,
      plan: planExperiment(m.config, await nodeExperimentRegistry(m.config)),
      backend,
      device: device.description,
    };
    await env.loadData(m.config);
    send({ type: "ready", backend, device: device.description });
    return;
  }
  if (!state) throw new Error("the training process got work before init");
  const { env, plan, config, root } = state;
  const data = await env.loadData(config);
  if (m.type === "report") {
    const sized = sizedPlan(config, plan.registry, data);
    const results = await collectResults(sized, env, proximityTable(sized, data));
    results.backend = state.backend;
    results.device = state.device;
    results.wallSeconds = m.wallSeconds;
    results.notes = [...(results.notes ?? []), m.note];
    await writeReport(root, results);
    send({ type: "done" });
    return;
  }
  const job = m.job;
  const lock = await acquireJobLock(root, job.id, (h) =>
    send({ type: "waiting", holder: h ? `pid ${h.pid} on ${h.host} since ${h.since}` : "another process" }),
  );
  try {
    // A finished job's outcome is final: a second delivery (after a lost worker) only passes it on.
    const prior = await env.readJson<JobOutcome>(job.outcome);
    if (prior) {
      send({ type: "done", skipped: true, outcome: prior });
      return;
    }
    const outcome = await executeJob(
      {
        plan,
        data,
        env,
        signal: signals.signal,
        onProgress: throttledProgress((progress) => send({ type: "progress", progress })),
      },
      job,
    );
    send({ type: "done", outcome });
  } finally {
    await lock.release();
  }
}

process.on("message", (m: ChildIn) => {
  handle(m).catch((e) => {
    // Errors of ours say what to do in their message; anything else keeps its stack for a bug report.
    const message = e instanceof ExperimentError ? e.message : e instanceof Error ? (e.stack ?? e.message) : String(e);
    send({ type: "error", message, interrupted: e instanceof JobInterruptedError });
  });
});
// The worker is gone (killed, host lost): stop too, so that the job's lock goes with it.
process.on("disconnect", () => process.exit(0));
