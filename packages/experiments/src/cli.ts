#!/usr/bin/env node
import { fork } from "node:child_process";
import { existsSync } from "node:fs";
import { availableParallelism } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { initBackend } from "@midtrain/backend";
import { Command, Option } from "commander";
import cliProgress from "cli-progress";
import type { ExperimentConfig } from "./config.js";
import { type ExperimentJob, type JobProgress, planJobs } from "./jobs.js";
import { loadExperimentConfig, nodeEnv, writeReport } from "./node.js";
import { describePlan, planExperiment } from "./plan.js";
import { formatResultsTable } from "./report/index.js";
import type { ExperimentResults } from "./report/types.js";
import { collectResults, finishedJobs, runExperiment } from "./runner.js";
import { proximityTable } from "./proximity.js";

const here = dirname(fileURLToPath(import.meta.url));

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
        const parts = [...latest.values()].map((q) => `${q.job} ${q.step}/${q.endStep} ${Math.round(q.tokensPerSec)} tok/s loss ${q.loss.toFixed(3)} eta ${fmtEta(q.etaSeconds)}`);
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

/** Runs jobs in `n` forked worker processes (the built worker.js beside this file). */
function workerPool(root: string, config: ExperimentConfig, backend: string, n: number, onProgress: (p: JobProgress) => void) {
  const script = join(here, "worker.js");
  if (!existsSync(script)) return undefined;
  const workers = Array.from({ length: n }, () => {
    const child = fork(script, [], { stdio: ["ignore", "inherit", "inherit", "ipc"] });
    const ready = new Promise<void>((res, rej) => {
      child.once("message", (m: { type: string; message?: string }) => (m.type === "ready" ? res() : rej(new Error(m.message))));
      child.once("exit", (code) => rej(new Error(`worker exited with code ${code} during start-up`)));
    });
    // The cores are shared out between the workers: each runs its native BLAS on its own share.
    child.send({ type: "init", root, config, backend, blasThreads: Math.max(1, Math.floor(availableParallelism() / n)) });
    return { child, ready };
  });
  return {
    async run(job: ExperimentJob, slot: number) {
      const w = workers[slot];
      await w.ready;
      await new Promise<void>((res, rej) => {
        const onMsg = (m: { type: string; progress?: JobProgress; job?: string; message?: string }) => {
          if (m.type === "progress" && m.progress) onProgress(m.progress);
          else if (m.type === "done") finish(() => res());
          else if (m.type === "error") finish(() => rej(new Error(`job ${job.id} failed in a worker:\n${m.message}`)));
        };
        const onExit = (code: number | null) => finish(() => rej(new Error(`worker running ${job.id} exited (code ${code})`)));
        const finish = (f: () => void) => {
          w.child.off("message", onMsg);
          w.child.off("exit", onExit);
          f();
        };
        w.child.on("message", onMsg);
        w.child.on("exit", onExit);
        w.child.send({ type: "job", job });
      });
    },
    close() {
      for (const w of workers) w.child.disconnect();
    },
  };
}

async function printAndWrite(dir: string, results: ExperimentResults) {
  const files = await writeReport(dir, results);
  console.log(`\n${formatResultsTable(results)}`);
  console.log(`\nreport: ${files.html}\ntable:  ${files.csv}\ndata:   ${files.json}`);
}

export async function main(argv = process.argv): Promise<void> {
  const program = new Command();
  program.name("midtrain").description("Midtraining experiments: pretrain, branch, fine-tune, measure.").showHelpAfterError();

  program
    .command("run")
    .description("run an experiment config (resumes an interrupted run in the same --out folder)")
    .argument("<config>", "experiment config (.yaml or .json)")
    .option("-o, --out <dir>", "run folder (default: runs/<name>)")
    .addOption(new Option("-b, --backend <name>", "tfjs backend").choices(["auto", "cuda", "webgpu", "wasm", "cpu"]))
    .option("-j, --jobs <n>", "jobs in parallel (default: CPU cores for wasm/cpu, 1 on a GPU)", (v) => Number.parseInt(v, 10))
    .action(async (configPath: string, o: { out?: string; backend?: string; jobs?: number }) => {
      const config = await loadExperimentConfig(configPath);
      const out = resolve(o.out ?? join("runs", config.name));
      const plan = planExperiment(config);
      console.log(describePlan(plan));
      const { backend, device } = await initBackend({ prefer: (o.backend ?? config.backend) as never });
      console.log(`backend: ${backend} — ${device.description}${device.isSoftware ? " (software)" : ""}`);
      const jobs = o.jobs ?? (device.isCpu ? Math.min(2, availableParallelism()) : 1);
      const env = nodeEnv(out);
      const allJobs = planJobs(plan);
      const view = progressView(allJobs.length, (await finishedJobs(env, allJobs)).size);
      const pool = jobs > 1 ? workerPool(out, config, backend, jobs, (p) => view.update(p)) : undefined;
      if (jobs > 1 && !pool) console.error("[midtrain] worker script not built; running jobs in this process (pnpm build enables parallel jobs)");
      const t0 = Date.now();
      try {
        const results = await runExperiment(config, {
          env,
          runJob: pool ? (job, slot) => pool.run(job, slot) : undefined,
          concurrency: pool ? jobs : 1,
          onProgress: (p) => view.update(p),
          onJob: (e, j) => view.job(e, j),
          backend,
          device: device.description,
        });
        view.stop();
        results.notes = [...(results.notes ?? []), `${jobs} job(s) in parallel; wall time ${((Date.now() - t0) / 1000).toFixed(0)} s`];
        await printAndWrite(out, results);
      } finally {
        view.stop();
        pool?.close();
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
      const plan = planExperiment(saved.config);
      const prior = await env.readJson<ExperimentResults>("results.json");
      const results = await collectResults(plan, env, proximityTable(plan, await env.loadData(saved.config)));
      if (prior) Object.assign(results, { backend: prior.backend, device: prior.device, wallSeconds: prior.wallSeconds, notes: prior.notes });
      await printAndWrite(resolve(dir), results);
    });

  program
    .command("plan")
    .description("print what a config expands to (branches, derived steps and tokens, runs)")
    .argument("<config>")
    .action(async (configPath: string) => {
      console.log(describePlan(planExperiment(await loadExperimentConfig(configPath))));
    });

  await program.parseAsync(argv);
}

const invoked = process.argv[1] && resolve(process.argv[1]);
if (invoked && (invoked === fileURLToPath(import.meta.url) || invoked.endsWith("/bin/midtrain") || invoked.endsWith("cli.js"))) {
  main().catch((e) => {
    console.error(e instanceof Error ? e.message : String(e));
    process.exit(1);
  });
}
