import { defaultRegistry, type Registry, ScheduleConfigError } from "@midtrain/schedulers";
import type { BranchConfig, ExperimentConfig } from "./config.js";
import { ConfigError } from "./errors.js";

export type ScheduleJson = { type: string; [k: string]: unknown };

export interface BranchPlan {
  name: string;
  kind: BranchConfig["kind"];
  /** The specialised source (midtrain, cpt); for a custom mixture, the one the config names for the report. */
  source?: string;
  /**
   * Share of the specialised source after the start (0 for the baseline, 1 for cpt); for a custom
   * mixture schedule the nominal share the config gives, if any.
   */
  weight?: number;
  /** Global step at which the branch leaves the shared pretraining trunk (= steps for the baseline). */
  startStep: number;
  startFraction: number;
  /** Steps trained on the branch mixture. */
  stepsLeft: number;
  /** Expected specialised tokens the branch sees (per-sequence sampling makes the realised count vary; NaN when unknown). */
  specializedTokens: number;
  /** Mixture schedule over global steps (the trunk's mixture before startStep). */
  mixture: ScheduleJson;
  /** True when the branch names its own mixture schedule (not the source/weight shorthand). */
  customMixture: boolean;
  /** True when the row came from the ablation grid. */
  fromGrid: boolean;
  /**
   * True for every cell of the ablation grid: the rows it added and an explicit midtrain branch
   * that is one of its cells (same source, weight and start step), which the grid reuses.
   */
  inGrid: boolean;
}

export interface SftRunPlan {
  id: string;
  branch: string;
  domain: string;
  lr: number;
  seed: number;
}

export interface ExperimentPlan {
  config: ExperimentConfig;
  pretrainSeeds: number[];
  tokensPerStep: number;
  /** Every source the mixer knows: the general one first. */
  sourceNames: string[];
  trunk: { steps: number; checkpointsAt: number[]; mixture: ScheduleJson; lr: ScheduleJson };
  branches: BranchPlan[];
  sftRuns: SftRunPlan[];
  sftLr: (peak: number) => ScheduleJson;
  /**
   * Optimizer steps of each SFT run on a domain: `sft.steps`, or `sft.epochs` over the set's
   * training examples when they are known (passed to `planExperiment` once the data is loaded);
   * undefined when the length depends on a set not loaded yet.
   */
  sftSteps: (domain: string) => number | undefined;
  /** Training examples of each SFT set, when the plan was made with the data loaded. */
  sftExamples?: Record<string, number>;
  /** The schedule registry the plan was checked against (built-ins plus the config's plugins). */
  registry: Registry;
  totals: { pretrainTokens: number; branchTokens: number; sftTokens: number; trainingTokens: number; trainingSteps: number };
}

function startStepOf(start: BranchConfig["start"], steps: number): number {
  if (start === undefined) return steps;
  const s = typeof start === "number" ? Math.round(start * steps) : start.step;
  return Math.min(Math.max(s, 1), steps - 1);
}

/** Optimizer steps of one SFT run over a set of `examples` training examples: `sft.steps`, or ceil(epochs × examples / batchSize). */
export function sftStepsFor(sft: NonNullable<ExperimentConfig["sft"]>, examples: number): number {
  if (sft.steps !== undefined) return sft.steps;
  return Math.max(1, Math.ceil((sft.epochs! * examples) / sft.batchSize));
}

export interface PlanOptions {
  /** Training examples of each SFT set (known once the data is loaded): fixes the steps of `sft.epochs`. */
  sftExamples?: Record<string, number>;
}

function fmt(x: number): string {
  return String(+x.toPrecision(3)).replace(/\./, "p");
}

/**
 * Expands a validated config into the runs it implies. Every derived number (branch start
 * steps, steps left, specialised tokens, run counts) is computed here and nowhere else.
 */
