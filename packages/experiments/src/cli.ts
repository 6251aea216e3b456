#!/usr/bin/env node
import { type ChildProcess, fork } from "node:child_process";
import { existsSync, readFileSync, realpathSync } from "node:fs";
import { availableParallelism, freemem, constants as osConstants } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { initBackend } from "@midtrain/backend";
import { corpusManifest } from "@midtrain/data/node";
import { parseMemorySize } from "@midtrain/trainer";
import { installSignalHandlers } from "@midtrain/trainer/node";
import { Command, InvalidArgumentError, Option } from "commander";
import cliProgress from "cli-progress";
import type { ExperimentConfig } from "./config.js";
import { type ExperimentJob, JobInterruptedError, type JobProgress, planJobs } from "./jobs.js";
import { acquireRunLock, checkDataFiles, checkRunFolder, loadExperimentConfig, nodeEnv, nodeExperimentRegistry, writeReport } from "./node.js";
import { describeMemoryPlan, fitConfigToMemory, memoryBackend, memoryBudget, planMemory } from "./memory.js";
import { describePlan, planExperiment } from "./plan.js";
import { formatFindingsTable, formatResultsTable } from "./report/index.js";
import type { ExperimentResults } from "./report/types.js";
import { collectResults, finishedJobs, runExperiment, sizedPlan } from "./runner.js";
import { proximityTable } from "./proximity.js";
import { registerPrepareCommand } from "./cli/prepare.js";
import { registerQueueCommands, runOnQueue } from "./cli/queue.js";
import { registerTokenizerCommand } from "./cli/tokenizer.js";

const here = dirname(fileURLToPath(import.meta.url));

function memoryOption(v: string): number {
  try {
    return parseMemorySize(v);
  } catch (e) {
    throw new InvalidArgumentError((e as Error).message);
  }
}

function fmtEta(s: number): string {
  if (!Number.isFinite(s)) return "--";
  const m = Math.floor(s / 60);
  return m ? `${m}m${String(Math.round(s % 60)).padStart(2, "0")}s` : `${Math.round(s)}s`;
}

/** One progress line per worker slot and an overall bar (a plain log line every 10 s without a TTY). */
function progressView(total: number, done: number) {
  const tty = Boolean(process.stderr.isTTY) && !process.env.CI;
  const started = Date.now();
  let finished = done;
  if (!tty) {
    let last = 0;
    const latest = new Map<string, JobProgress>();
    return {
      update(p: JobProgress) {
        latest.set(p.job, p);
        if (Date.now() - last < 10_000) return;
        last = Date.now();
        const parts = [...latest.values()].map(
          (q) => `${q.job} ${q.step}/${q.endStep} ${Math.round(q.tokensPerSec)} tok/s loss ${q.loss.toFixed(3)} eta ${fmtEta(q.etaSeconds)}`,
        );
        console.error(`[${fmtEta((Date.now() - started) / 1000)}] ${finished}/${total} jobs | ${parts.join(" | ")}`);
      },
      job(event: "start" | "done", job: ExperimentJob) {
        if (event === "done") {
          finished++;
          latest.delete(job.id);
          console.error(`[${fmtEta((Date.now() - started) / 1000)}] done ${job.id} (${finished}/${total})`);
        }
      },
      stop() {},
    };
  }
  const multi = new cliProgress.MultiBar(
    { format: "{label} |{bar}| {value}/{total} {info}", hideCursor: true, clearOnComplete: false, barsize: 24, autopadding: true },
    cliProgress.Presets.shades_classic,
  );
  const overall = multi.create(total, finished, { label: "jobs".padEnd(44), info: "" });
  const bars = new Map<string, cliProgress.SingleBar>();
  return {
    update(p: JobProgress) {
      let bar = bars.get(p.job);
      if (!bar) {
        bar = multi.create(p.endStep, p.step, { label: p.job.slice(0, 44).padEnd(44), info: "" });
        bars.set(p.job, bar);
      }
      bar.setTotal(p.endStep);
      bar.update(p.step, { info: `${p.phase} ${Math.round(p.tokensPerSec)} tok/s loss ${p.loss.toFixed(3)} ETA ${fmtEta(p.etaSeconds)}` });
    },
    job(event: "start" | "done", job: ExperimentJob) {
      if (event === "done") {
        finished++;
        overall.update(finished, { info: `elapsed ${fmtEta((Date.now() - started) / 1000)}` });
        const bar = bars.get(job.id);
        if (bar) {
          multi.remove(bar);
          bars.delete(job.id);
        }
      }
    },
    stop() {
      multi.stop();
    },
  };
}

