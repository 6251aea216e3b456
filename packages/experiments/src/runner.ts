import type { Registry } from "@midtrain/schedulers";
import type { EvalRecord, TrainRecord } from "@midtrain/trainer";
import { type BranchOutcome, type SftOutcome, aggregateResults, selectBestLr } from "./aggregate.js";
import { type ExperimentConfig, parseExperimentConfig } from "./config.js";
import type { ExperimentData, RunEnv } from "./env.js";
import { ExperimentError } from "./errors.js";
import { type ExperimentJob, executeJob, type JobOutcome, type JobProgress, planJobs, probePath } from "./jobs.js";
import { type ExperimentPlan, planExperiment } from "./plan.js";
import { runJobs } from "./pool.js";
import { experimentRegistry } from "./plugins.js";
import { computeFindings, lrGridWarnings } from "./findings.js";
import { proximityTable } from "./proximity.js";
import { decodeProbe, type Probe, type ProbeJson, probeCka } from "./probe.js";
import type { CkaResults, Curve, ExperimentResults } from "./report/types.js";

export interface RunOptions {
  env: RunEnv;
  /** Runs one job somewhere else (a worker process); default: in this process. */
  runJob?: (job: ExperimentJob, slot: number) => Promise<void>;
  concurrency?: number;
  onProgress?: (p: JobProgress) => void;
  onJob?: (event: "start" | "done", job: ExperimentJob) => void;
  signal?: AbortSignal;
  backend?: string;
  device?: string;
  /** Schedule registry with the config's plugins (default: loaded here through `env.importModule`). */
  registry?: Registry;
}

/** Jobs whose outcome.json exists (finished in an earlier invocation). */
export async function finishedJobs(env: RunEnv, jobs: readonly ExperimentJob[]): Promise<Set<string>> {
  const done = new Set<string>();
  for (const j of jobs) if (await env.readJson<JobOutcome>(j.outcome)) done.add(j.id);
  return done;
}

/**
 * Records the plan in `plan.json`, refusing a folder that holds another config's run. A folder
 * where no job has left anything yet (a run that failed before training) takes the new config.
 */
export async function claimRunFolder(env: RunEnv, config: ExperimentConfig, jobs: readonly ExperimentJob[]): Promise<void> {
  const prior = await env.readJson<{ config: ExperimentConfig }>("plan.json");
  if (prior && JSON.stringify(prior.config) !== JSON.stringify(config)) {
    // Anything the earlier plan's jobs left (an outcome, a metrics line) means training happened here.
    let priorJobs: readonly ExperimentJob[];
    try {
      const priorConfig = parseExperimentConfig(prior.config, "plan.json");
      priorJobs = planJobs(planExperiment(priorConfig, await experimentRegistry(priorConfig, { import: env.importModule })));
    } catch {
      priorJobs = jobs;
    }
    let started = false;
    for (const j of new Set([...priorJobs, ...jobs])) {
      if ((await env.readJson(j.outcome)) || (await env.readMetrics(`${j.dir}/metrics.jsonl`)).length) {
        started = true;
        break;
      }
    }
    if (started) {
      throw new ExperimentError("this run folder holds an experiment with a different config; use a new --out folder, or delete the folder to start over");
    }
  }
  await env.writeJson("plan.json", { config, jobs: jobs.map((j) => j.id) });
}

/**
 * Runs an experiment: every job not finished before (resume), then the results table and
 * report data. Jobs run in this process unless `runJob` sends them elsewhere. The data is
 * loaded (and checked) before any job starts; `runJob` is not called when nothing is left.
 */
