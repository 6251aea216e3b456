import { type Batch, type PackedSource, createMixer, evalBatches } from "@midtrain/data";
import { createModel, getModelConfig } from "@midtrain/model";
import { buildLrSchedule, buildMixtureSchedule } from "@midtrain/schedulers";
import {
  AdamW,
  type Lineage,
  type EvalResult,
  type ProgressEvent,
  checkpointName,
  evaluate,
  latestCheckpoint,
  loadCheckpoint,
  trainPhase,
} from "@midtrain/trainer";
import type { ExperimentConfig } from "./config.js";
import type { ExperimentData, RunEnv } from "./env.js";
import type { ExperimentPlan, ScheduleJson } from "./plan.js";
import type { Job } from "./pool.js";

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
}

export type JobProgress = ProgressEvent & { job: string };

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
        cost: (c.sft?.steps ?? 0) * (c.sft?.batchSize ?? 0) * (c.sft?.seqLen ?? c.data.seqLen),
        dir: `p${p}/sft/${r.branch}/${r.domain}/lr${lrTag(r.lr)}-s${r.seed}`,
        outcome: `p${p}/sft/${r.branch}/${r.domain}/lr${lrTag(r.lr)}-s${r.seed}/outcome.json`,
      });
    }
  }
  return jobs;
}

/** A packed source restricted to `max` sequences spread evenly over it (a fixed evaluation subset). */
export function evenSubset(src: PackedSource, max: number): PackedSource {
  const n = Math.min(max, src.numSequences);
  if (n === src.numSequences) return src;
  const pick = (i: number) => Math.floor((i * src.numSequences) / n);
  return {
    kind: src.kind,
    seqLen: src.seqLen,
    numSequences: n,
    numTokens: Math.round((src.numTokens * n) / src.numSequences),
    numDocuments: src.numDocuments,
    numBytes: Math.round((src.numBytes * n) / src.numSequences),
    write: (index, inputs, targets, mask, row) => src.write(pick(index), inputs, targets, mask, row),
  };
}

function validationSets(config: ExperimentConfig, data: ExperimentData): Record<string, PackedSource> {
  const out: Record<string, PackedSource> = {};
  for (const [name, s] of Object.entries(data.sources)) out[name] = evenSubset(s.valid, config.data.maxValidationSequences);
  return out;
}