export function planExperiment(config: ExperimentConfig, registry: Registry = defaultRegistry, options: PlanOptions = {}): ExperimentPlan {
  const { steps, batchSize } = config.pretrain;
  // batchSize counts the sequences of one optimizer step (gradAccum splits it into micro-batches).
  const tokensPerStep = batchSize * config.data.seqLen;
  const general = config.data.general;
  const sourceNames = [general, ...Object.keys(config.data.sources).filter((s) => s !== general)];

  const raw: Array<BranchConfig & { fromGrid: boolean; inGrid: boolean }> = config.branches.map((b) => ({ ...b, fromGrid: false, inGrid: false }));
  if (!raw.some((b) => b.kind === "baseline")) raw.unshift({ name: "baseline", kind: "baseline", fromGrid: false, inGrid: false });
  if (config.ablation) {
    const source = config.ablation.source;
    for (const start of config.ablation.starts)
      for (const weight of config.ablation.weights) {
        // An explicit midtrain branch that is this cell is reused, not trained twice.
        const same = raw.find(
          (b) => b.kind === "midtrain" && !b.mixture && b.source === source && b.weight === weight && startStepOf(b.start, steps) === startStepOf(start, steps),
        );
        if (same) {
          same.inGrid = true;
          continue;
        }
        const at = typeof start === "number" ? fmt(start) : String(start.step);
        const name = `grid-${source}-s${at}-w${fmt(weight)}`;
        if (!raw.some((b) => b.name === name)) raw.push({ name, kind: "midtrain", source, weight, start, fromGrid: true, inGrid: true });
      }
  }

  const branches: BranchPlan[] = raw.map((b) => {
    const startStep = b.kind === "baseline" ? steps : startStepOf(b.start, steps);
    const weight = b.kind === "baseline" ? 0 : b.kind === "cpt" ? 1 : b.weight;
    const stepsLeft = steps - startStep;
    const mixture: ScheduleJson =
      b.kind === "baseline"
        ? { type: "static", weights: { [general]: 1 } }
        : (b.mixture ?? { type: "midtraining", general, specialized: b.source!, weight: weight!, start: startStep, unit: "steps" });
    return {
      name: b.name,
      kind: b.kind,
      source: b.source,
      weight,
      startStep,
      startFraction: startStep / steps,
      stepsLeft,
      specializedTokens: weight === undefined ? Number.NaN : Math.round(stepsLeft * tokensPerStep * weight),
      mixture,
      customMixture: Boolean(b.mixture),
      fromGrid: b.fromGrid,
      inGrid: b.inGrid,
    };
  });

  const checkpointsAt = [...new Set(branches.filter((b) => b.kind !== "baseline").map((b) => b.startStep))].sort((a, b) => a - b);
  const sft = config.sft;
  const sftRuns: SftRunPlan[] = [];
  if (sft) {
    // The grid's own rows are fine-tuned on the grid's domains only (the study's ablations are
    // measured on the domain of their source): by default the sets that match the source.
    const matching = sft.domains.filter((d) => (config.data.sft[d]?.matches ?? d) === config.ablation?.source);
    const gridDomains = config.ablation?.sftDomains ?? (matching.length ? matching : sft.domains);
    for (const b of branches)
      for (const domain of b.fromGrid ? gridDomains : sft.domains)
        for (const seed of sft.seeds)
          for (const lr of sft.lrGrid) sftRuns.push({ id: `${b.name}__${domain}__lr${lr}__seed${seed}`, branch: b.name, domain, lr, seed });
  }
  // Called only when the config has an SFT section; its defaults live in the schema. The run
  // length comes from the training time (totalSteps), not from the config.
  const sftLr = (peak: number): ScheduleJson =>
    sft!.lr ? { ...sft!.lr, peak } : { type: "cosine", peak, min: sft!.minLr, warmup: { fraction: sft!.warmupFraction } };
  const pretrainSeeds = config.pretrainSeeds ?? [config.seed];
  const trunkLr: ScheduleJson = config.pretrain.lr;
  if (config.plugins.length && registry === defaultRegistry) {
    throw new ConfigError(config.name, [
      { path: "plugins", message: "load the config's plugins first and pass their registry (experimentRegistry(config), or the CLI, does this)" },
    ]);
  }
  checkSchedules(config, registry, sourceNames, trunkLr, branches, sft ? sft.lrGrid.map(sftLr) : []);
  const branchSteps = branches.reduce((s, b) => s + b.stepsLeft, 0);
  const sftStepsOf = (domain: string): number | undefined => {
    if (!sft) return undefined;
    const examples = options.sftExamples?.[domain];
    return sft.steps ?? (examples === undefined ? undefined : sftStepsFor(sft, examples));
  };
  // Unknown until the sets are loaded (`sft.epochs`): NaN in the totals, named so by describePlan.
  const sftSteps = sftRuns.reduce((s, r) => s + (sftStepsOf(r.domain) ?? Number.NaN), 0);
  const pretrainTokens = steps * tokensPerStep;
  const branchTokens = branchSteps * tokensPerStep;
  const sftTokens = sftSteps * (sft?.batchSize ?? 0) * (sft?.seqLen ?? config.data.seqLen);
  return {
    config,
    pretrainSeeds,
    tokensPerStep,
    sourceNames,
    trunk: {
      steps,
      checkpointsAt,
      mixture: { type: "static", weights: { [general]: 1 } },
      lr: trunkLr,
    },
    branches,
    sftRuns,
    sftLr,
    sftSteps: sftStepsOf,
    ...(options.sftExamples ? { sftExamples: options.sftExamples } : {}),
    registry,
    totals: {
      pretrainTokens: pretrainTokens * pretrainSeeds.length,
      branchTokens: branchTokens * pretrainSeeds.length,
      sftTokens: sftTokens * pretrainSeeds.length,
      trainingTokens: (pretrainTokens + branchTokens + sftTokens) * pretrainSeeds.length,
      trainingSteps: (steps + branchSteps + sftSteps) * pretrainSeeds.length,
    },
  };
}

