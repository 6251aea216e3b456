import { type Batch, createMixer, evalBatches, type Mixer, type PackedSource } from "@midtrain/data";
import { createModel, getModelConfig } from "@midtrain/model";
import {
  AdamW,
  type AdamWOptions,
  branch,
  CheckpointCorruptError,
  type CheckpointStorage,
  checkpointName,
  type EvalResult,
  evaluate,
  latestValidCheckpoint,
  type PhaseStart,
  type ProgressEvent,
  resume,
  startSft,
  type TrainPhaseOptions,
  trainPhase,
} from "@midtrain/trainer";
import { ExperimentError } from "./errors.js";
import type { ExperimentConfig } from "./config.js";
import type { ExperimentData, RunEnv } from "./env.js";
import { type ExperimentPlan, type ScheduleJson, sftStepsFor } from "./plan.js";
import type { Job } from "./pool.js";
import { type HeldOutSets, heldOutSets } from "./heldout.js";
import { encodeProbe, probeBatch, probeCka, probeHidden } from "./probe.js";

export type JobKind = "trunk" | "branch" | "sft";

/** A job of the experiment DAG, with what it trains. */
export interface ExperimentJob extends Job {
  kind: JobKind;
  pretrainSeed: number;
  branch?: string;
  domain?: string;
  lr?: number;
  seed?: number;
  /** Folder of the job, relative to the run root. */
  dir: string;
  /** The job's outcome file (relative to the run root); its presence marks the job done. */
  outcome: string;
  /** Trunk segments: the global step the segment trains to. */
  endStep?: number;
}

/** What a finished job leaves in `outcome.json` (its presence marks the job done). */
export interface JobOutcome {
  job: string;
  kind: JobKind;
  finishedAt: string;
  seconds: number;
  tokensPerSec: number;
  /** Evaluation at the end: validation set name → result (SFT: the in-domain set). */
  evals: Record<string, EvalResult>;
  /** Loss on the general corpus's validation set at the end. */
  general?: EvalResult;
  /**
   * Losses on the test halves of the held-out data, which no choice of the run looks at: the final
   * trunk segment and branches measure the general set; SFT measures its domain and the general set.
   */
  test?: Record<string, EvalResult>;
  /** SFT: linear CKA per layer between the model at the end and at the start, on the probe batch. */
  ckaVsStart?: number[];
}

/** Where a trunk's final segment or a branch keeps its probe (hidden states on the fixed probe batch). */
export function probePath(job: Pick<ExperimentJob, "dir">): string {
  return `${job.dir}/probe.json`;
}

export type JobProgress = ProgressEvent & { job: string };

/**
 * Passes progress on at most every `ms` milliseconds (and always at a job's last step): what a
 * training process sends to its parent, so the parent's event loop is not flooded.
 */
export function throttledProgress(send: (p: JobProgress) => void, ms = 250): (p: JobProgress) => void {
  let last = 0;
  return (p) => {
    const now = Date.now();
    if (now - last > ms || p.step === p.endStep) {
      last = now;
      send(p);
    }
  };
}

const lrTag = (lr: number) => String(lr).replace(/[^0-9a-z.+-]/gi, "_");

/** The experiment's jobs: a pretraining trunk per seed, its branches, and every SFT run. */
export function planJobs(plan: ExperimentPlan): ExperimentJob[] {
  const jobs: ExperimentJob[] = [];
  const c = plan.config;
  for (const p of plan.pretrainSeeds) {
    // The trunk is cut at every branch point, so a branch starts as soon as its checkpoint
    // exists and runs beside the rest of the trunk. Each segment resumes from the previous one.
    const ends = [...plan.trunk.checkpointsAt, plan.trunk.steps];
    const segmentId = (end: number) => `trunk@p${p}:${end}`;
    ends.forEach((end, i) => {
      const start = i ? ends[i - 1] : 0;
      jobs.push({
        id: segmentId(end),
        kind: "trunk",
        pretrainSeed: p,
        deps: i ? [segmentId(ends[i - 1])] : [],
        // Segments are on the critical path: rank them above everything else.
        cost: Number.MAX_SAFE_INTEGER - start,
        dir: `p${p}/trunk`,
        outcome: `p${p}/trunk/outcome-${end}.json`,
        endStep: end,
      });
    });
    const trunk = segmentId(plan.trunk.steps);
    for (const b of plan.branches) {
      if (b.kind === "baseline") continue;
      jobs.push({
        id: `branch@p${p}/${b.name}`,
        kind: "branch",
        pretrainSeed: p,
        branch: b.name,
        deps: [segmentId(b.startStep)],
        cost: b.stepsLeft * plan.tokensPerStep,
        dir: `p${p}/branches/${b.name}`,
        outcome: `p${p}/branches/${b.name}/outcome.json`,
      });
    }
    for (const r of plan.sftRuns) {
      const parent = plan.branches.find((b) => b.name === r.branch)!;
      jobs.push({
        id: `sft@p${p}/${r.branch}/${r.domain}/lr${lrTag(r.lr)}/s${r.seed}`,
        kind: "sft",
        pretrainSeed: p,
        branch: r.branch,
        domain: r.domain,
        lr: r.lr,
        seed: r.seed,
        deps: [parent.kind === "baseline" ? trunk : `branch@p${p}/${r.branch}`],
        // Before the sets are loaded an epochs-based length is unknown: assume 1,000 examples (the cost only orders jobs).
        cost: (plan.sftSteps(r.domain) ?? sftStepsFor(c.sft!, 1000)) * (c.sft?.batchSize ?? 0) * (c.sft?.seqLen ?? c.data.seqLen),
        dir: `p${p}/sft/${r.branch}/${r.domain}/lr${lrTag(r.lr)}-s${r.seed}`,
        outcome: `p${p}/sft/${r.branch}/${r.domain}/lr${lrTag(r.lr)}-s${r.seed}/outcome.json`,
      });
    }
  }
  return jobs;
}