/** The last lines a child wrote to stderr (kept to explain a crash), also passed through to ours. */
function stderrTail(stream: NodeJS.ReadableStream | null, keep = 30): () => string {
  const lines: string[] = [];
  stream?.on("data", (chunk: Buffer) => {
    process.stderr.write(chunk);
    lines.push(...chunk.toString("utf8").split("\n").filter(Boolean));
    if (lines.length > keep) lines.splice(0, lines.length - keep);
  });
  return () => lines.join("\n");
}

type WorkerMessage = { type: string; progress?: JobProgress; job?: string; message?: string; interrupted?: boolean };

interface Worker {
  child: ChildProcess;
  ready: Promise<void>;
  tail: () => string;
}

/**
 * Runs jobs in `n` forked worker processes (the built worker.js beside this file), started on
 * the first job given to them, so a finished run starts none. The cores are shared out: each
 * worker runs its native BLAS on `cores / n` threads.
 */
function workerPool(root: string, config: ExperimentConfig, backend: string, n: number, onProgress: (p: JobProgress) => void) {
  const script = join(here, "worker.js");
  if (!existsSync(script)) return undefined;
  const workers: Array<Worker | undefined> = new Array(n).fill(undefined);
  const blasThreads = Math.max(1, Math.floor(availableParallelism() / n));
  const describeExit = (code: number | null, sig: NodeJS.Signals | null, w: Worker) =>
    `${sig ? `was killed by ${sig}` : `exited with code ${code}`}${w.tail() ? `; its last output:\n${w.tail()}` : ""}`;
  const start = (slot: number): Worker => {
    const child = fork(script, [], { stdio: ["ignore", "inherit", "pipe", "ipc"] });
    const w: Worker = { child, ready: Promise.resolve(), tail: stderrTail(child.stderr) };
    w.ready = new Promise<void>((res, rej) => {
      const onMsg = (m: WorkerMessage) => {
        if (m.type !== "ready" && m.type !== "error") return;
        child.off("message", onMsg);
        child.off("exit", onExit);
        if (m.type === "ready") res();
        else rej(new Error(`worker ${slot} could not start: ${m.message}`));
      };
      const onExit = (code: number | null, sig: NodeJS.Signals | null) => rej(new Error(`worker ${slot} ${describeExit(code, sig, w)}`));
      child.on("message", onMsg);
      child.once("exit", onExit);
    });
    w.ready.catch(() => {}); // awaited by run(); never an unhandled rejection
    child.send({ type: "init", root, config, backend, blasThreads });
    return w;
  };
  return {
    async run(job: ExperimentJob, slot: number) {
      let w = workers[slot];
      if (!w || w.child.exitCode !== null || w.child.signalCode !== null) {
        w = start(slot);
        workers[slot] = w;
      }
      await w.ready;
      const worker = w;
      await new Promise<void>((res, rej) => {
        const finish = (f: () => void) => {
          worker.child.off("message", onMsg);
          worker.child.off("exit", onExit);
          f();
        };
        const onMsg = (m: WorkerMessage) => {
          if (m.type === "progress" && m.progress) onProgress(m.progress);
          else if (m.type === "done") finish(() => res());
          else if (m.type === "error") {
            const err = m.interrupted ? new JobInterruptedError(job.id, -1) : new Error(`job ${job.id} failed in a worker:\n${m.message}`);
            if (m.interrupted) err.message = m.message ?? err.message;
            finish(() => rej(err));
          }
        };
        const onExit = (code: number | null, sig: NodeJS.Signals | null) =>
          finish(() => rej(new Error(`the worker running ${job.id} ${describeExit(code, sig, worker)}`)));
        worker.child.on("message", onMsg);
        worker.child.on("exit", onExit);
        worker.child.send({ type: "job", job }, (err) => {
          if (err)
            finish(() =>
              rej(
                new Error(
                  `could not send ${job.id} to its worker (${err.message}); the worker ${describeExit(worker.child.exitCode, worker.child.signalCode, worker)}`,
                ),
              ),
            );
        });
      });
    },
    /** Passes a stop signal on: each worker checkpoints and stops after its current step. */
    signal(sig: NodeJS.Signals) {
      for (const w of workers) if (w && w.child.exitCode === null) w.child.kill(sig);
    },
    close() {
      for (const w of workers) if (w?.child.connected) w.child.disconnect();
    },
  };
}

function jobsOption(v: string): number {
  const n = Number(v);
  if (!/^\s*\d+\s*$/.test(v) || !Number.isInteger(n) || n < 1) {
    throw new InvalidArgumentError(`expected a whole number of jobs >= 1, got '${v}'`);
  }
  return n;
}