export async function runExperiment(config: ExperimentConfig, opts: RunOptions): Promise<ExperimentResults> {
  const t0 = Date.now();
  const registry = opts.registry ?? (await experimentRegistry(config, { import: opts.env.importModule }));
  const plan = planExperiment(config, registry);
  const jobs = planJobs(plan);
  await claimRunFolder(opts.env, config, jobs);
  // This process holds the run folder: temporary folders of writes killed earlier can go.
  for (const dir of new Set(jobs.filter((j) => j.kind !== "sft").map((j) => `${j.dir}/checkpoints`))) {
    await opts.env.storage(dir).cleanTemporary?.();
  }
  const done = await finishedJobs(opts.env, jobs);
  const data = await opts.env.loadData(config);
  const sized = sizedPlan(config, registry, data);
  const run =
    opts.runJob ??
    (async (job: ExperimentJob) => {
      await executeJob({ plan: sized, data, env: opts.env, onProgress: opts.onProgress, signal: opts.signal }, job);
    });
  await runJobs(jobs, (j, slot) => run(j as ExperimentJob, slot), {
    concurrency: opts.concurrency ?? 1,
    done,
    onStart: (j) => opts.onJob?.("start", j as ExperimentJob),
    onDone: (j) => opts.onJob?.("done", j as ExperimentJob),
  });
  const results = await collectResults(sized, opts.env, proximityTable(sized, data));
  results.backend = opts.backend ?? results.backend;
  results.device = opts.device;
  results.wallSeconds = (Date.now() - t0) / 1000;
  await opts.env.writeJson("results.json", results);
  return results;
}

/**
 * The plan with the loaded data's SFT set sizes, which fix an epochs-based SFT length (the jobs
 * read it from the data too).
 */
export function sizedPlan(config: ExperimentConfig, registry: Registry, data: ExperimentData): ExperimentPlan {
  const sftExamples = Object.fromEntries(Object.entries(data.sft).map(([d, s]) => [d, s.train.numSequences]));
  return planExperiment(config, registry, { sftExamples });
}

/** What an epochs-based SFT length came to for each set (examples, epochs, steps); undefined for `sft.steps` or an unsized plan. */
function sftLengthNote(plan: ExperimentPlan): string | undefined {
  const sft = plan.config.sft;
  if (sft?.epochs === undefined || !plan.sftExamples) return undefined;
  const domains = [...new Set(plan.sftRuns.map((r) => r.domain))];
  return `SFT length: ${sft.epochs} epoch(s) over each set's training examples in batches of ${sft.batchSize}: ${domains
    .map((d) => `${d} ${plan.sftExamples![d]} examples → ${plan.sftSteps(d)} steps`)
    .join(", ")}`;
}