function adamwOptions(o: ExperimentConfig["pretrain"]["optimizer"]): AdamWOptions {
  return { beta1: o.beta1, beta2: o.beta2, eps: o.eps, weightDecay: o.weightDecay, ...(o.offload ? { offload: true } : {}) };
}

async function evalOn(model: Parameters<typeof evaluate>[0], src: PackedSource, batchSize: number, data: ExperimentData): Promise<EvalResult> {
  return evaluate(model, evalBatches(src, batchSize) as Iterable<Batch>, { tokenizer: data.tokenizer });
}

export interface JobContext {
  plan: ExperimentPlan;
  data: ExperimentData;
  env: RunEnv;
  onProgress?: (p: JobProgress) => void;
  signal?: AbortSignal;
}

/** A job was stopped by a signal; its last checkpoint is saved and a rerun resumes it. */
export class JobInterruptedError extends ExperimentError {
  constructor(
    readonly job: string,
    readonly step: number,
  ) {
    super(`job ${job} was interrupted at step ${step}; its checkpoint is saved, run the same command again to resume`);
  }
}

/** Where a trunk segment or branch starts: its own checkpoint, the trunk's branch point, or scratch. */
interface PretrainStart {
  start?: PhaseStart;
  /** Step up to which the job's metrics file is kept (records after it are redone). */
  keepMetricsTo: number;
}

async function startPretrainJob(ctx: JobContext, job: ExperimentJob, mixer: Mixer, storage: CheckpointStorage): Promise<PretrainStart> {
  const { plan, env } = ctx;
  const endStep = job.endStep ?? plan.trunk.steps;
  // The checkpoint at the job's end step when it exists (only the outcome is missing), else the
  // newest valid one before it; corrupt ones are passed over.
  const own = await latestValidCheckpoint(storage, { atMost: endStep });
  if (own.id) {
    const r = await resume({ storage, checkpoint: own.id, mixer, registry: plan.registry, offloadOptimizer: plan.config.pretrain.optimizer.offload });
    // At the end step nothing is trained again (only the outcome is rewritten) and the metrics of
    // later steps belong to later jobs; before it, the steps after the checkpoint are redone.
    return { start: r, keepMetricsTo: r.time.step === endStep ? Number.POSITIVE_INFINITY : r.time.step };
  }
  if (job.kind === "branch") {
    const b = plan.branches.find((x) => x.name === job.branch)!;
    const trunk = env.storage(`p${job.pretrainSeed}/trunk/checkpoints`);
    try {
      const start = await branch({ storage: trunk, checkpoint: checkpointName(b.startStep), mixer, offloadOptimizer: plan.config.pretrain.optimizer.offload });
      return { start, keepMetricsTo: -1 };
    } catch (e) {
      if (e instanceof CheckpointCorruptError) {
        throw new ExperimentError(
          `branch ${b.name} cannot start: ${e.message}. Delete the trunk's folder p${job.pretrainSeed}/trunk (in the run folder) so that the trunk is trained again, then rerun.`,
        );
      }
      throw e;
    }
  }
  return { keepMetricsTo: -1 };
}

/**
 * Runs one job to completion and writes its outcome. Trunk segments and branches continue
 * from their newest valid checkpoint (`resume`), a branch starts at the trunk's checkpoint
 * (`branch`), SFT starts from the branch's final weights (`startSft`): lineage, mixer carry-over
 * and optimizer state are decided by the trainer's phase API.
 */
