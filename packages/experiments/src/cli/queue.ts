/**
 * The distributed-sweep commands: `midtrain run <config> --queue URL --storage DIR` (enqueue),
 * `midtrain worker` and `midtrain status`. The queue code is in ../queue/.
 */
import { readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { installSignalHandlers } from "@midtrain/trainer/node";
import { type Command, InvalidArgumentError, Option } from "commander";
import { checkDataFiles, loadExperimentConfig, nodeExperimentRegistry } from "../node.js";
import { describePlan, planExperiment } from "../plan.js";

// The queue modules (BullMQ, ioredis) load only when a queue command runs: every other command starts without them.
const queueModules = async () => ({
  ...(await import("../queue/redis.js")),
  ...(await import("../queue/status.js")),
  ...(await import("../queue/sweep.js")),
  ...(await import("../queue/worker.js")),
});

// Bundled into dist/cli.js: the training process script and package.json are found from there.
const here = dirname(fileURLToPath(import.meta.url));

/** The version of @midtrain/experiments that this CLI is (a sweep's workers must all have it). */
export function cliVersion(): string {
  try {
    return (JSON.parse(readFileSync(join(here, "../package.json"), "utf8")) as { version: string }).version;
  } catch {
    return "unknown";
  }
}

function positiveInt(what: string) {
  return (v: string): number => {
    const n = Number(v);
    if (!/^\s*\d+\s*$/.test(v) || !Number.isInteger(n) || n < 1) throw new InvalidArgumentError(`expected a whole number of ${what} >= 1, got '${v}'`);
    return n;
  };
}

/** `midtrain run <config> --queue URL --storage DIR`: plan, check, enqueue; no training here. */
export async function runOnQueue(configPath: string, o: { queue?: string; storage?: string; out?: string; jobs?: number; backend?: string }): Promise<void> {
  const { checkQueueUrl, enqueueSweep, QueueError } = await queueModules();
  if (!o.queue || !o.storage) throw new QueueError("--queue and --storage go together: the Redis URL of the queue and the folder every worker shares");
  if (o.out) throw new QueueError("--out does not apply with --queue: the sweep's folder is <--storage>/<config name>");
  if (o.jobs) throw new QueueError("--jobs does not apply with --queue: start workers with midtrain worker --concurrency N");
  if (o.backend) throw new QueueError("--backend does not apply with --queue: each worker picks its backend (midtrain worker --backend)");
  checkQueueUrl(o.queue);
  const config = await loadExperimentConfig(configPath);
  checkDataFiles(config, configPath);
  const registry = await nodeExperimentRegistry(config);
  console.log(describePlan(planExperiment(config, registry)));
  const r = await enqueueSweep({ url: o.queue, storage: o.storage, config, registry, version: cliVersion() });
  const what = r.enqueued.length ? `enqueued ${r.enqueued.length} job(s) that can run now (${r.enqueued.join(", ")})` : "nothing new to enqueue";
  console.log(
    `${r.resumed ? `sweep ${r.sweep} resumes` : `sweep ${r.sweep} is on the queue`}: ${r.done}/${r.total} jobs done, ${what}` +
      `${r.retried.length ? `; failed jobs retried: ${r.retried.join(", ")}` : ""}.`,
  );
  console.log(`folder: ${r.root}`);
  console.log(
    `workers: midtrain worker --queue ${o.queue} --storage ${o.storage}   status: midtrain status --queue ${o.queue}   report: midtrain report ${r.root}`,
  );
}

/** Registers `midtrain worker` and `midtrain status`. */
export function registerQueueCommands(program: Command): void {
  program
    .command("worker")
    .description("take jobs of sweeps from a Redis queue and train them (stops when the queue is drained, unless --service)")
    .requiredOption("--queue <url>", "Redis of the queue, redis://HOST:PORT")
    .requiredOption("--storage <dir>", "the sweeps' shared storage folder, as this host mounts it")
    .addOption(new Option("-b, --backend <name>", "tfjs backend (default: the config's)").choices(["auto", "cuda", "webgpu", "wasm", "cpu"]))
    .option("-c, --concurrency <n>", "jobs at once, each in its own training process", positiveInt("jobs"), 1)
    .option("--service", "keep waiting for jobs when the queue is empty")
    .option(
      "--lock-seconds <s>",
      "a job's lock time: it is renewed every half of it; a lost worker's job moves on after about twice it",
      positiveInt("seconds"),
      60,
    )
    .action(async (o: { queue: string; storage: string; backend?: string; concurrency: number; service?: boolean; lockSeconds: number }) => {
      const { checkQueueUrl, runQueueWorker } = await queueModules();
      checkQueueUrl(o.queue);
      const stop = new AbortController();
      const signals = installSignalHandlers({
        onSignal: (sig) => {
          console.error(
            `[midtrain worker] ${sig}: running jobs stop after their current step with a checkpoint and go back to the queue (again to exit at once)`,
          );
          stop.abort();
        },
      });
      try {
        await runQueueWorker({
          url: o.queue,
          storage: o.storage,
          version: cliVersion(),
          childScript: join(here, "queue-child.js"),
          backend: o.backend,
          concurrency: o.concurrency,
          service: o.service,
          lockSeconds: o.lockSeconds,
          signal: stop.signal,
        });
      } finally {
        signals.dispose();
      }
    });

  program
    .command("status")
    .description("jobs per state and each running job's progress, for the sweeps of a Redis queue")
    .requiredOption("--queue <url>", "Redis of the queue, redis://HOST:PORT")
    .option("--sweep <name>", "only this sweep")
    .option("--json", "print the status as JSON")
    .action(async (o: { queue: string; sweep?: string; json?: boolean }) => {
      const { checkQueueUrl, formatQueueStatus, queueStatus } = await queueModules();
      checkQueueUrl(o.queue);
      const s = await queueStatus(o.queue, o.sweep);
      console.log(o.json ? JSON.stringify(s, null, 2) : formatQueueStatus(o.queue, s));
    });
}