async function printAndWrite(dir: string, results: ExperimentResults) {
  const files = await writeReport(dir, results);
  console.log(`\n${formatResultsTable(results)}`);
  const findings = formatFindingsTable(results.findings);
  if (findings) console.log(`\n${findings}`);
  if (results.notes?.length) console.log(`\n${results.notes.map((n) => `note: ${n}`).join("\n")}`);
  console.log(`\nreport: ${files.html}\ntable:  ${files.csv}\ndata:   ${files.json}`);
}

export async function main(argv = process.argv): Promise<void> {
  const program = new Command();
  program
    .name("midtrain")
    .description("Midtraining experiments: pretrain, branch, fine-tune, measure.")
    .version(packageVersion(), "-V, --version")
    .showHelpAfterError();

  program
    .command("run")
    .description("run an experiment config (resumes an interrupted run in the same --out folder)")
    .argument("<config>", "experiment config (.yaml or .json)")
    .option("-o, --out <dir>", "run folder (default: runs/<name>)")
    .addOption(new Option("-b, --backend <name>", "tfjs backend").choices(["auto", "cuda", "webgpu", "wasm", "cpu"]))
    .option(
      "-j, --jobs <n>",
      "jobs in parallel, each in its own worker process with cores/n native BLAS threads (default: one per CPU core on wasm/cpu, 1 on a GPU)",
      jobsOption,
    )
    .option("--queue <url>", "enqueue on the Redis queue at redis://HOST:PORT instead of training here (midtrain worker trains)")
    .option("--storage <dir>", "with --queue: the folder every worker shares; the sweep's files go to <dir>/<config name>")
    .option(
      "--memory <size>",
      "memory budget of the device, e.g. 80GB (default: free memory on cpu/wasm, at most the 4 GiB wasm heap; WebGPU adds its buffer limit)",
      memoryOption,
    )
    .action(async (configPath: string, o: { out?: string; backend?: string; jobs?: number; queue?: string; storage?: string; memory?: number }) => {
      if (o.queue || o.storage) return runOnQueue(configPath, o);
      let config = await loadExperimentConfig(configPath);
      checkDataFiles(config, configPath);
      const out = checkRunFolder(o.out ?? join("runs", config.name));
      const registry = await nodeExperimentRegistry(config);
      const plan = planExperiment(config, registry);
      console.log(describePlan(plan));
      const lock = await acquireRunLock(out);
      let stopSignal: NodeJS.Signals | undefined;
      let pool: ReturnType<typeof workerPool>;
      const signals = installSignalHandlers({
        onSignal: (sig) => {
          stopSignal = sig;
          console.error(`\n[midtrain] ${sig}: stopping after the current step with a checkpoint (again to exit at once)`);
          pool?.signal(sig);
        },
      });
      try {
        const { backend, device } = await initBackend({ prefer: (o.backend ?? config.backend) as never });
        console.log(`backend: ${backend} — ${device.description}${device.isSoftware ? " (software)" : ""}`);
        // Micro-batches and accumulation that fit the device (tokens per step unchanged); a config that cannot fit stops here.
        const memBackend = memoryBackend(backend);
        // Parallel jobs share the free memory.
        const budget = memoryBudget(memBackend, {
          memoryBytes: o.memory,
          freeBytes: freemem() / (o.jobs ?? (device.isCpu ? availableParallelism() : 1)),
          limits: device.limits,
        });
        const memPlan = planMemory(config, { backend: memBackend, budget });
        console.log(describeMemoryPlan(memPlan));
        config = fitConfigToMemory(config, memPlan);
        const cores = availableParallelism();
        const jobs = o.jobs ?? (device.isCpu ? cores : 1);
        if (device.isCpu && jobs > cores) console.error(`[midtrain] --jobs ${jobs} is more than the ${cores} CPU cores; jobs will share cores`);
        const env = nodeEnv(out);
        const allJobs = planJobs(plan);
        const view = progressView(allJobs.length, (await finishedJobs(env, allJobs)).size);
        pool = jobs > 1 ? workerPool(out, config, backend, jobs, (p) => view.update(p)) : undefined;
        if (jobs > 1 && !pool) console.error("[midtrain] worker script not built; running jobs in this process (pnpm build enables parallel jobs)");
        const t0 = Date.now();
        try {
          const results = await runExperiment(config, {
            env,
            runJob: pool ? (job, slot) => pool!.run(job, slot) : undefined,
            concurrency: pool ? jobs : 1,
            onProgress: (p) => view.update(p),
            onJob: (e, j) => view.job(e, j),
            signal: signals.signal,
            registry,
            backend,
            device: device.description,
          });
          view.stop();
          results.notes = [...(results.notes ?? []), `${pool ? jobs : 1} job(s) in parallel; wall time ${((Date.now() - t0) / 1000).toFixed(0)} s`];
          await printAndWrite(out, results);
        } catch (e) {
          view.stop();
          if (stopSignal) throw new RunInterrupted(stopSignal, out);
          throw e;
        } finally {
          pool?.close();
        }
      } finally {
        signals.dispose();
        await lock.release();
      }
    });

  program
    .command("corpora")
    .description("list the corpora shipped with @midtrain/data (usable as `corpus: <name>` in a config)")
    .action(() => {
      const m = corpusManifest();
      for (const [name, c] of Object.entries(m.corpora)) {
        const t = c.files.train;
        console.log(
          `${name.padEnd(12)} ${c.kind.padEnd(8)} ${String(t.documents).padStart(7)} docs ${(t.textBytes / 1e6).toFixed(1).padStart(6)} MB  ${c.description}`,
        );
      }
    });

  program
    .command("report")
    .description("rebuild the report, table and results.json of a run folder")
    .argument("<dir>", "run folder")
    .action(async (dir: string) => {
      const env = nodeEnv(dir);
      const saved = await env.readJson<{ config: ExperimentConfig }>("plan.json");
      if (!saved) throw new Error(`${dir} has no plan.json; is it a midtrain run folder?`);
      const data = await env.loadData(saved.config);
      const plan = sizedPlan(saved.config, await nodeExperimentRegistry(saved.config), data);
      const prior = await env.readJson<ExperimentResults>("results.json");
      const results = await collectResults(plan, env, proximityTable(plan, data));
      if (prior) {
        // Keep what only the run knew (device, wall time, its notes), but never hide what is missing now.
        const runNotes = (prior.notes ?? []).filter((n) => !results.notes?.includes(n));
        Object.assign(results, {
          backend: prior.backend,
          device: prior.device,
          wallSeconds: prior.wallSeconds,
          notes: [...(results.notes ?? []), ...runNotes],
        });
      }
      await printAndWrite(resolve(dir), results);
    });

  program
    .command("plan")
    .description("print what a config expands to (branches, derived steps and tokens, runs) and its memory plan per phase")
    .argument("<config>")
    .addOption(
      new Option("-b, --backend <name>", "backend to plan memory for (default: the config's; auto plans as wasm)").choices([
        "auto",
        "cuda",
        "webgpu",
        "wasm",
        "cpu",
      ]),
    )
    .option("--memory <size>", "memory budget, e.g. 80GB: prints the micro-batch and gradAccum that fit", memoryOption)
    .action(async (configPath: string, o: { backend?: string; memory?: number }) => {
      const config = await loadExperimentConfig(configPath);
      console.log(describePlan(planExperiment(config, await nodeExperimentRegistry(config))));
      const backend = memoryBackend(o.backend ?? config.backend);
      const budget = memoryBudget(backend, { memoryBytes: o.memory, freeBytes: o.memory === undefined ? freemem() : undefined });
      console.log(describeMemoryPlan(planMemory(config, { backend, budget })));
    });

  registerQueueCommands(program);
  registerPrepareCommand(program);
  registerTokenizerCommand(program);

  await program.parseAsync(argv);
}