export async function executeJob(ctx: JobContext, job: ExperimentJob): Promise<JobOutcome> {
  const { plan, data, env } = ctx;
  const c = plan.config;
  const t0 = Date.now();
  const held = heldOutSets(c, data);
  const validation = Object.fromEntries(Object.entries(held.sources).map(([n, h]) => [n, h.valid]));
  // Evaluation batches are as large as a training micro-batch (a forward pass needs less memory than a training step).
  const evalBatch = Math.max(1, c.pretrain.batchSize / c.pretrain.gradAccum);
  const metricsPath = `${job.dir}/metrics.jsonl`;
  const setup = job.kind === "sft" ? await sftSetup(ctx, job, held) : await pretrainSetup(ctx, job, validation, evalBatch);
  // The config's memory options apply to every model a job trains (new, resumed, branched or fine-tuned).
  if (c.model.recompute !== undefined) setup.options.model.setMemoryOptions({ recompute: c.model.recompute });
  await env.rewindMetrics(metricsPath, setup.keepMetricsTo);
  const metrics = env.sink(metricsPath);
  let general: EvalResult | undefined;
  let summary: Awaited<ReturnType<typeof trainPhase>>;
  let ckaVsStart: number[] | undefined;
  const test: Record<string, EvalResult> = {};
  // Representations on a fixed batch of general validation data, for linear CKA in the report:
  // the final trunk (the baseline before SFT) and each branch keep theirs; SFT compares its end with its start.
  const probeSrc = validation[c.data.general];
  const keepsProbe = job.kind === "branch" || (job.kind === "trunk" && job.endStep === plan.trunk.steps);
  try {
    const startProbe = job.kind === "sft" ? await probeHidden(setup.options.model, probeBatch(probeSrc)) : undefined;
    summary = await trainPhase({
      ...setup.options,
      evalAtEnd: true,
      tokenizer: data.tokenizer,
      metrics,
      onProgress: (e: ProgressEvent) => ctx.onProgress?.({ ...e, job: job.id }),
      signal: ctx.signal,
      extra: { experiment: c.name, job: job.id },
    });
    if (summary.stopped !== "completed") throw new JobInterruptedError(job.id, summary.time.step);
    // SFT: forgetting is the general set's loss after fine-tuning.
    if (job.kind === "sft") {
      general = await evalOn(setup.options.model, validation[c.data.general], evalBatch, data);
      test[job.domain!] = await evalOn(setup.options.model, held.sft[job.domain!].test, evalBatch, data);
    }
    if (job.kind === "sft" || keepsProbe) test[c.data.general] = await evalOn(setup.options.model, held.sources[c.data.general].test, evalBatch, data);
    if (startProbe) ckaVsStart = probeCka(startProbe, await probeHidden(setup.options.model, probeBatch(probeSrc)));
    if (keepsProbe) await env.writeJson(probePath(job), encodeProbe(await probeHidden(setup.options.model, probeBatch(probeSrc))));
  } finally {
    setup.options.model.dispose();
    setup.options.optimizer.dispose();
    await metrics.close?.();
  }
  const outcome: JobOutcome = {
    job: job.id,
    kind: job.kind,
    finishedAt: new Date().toISOString(),
    seconds: (Date.now() - t0) / 1000,
    tokensPerSec: summary.tokensPerSec,
    evals: summary.evals,
    general: general ?? summary.evals[c.data.general],
    ...(Object.keys(test).length ? { test } : {}),
    ...(ckaVsStart ? { ckaVsStart } : {}),
  };
  await env.writeJson(job.outcome, outcome);
  return outcome;
}

/** The pretraining run's length (trunk and branches share the global step axis). */
function runLength(plan: ExperimentPlan): { totalSteps: number; totalTokens: number } {
  return { totalSteps: plan.trunk.steps, totalTokens: plan.trunk.steps * plan.tokensPerStep };
}

type JobOptions = Pick<
  TrainPhaseOptions,
  "model" | "optimizer" | "mixer" | "lr" | "phase" | "time" | "mixture" | "lineage" | "evalEvery" | "logEvery" | "evalSets" | "evalBatchSize" | "checkpoint"
>;

/** What a job trains with, and up to which step its metrics file is kept. */
interface JobSetup {
  options: JobOptions;
  keepMetricsTo: number;
}