/** Reads every job's outcome and metrics into the report's data. */
export async function collectResults(plan: ExperimentPlan, env: RunEnv, proximity: Record<string, Record<string, number>> = {}): Promise<ExperimentResults> {
  const c = plan.config;
  const jobs = planJobs(plan);
  const sft: SftOutcome[] = [];
  const before: BranchOutcome[] = [];
  const curves: Curve[] = [];
  const lengthNote = sftLengthNote(plan);
  const notes: string[] = lengthNote ? [lengthNote] : [];
  const missing: string[] = [];
  const sftCka = new Map<SftOutcome, number[]>();
  const probes = new Map<string, Probe>();
  const probeOf = async (key: string, job: ExperimentJob) => {
    if (!probes.has(key)) {
      const j = await env.readJson<ProbeJson>(probePath(job));
      if (j) probes.set(key, decodeProbe(j));
    }
    return probes.get(key);
  };
  const branchCka: CkaResults["branchVsBaseline"] = [];
  for (const job of jobs) {
    const outcome = await env.readJson<JobOutcome>(job.outcome);
    if (!outcome) {
      missing.push(job.id);
      continue;
    }
    const records = await env.readMetrics(`${job.dir}/metrics.jsonl`, (where) => notes.push(`${where}: a torn last line (a write was cut off) was left out`));
    const byStep = new Map<number, { step: number; tokens: number; trainLoss?: number; valLoss?: Record<string, number> }>();
    for (const r of records) {
      if (r.type === "train") {
        const t = r as TrainRecord;
        byStep.set(t.step, { ...(byStep.get(t.step) ?? {}), step: t.step, tokens: t.tokens, trainLoss: t.loss });
      } else if (r.type === "eval" && (r as EvalRecord).loss !== null) {
        const e = r as EvalRecord;
        const p = byStep.get(e.step) ?? { step: e.step, tokens: e.tokensSeen };
        p.valLoss = { ...(p.valLoss ?? {}), [e.set]: e.loss as number };
        byStep.set(e.step, p);
      }
    }
    const points = [...byStep.values()].sort((a, b) => a.step - b.step);
    if (job.kind === "trunk") {
      if (job.endStep !== plan.trunk.steps) continue; // the last segment's metrics file holds the whole trunk
      curves.push({ id: job.id, phase: "pretrain", branch: "pretrain", seed: job.pretrainSeed, points });
      const base = plan.branches.find((b) => b.kind === "baseline");
      if (base && outcome.general)
        before.push({
          branch: base.name,
          pretrainSeed: job.pretrainSeed,
          generalLoss: outcome.general.loss,
          generalTestLoss: outcome.test?.[c.data.general]?.loss ?? undefined,
        });
    } else if (job.kind === "branch") {
      curves.push({ id: job.id, phase: "branch", branch: job.branch!, seed: job.pretrainSeed, points });
      const trunk = jobs.find((j) => j.kind === "trunk" && j.pretrainSeed === job.pretrainSeed && j.endStep === plan.trunk.steps)!;
      const [mine, base] = [await probeOf(job.id, job), await probeOf(trunk.id, trunk)];
      if (mine && base) branchCka.push({ branch: job.branch!, pretrainSeed: job.pretrainSeed, perLayer: probeCka(base, mine) });
      if (outcome.general)
        before.push({
          branch: job.branch!,
          pretrainSeed: job.pretrainSeed,
          generalLoss: outcome.general.loss,
          generalTestLoss: outcome.test?.[c.data.general]?.loss ?? undefined,
        });
    } else {
      curves.push({ id: job.id, phase: "sft", branch: job.branch!, sftDomain: job.domain, seed: job.seed, lr: job.lr, points });
      const inDomain = outcome.evals[job.domain!];
      if (inDomain && outcome.general) {
        const o: SftOutcome = {
          branch: job.branch!,
          domain: job.domain!,
          lr: job.lr!,
          seed: job.seed!,
          pretrainSeed: job.pretrainSeed,
          sftLoss: inDomain.loss,
          generalLoss: outcome.general.loss,
          testLoss: outcome.test?.[job.domain!]?.loss ?? undefined,
          generalTestLoss: outcome.test?.[c.data.general]?.loss ?? undefined,
        };
        sft.push(o);
        if (outcome.ckaVsStart) sftCka.set(o, outcome.ckaVsStart);
      }
    }
  }
  const rows = aggregateResults(plan.branches, sft, before, proximity);
  const domainSource = Object.fromEntries(Object.entries(c.data.sft).flatMap(([d, s]) => (s.matches ? [[d, s.matches]] : [])));
  const findings = computeFindings(plan.branches, sft, before, proximity, { domainSource });
  if (c.sft) notes.push(...lrGridWarnings(sft, c.sft.lrGrid));
  const sftVsStart: CkaResults["sftVsStart"] = [];
  for (const o of selectBestLr(sft).values()) {
    const perLayer = sftCka.get(o);
    if (perLayer) sftVsStart.push({ branch: o.branch, sftDomain: o.domain, pretrainSeed: o.pretrainSeed, seed: o.seed, lr: o.lr, perLayer });
  }
  const cka = branchCka.length || sftVsStart.length ? { branchVsBaseline: branchCka, sftVsStart } : undefined;
  return { name: c.name, createdAt: new Date().toISOString(), backend: c.backend, curves, rows, findings, ...(cka ? { cka } : {}), notes, missing };
}
