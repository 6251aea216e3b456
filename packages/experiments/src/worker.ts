/**
 * A job worker process: `midtrain run --jobs N` forks N of these. Messages in:
 * { type: "init", root, config, backend } then { type: "job", job }; out: "ready", "progress",
 * "done", "error". Each worker loads the data once and keeps its backend.
 */
import { initBackend } from "@midtrain/backend";
import { installSignalHandlers } from "@midtrain/trainer/node";
import type { ExperimentConfig } from "./config.js";
import { ExperimentError } from "./errors.js";
import { type ExperimentJob, executeJob, JobInterruptedError, throttledProgress } from "./jobs.js";
import { nodeEnv, nodeExperimentRegistry } from "./node.js";
import { type ExperimentPlan, planExperiment } from "./plan.js";

type InMessage = { type: "init"; root: string; config: ExperimentConfig; backend: string; blasThreads?: number } | { type: "job"; job: ExperimentJob };

let state: { config: ExperimentConfig; env: ReturnType<typeof nodeEnv>; plan: ExperimentPlan } | undefined;
const send = (m: unknown) => process.send?.(m);
// SIGINT/SIGTERM (from the terminal's process group or passed on by the parent): the running
// job checkpoints after its current step and reports itself interrupted.
const signals = installSignalHandlers();

process.on("message", async (m: InMessage) => {
  try {
    if (m.type === "init") {
      await initBackend({ prefer: m.backend as never, blasThreads: m.blasThreads, onNotice: () => {} });
      state = { config: m.config, env: nodeEnv(m.root), plan: planExperiment(m.config, await nodeExperimentRegistry(m.config)) };
      await state.env.loadData(m.config);
      send({ type: "ready" });
    } else if (m.type === "job") {
      if (!state) throw new Error("worker got a job before init");
      const env = state.env;
      const plan = state.plan;
      const data = await env.loadData(state.config);
      await executeJob(
        {
          plan,
          data,
          env,
          signal: signals.signal,
          onProgress: throttledProgress((progress) => send({ type: "progress", progress })),
        },
        m.job,
      );
      send({ type: "done", job: m.job.id });
    }
  } catch (e) {
    // Errors of ours say what to do in their message; anything else keeps its stack for a bug report.
    const message = e instanceof ExperimentError ? e.message : e instanceof Error ? (e.stack ?? e.message) : String(e);
    send({ type: "error", message, interrupted: e instanceof JobInterruptedError });
  }
});
process.on("disconnect", () => process.exit(0));