async function pretrainSetup(ctx: JobContext, job: ExperimentJob, validation: Record<string, PackedSource>, evalBatch: number): Promise<JobSetup> {
  const { plan, data, env } = ctx;
  const c = plan.config;
  const b = job.kind === "branch" ? plan.branches.find((x) => x.name === job.branch)! : undefined;
  const storage = env.storage(`${job.dir}/checkpoints`);
  const mixture: ScheduleJson = b ? b.mixture : plan.trunk.mixture;
  const sources = Object.fromEntries(plan.sourceNames.map((n) => [n, data.sources[n].train]));
  const schedule = plan.registry.buildMixture(mixture, { sources: plan.sourceNames, unit: "steps" });
  const mixer = createMixer({ sources, schedule, seed: job.pretrainSeed, validation, maxEpochs: c.data.maxEpochs });
  const { start, keepMetricsTo } = await startPretrainJob(ctx, job, mixer, storage);
  return {
    keepMetricsTo,
    options: {
      model: start?.model ?? createModel(getModelConfig(c.model.preset, c.model.overrides), { seed: job.pretrainSeed }),
      optimizer: start?.optimizer ?? new AdamW(adamwOptions(c.pretrain.optimizer)),
      mixer,
      lr: plan.registry.buildLr(plan.trunk.lr, { unit: "steps" }),
      phase: {
        name: b ? `branch:${b.name}` : "pretrain",
        steps: job.endStep ?? plan.trunk.steps,
        batchSize: c.pretrain.batchSize,
        gradAccum: c.pretrain.gradAccum,
        clipNorm: c.pretrain.optimizer.clipNorm ?? 0,
      },
      // Schedules read the run's length from the training time (a fraction of the run, a decay to its end).
      time: { ...(start?.time ?? { step: 0, tokens: 0, phase: "pretrain", phaseStep: 0, phaseSteps: 0, phaseFraction: 0 }), ...runLength(plan) },
      mixture,
      lineage: start?.lineage,
      evalEvery: c.pretrain.evalEvery,
      logEvery: c.pretrain.logEvery,
      evalSets: plan.sourceNames,
      evalBatchSize: evalBatch,
      checkpoint: {
        storage,
        every: c.pretrain.checkpointEvery ?? Math.max(1, Math.ceil(plan.trunk.steps / 4)),
        keepLast: 1,
        at: job.kind === "trunk" ? plan.trunk.checkpointsAt : [],
        final: true,
      },
    },
  };
}

async function sftSetup(ctx: JobContext, job: ExperimentJob, held: HeldOutSets): Promise<JobSetup> {
  const { plan, data, env } = ctx;
  const c = plan.config;
  const sft = c.sft!;
  const parentDir =
    plan.branches.find((b) => b.name === job.branch)!.kind === "baseline" ? `p${job.pretrainSeed}/trunk` : `p${job.pretrainSeed}/branches/${job.branch}`;
  const domain = job.domain!;
  const parentStorage = env.storage(`${parentDir}/checkpoints`);
  const parentCkpt = checkpointName(plan.trunk.steps);
  let start: PhaseStart;
  try {
    start = await startSft({ storage: parentStorage, checkpoint: parentCkpt, optimizer: adamwOptions(sft.optimizer), phase: `sft:${domain}` });
  } catch (e) {
    if (!(e instanceof CheckpointCorruptError)) throw e;
    const parentJob = job.deps[0];
    const outcome = planJobs(plan).find((j) => j.id === parentJob)!.outcome;
    throw new ExperimentError(
      `${job.id} cannot start: ${e.message}. Delete ${parentStorage.location}/${parentCkpt} and ${outcome} (in the run folder) so that ${parentJob} trains its last part again, then rerun.`,
    );
  }
  const sftData = data.sft[domain];
  const steps = sftStepsFor(sft, sftData.train.numSequences);
  return {
    // SFT runs are short and keep no checkpoints: an interrupted one starts over, with a clean metrics file.
    keepMetricsTo: -1,
    options: {
      model: start.model,
      optimizer: start.optimizer,
      mixer: createMixer({
        sources: { [domain]: sftData.train },
        schedule: { [domain]: 1 },
        seed: job.seed! * 1_000_003 + job.pretrainSeed,
        validation: { [domain]: held.sft[domain].valid },
      }),
      lr: plan.registry.buildLr(plan.sftLr(job.lr!), { unit: "steps" }),
      phase: { name: `sft:${domain}`, steps, batchSize: sft.batchSize, gradAccum: sft.gradAccum, clipNorm: sft.optimizer.clipNorm ?? 0 },
      time: { ...start.time, totalSteps: steps, totalTokens: steps * sft.batchSize * (sft.seqLen ?? c.data.seqLen) },
      lineage: start.lineage,
      evalEvery: sft.evalEvery,
      logEvery: sft.logEvery,
      evalSets: [domain],
      evalBatchSize: sft.batchSize / sft.gradAccum,
    },
  };
}