function adamw(o: ExperimentConfig["pretrain"]["optimizer"]): AdamW {
  return new AdamW({ beta1: o.beta1, beta2: o.beta2, eps: o.eps, weightDecay: o.weightDecay });
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

/** Runs one job to completion (resuming from its own latest checkpoint) and writes its outcome. */
export async function executeJob(ctx: JobContext, job: ExperimentJob): Promise<JobOutcome> {
  const { plan, data, env } = ctx;
  const c = plan.config;
  const t0 = Date.now();
  const onProgress = (e: ProgressEvent) => ctx.onProgress?.({ ...e, job: job.id });
  const validation = validationSets(c, data);
  const evalBatch = Math.max(1, c.pretrain.batchSize);
  const pretrainSources = Object.fromEntries(plan.sourceNames.map((n) => [n, data.sources[n].train]));
  const metrics = env.sink(`${job.dir}/metrics.jsonl`);
  let tokensPerSec = 0;
  let evals: Record<string, EvalResult> = {};
  let general: EvalResult | undefined;
  try {
    if (job.kind === "trunk" || job.kind === "branch") {
      const branch = job.kind === "branch" ? plan.branches.find((b) => b.name === job.branch)! : undefined;
      const storage = env.storage(`${job.dir}/checkpoints`);
      const own = await latestCheckpoint(storage);
      const mixtureJson: ScheduleJson = branch ? branch.mixture : plan.trunk.mixture;
      const schedule = buildMixtureSchedule(mixtureJson, { sources: plan.sourceNames });
      const mixer = createMixer({ sources: pretrainSources, schedule, seed: job.pretrainSeed, validation, maxEpochs: c.data.maxEpochs });
      const lr = buildLrSchedule(plan.trunk.lr);
      let loaded: Awaited<ReturnType<typeof loadCheckpoint>> | undefined;
      let lineage: Lineage | undefined;
      if (own) {
        loaded = await loadCheckpoint(storage, own);
        lineage = loaded.state.lineage;
      } else if (branch) {
        const trunkStorage = env.storage(`p${job.pretrainSeed}/trunk/checkpoints`);
        const id = checkpointName(branch.startStep);
        loaded = await loadCheckpoint(trunkStorage, id);
        lineage = {
          parent: { kind: "branch" as const, checkpoint: id, step: branch.startStep, phase: "pretrain", location: trunkStorage.location },
          ancestors: loaded.state.lineage.ancestors,
        };
      }
      if (loaded?.state.mixer) mixer.setState(loaded.state.mixer);
      const model = loaded?.model ?? createModel(getModelConfig(c.model.preset, c.model.overrides), { seed: job.pretrainSeed });
      const optimizer = loaded?.optimizer ?? adamw(c.pretrain.optimizer);
      try {
        const summary = await trainPhase({
          model,
          mixer,
          lr,
          optimizer,
          phase: {
            name: branch ? `branch:${branch.name}` : "pretrain",
            steps: job.endStep ?? plan.trunk.steps,
            batchSize: c.pretrain.batchSize,
            gradAccum: c.pretrain.gradAccum,
            clipNorm: c.pretrain.optimizer.clipNorm ?? 0,
          },
          time: loaded ? (branch && !own ? { ...loaded.state.time, phase: `branch:${branch.name}` } : loaded.state.time) : undefined,
          mixture: mixtureJson,
          lineage,
          evalEvery: c.pretrain.evalEvery,
          evalSets: plan.sourceNames,
          evalBatchSize: evalBatch,
          evalAtEnd: true,
          tokenizer: data.tokenizer,
          checkpoint: {
            storage,
            every: c.pretrain.checkpointEvery ?? Math.max(1, Math.ceil(plan.trunk.steps / 4)),
            keepLast: 1,
            at: job.kind === "trunk" ? plan.trunk.checkpointsAt : [],
            final: true,
          },
          metrics,
          onProgress,
          signal: ctx.signal,
          extra: { experiment: c.name, job: job.id },
        });
        if (summary.stopped !== "completed") throw new Error(`job ${job.id} was interrupted at step ${summary.time.step}; run again to resume`);
        tokensPerSec = summary.tokensPerSec;
        evals = summary.evals;
      } finally {
        model.dispose();
        optimizer.dispose();
      }
    } else {
      const sft = c.sft!;
      const parentDir = plan.branches.find((b) => b.name === job.branch)!.kind === "baseline" ? `p${job.pretrainSeed}/trunk` : `p${job.pretrainSeed}/branches/${job.branch}`;
      const parent = env.storage(`${parentDir}/checkpoints`);
      const parentId = checkpointName(plan.trunk.steps);
      const loaded = await loadCheckpoint(parent, parentId, { optimizer: false });
      const model = loaded.model;
      const optimizer = adamw(sft.optimizer);
      const domain = job.domain!;
      const sftData = data.sft[domain];
      const mixer = createMixer({
        sources: { [domain]: sftData.train },
        schedule: { [domain]: 1 },
        seed: job.seed! * 1_000_003 + job.pretrainSeed,
        validation: { [domain]: evenSubset(sftData.valid, c.data.maxValidationSequences) },
      });
      try {
        const summary = await trainPhase({
          model,
          mixer,
          lr: buildLrSchedule(plan.sftLr(job.lr!)),
          optimizer,
          phase: { name: `sft:${domain}`, steps: sft.steps, batchSize: sft.batchSize, clipNorm: sft.optimizer.clipNorm ?? 0 },
          lineage: {
            parent: { kind: "sft", checkpoint: parentId, step: plan.trunk.steps, phase: loaded.state.phase.name, location: parent.location },
            ancestors: [...loaded.state.lineage.ancestors, ...(loaded.state.lineage.parent ? [loaded.state.lineage.parent] : [])],
          },
          evalEvery: sft.evalEvery,
          evalSets: [domain],
          evalBatchSize: sft.batchSize,
          evalAtEnd: true,
          tokenizer: data.tokenizer,
          metrics,
          onProgress,
          signal: ctx.signal,
          extra: { experiment: c.name, job: job.id },
        });
        if (summary.stopped !== "completed") throw new Error(`job ${job.id} was interrupted; run again to redo it`);
        tokensPerSec = summary.tokensPerSec;
        evals = summary.evals;
        general = await evalOn(model, validation[c.data.general], evalBatch, data);
      } finally {
        model.dispose();
        optimizer.dispose();
      }
    }
  } finally {
    await metrics.close?.();
  }
  const outcome: JobOutcome = {
    job: job.id,
    kind: job.kind,
    finishedAt: new Date().toISOString(),
    seconds: (Date.now() - t0) / 1000,
    tokensPerSec,
    evals,
    general: general ?? evals[c.data.general],
  };
  await env.writeJson(job.outcome, outcome);
  return outcome;
}