/**
 * Builds every schedule the plan names, so a typo or a bad parameter fails at `midtrain plan`
 * (with the config path) and never first inside a worker.
 */
function checkSchedules(
  config: ExperimentConfig,
  registry: Registry,
  sources: string[],
  lr: ScheduleJson,
  branches: BranchPlan[],
  sftLrs: ScheduleJson[],
): void {
  const issues: Array<{ path: string; message: string }> = [];
  const attempt = (path: string, build: () => unknown) => {
    try {
      build();
    } catch (e) {
      if (!(e instanceof ScheduleConfigError)) throw e;
      // The schedule's own path is relative to the config key it came from.
      const message = e.message.slice(e.path.length + 2);
      if (!issues.some((i) => i.path === e.path.replace(/^(lr|mixture)/, path) && i.message === message)) {
        issues.push({ path: e.path.replace(/^(lr|mixture)/, path), message });
      }
    }
  };
  attempt("pretrain.lr", () => registry.buildLr(lr, { path: "lr", unit: "steps" }));
  for (const b of branches) {
    const i = config.branches.findIndex((c) => c.name === b.name);
    const where = i >= 0 ? `branches[${i}]${b.customMixture ? ".mixture" : ""}` : `ablation (${b.name})`;
    attempt(where, () => registry.buildMixture(b.mixture, { sources, path: "mixture", unit: "steps" }));
  }
  for (const s of sftLrs) attempt(config.sft?.lr ? "sft.lr" : "sft", () => registry.buildLr(s, { path: "lr", unit: "steps" }));
  if (issues.length) throw new ConfigError(config.name, issues);
}