/** This package's version (package.json sits one folder above src/ and dist/). */
function packageVersion(): string {
  try {
    return (JSON.parse(readFileSync(join(here, "../package.json"), "utf8")) as { version: string }).version;
  } catch {
    return "unknown";
  }
}

/** A run stopped by SIGINT/SIGTERM after checkpointing; the exit code is 128 + the signal's number. */
class RunInterrupted extends Error {
  readonly exitCode: number;
  constructor(sig: NodeJS.Signals, out: string) {
    super(`stopped by ${sig}; checkpoints are saved. Run the same command again to resume (${out}).`);
    this.exitCode = 128 + (osConstants.signals[sig] ?? 1);
  }
}

/**
 * Runs the CLI with this process's arguments and exits with its status: what the `midtrain` bin
 * (bin/midtrain.mjs, which every package manager's link or shim runs) and `node dist/cli.js` do.
 */
export function runCli(argv = process.argv): void {
  main(argv).catch((e) => {
    console.error(e instanceof Error ? e.message : String(e));
    process.exit(e instanceof RunInterrupted ? e.exitCode : 1);
  });
}

/** True when this file itself is the program (`node dist/cli.js …`), however it was reached. */
function isEntry(): boolean {
  const argv1 = process.argv[1];
  if (!argv1) return false;
  try {
    return realpathSync(argv1) === realpathSync(fileURLToPath(import.meta.url));
  } catch {
    return false;
  }
}

if (isEntry()) runCli();