/** A human-readable summary of the plan (printed by `midtrain plan` and at the start of `run`). */
export function describePlan(plan: ExperimentPlan): string {
  const c = plan.config;
  const lines = [
    `experiment ${c.name}: ${plan.pretrainSeeds.length} pretraining seed(s), ${plan.branches.length} branches, ${plan.sftRuns.length} SFT runs per seed`,
    `pretrain: ${plan.trunk.steps} steps × ${plan.tokensPerStep} tokens (checkpoints for branches at steps ${plan.trunk.checkpointsAt.join(", ") || "none"})`,
  ];
  for (const b of plan.branches) {
    lines.push(
      b.kind === "baseline"
        ? `  ${b.name}: ${c.data.general} only (the unbranched run)`
        : b.customMixture
          ? `  ${b.name}: ${b.kind} mixture '${String(b.mixture.type)}' from step ${b.startStep} (${(b.startFraction * 100).toFixed(0)}%), ${b.stepsLeft} steps`
          : `  ${b.name}: ${b.kind} ${b.source} ${(b.weight! * 100).toFixed(0)}% from step ${b.startStep} (${(b.startFraction * 100).toFixed(0)}%), ${b.stepsLeft} steps, ~${b.specializedTokens.toLocaleString("en")} ${b.source} tokens`,
    );
  }
  if (c.sft) {
    const domains = [...new Set(plan.sftRuns.map((r) => r.domain))];
    const each = domains
      .map((d) => {
        const runs = plan.sftRuns.filter((r) => r.domain === d).length;
        const steps = plan.sftSteps(d);
        return steps === undefined ? `${d}: ${runs} runs` : `${d}: ${runs} runs × ${steps} steps`;
      })
      .join(", ");
    const length =
      c.sft.steps !== undefined
        ? `${c.sft.steps} steps per run`
        : `${c.sft.epochs} epoch(s) over each set's training examples (steps = ceil(epochs × examples / ${c.sft.batchSize}), fixed when the sets are loaded)`;
    lines.push(`sft: ${length}; batch ${c.sft.batchSize}, LR grid ${c.sft.lrGrid.join(", ")}; ${each}`);
  }
  lines.push(
    Number.isNaN(plan.totals.trainingTokens)
      ? `tokens in all: ${(plan.totals.pretrainTokens + plan.totals.branchTokens).toLocaleString("en")} of pretraining, plus SFT (known when the SFT sets are loaded)`
      : `tokens in all: ${plan.totals.trainingTokens.toLocaleString("en")} over ${plan.totals.trainingSteps.toLocaleString("en")} steps`,
  );
  lines.push(...describeData(c));
  return lines.join("\n");
}

/** What data a config reads: the files to bring for each source and how they are tokenized (`midtrain prepare`). */
export function describeData(c: ExperimentConfig): string[] {
  const files: string[] = [];
  const each = (kind: "pretrain" | "sft", name: string, s: ExperimentConfig["data"]["sources"][string] & { store?: string }) => {
    if (s.corpus) return `  ${name} (${kind}): shipped corpus '${s.corpus}' (nothing to bring)`;
    if (s.store) return `  ${name} (${kind}): the token store ${s.store} (made by \`midtrain prepare --input ... --out ${s.store}\`)`;
    files.push(name);
    const fields = kind === "sft" ? "prompt/response, instruction/input/output or question/answer fields" : `text in field '${s.textField ?? "text"}'`;
    const valid = s.validPath ? `validation: ${s.validPath}` : `validation: ${(c.data.validationFraction * 100).toFixed(0)}% of documents by a seeded hash`;
    return `  ${name} (${kind}): ${s.path} — .txt/.jsonl/.jsonl.gz/.parquet files (a file, folder or glob), ${fields}; ${valid}`;
  };
  const out = [
    "data:",
    `  tokenizer: ${c.tokenizer === "byte" ? "byte level (nothing to bring)" : c.tokenizer.path}`,
    ...Object.entries(c.data.sources).map(([n, s]) => each("pretrain", n, s)),
    ...Object.entries(c.data.sft).map(([n, s]) => each("sft", n, s)),
  ];
  if (files.length) {
    out.push(
      `  tokenize once: midtrain prepare <this config> (all of ${files.join(", ")}; --source NAME for one) writes token stores to the cache ` +
        "($MIDTRAIN_CACHE_DIR, default ~/.cache/midtrain/stores) that `midtrain run` reads; a run prepares a missing one itself on first use",
    );
  }
  return out;
}
