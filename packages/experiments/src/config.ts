import { getModelConfig, type ModelConfig } from "@midtrain/model";
import { suggest } from "@midtrain/schedulers";
import { ADAMW_DEFAULTS, TRAINING_DEFAULTS } from "@midtrain/trainer";
import { z } from "zod";
import { ConfigError } from "./errors.js";

const positiveInt = z.number().int().positive();
const fraction = z.number().gt(0).lt(1);
const name = z.string().regex(/^[a-zA-Z0-9][a-zA-Z0-9_.-]*$/, "use letters, digits, '.', '_' or '-' (it names a folder)");

/** A data source: a shipped corpus by name, or files. */
const sourceSchema = z
  .object({
    corpus: z.string().optional().describe("name of a corpus shipped with @midtrain/data (`midtrain corpora` lists them)"),
    path: z.string().optional().describe("a file, folder or glob: .txt, .jsonl, .jsonl.gz or .parquet (prepared into a token store on first use)"),
    store: z.string().optional().describe("a token store made by `midtrain prepare` (its folder)"),
    validPath: z
      .string()
      .optional()
      .describe("a separate validation file, folder or glob (with `path`); else a share of documents chosen by a seeded hash is held out"),
    textField: z.string().optional(),
    maxDocuments: positiveInt.optional(),
  })
  .strict()
  .refine((s) => [s.corpus, s.path, s.store].filter(Boolean).length === 1, { message: "give exactly one of `corpus`, `path` or `store`" })
  .refine((s) => !s.validPath || s.path, { message: "`validPath` goes with `path` (a corpus has its own validation file; a store its own split)" });

const sftSourceSchema = sourceSchema.and(
  z
    .object({
      maskPrompt: z.boolean().default(true).describe("prompt tokens carry no loss (the study masked GSM8K and SciQ)"),
      matches: z
        .string()
        .optional()
        .describe("the pretraining source whose domain this SFT set is (for the findings table); default: the source of the same name"),
    })
    .partial(),
);

// Defaults come from the trainer, so a config and a direct `trainPhase` call train alike.
const optimizerDefaults = {
  beta1: ADAMW_DEFAULTS.beta1,
  beta2: ADAMW_DEFAULTS.beta2,
  eps: ADAMW_DEFAULTS.eps,
  weightDecay: ADAMW_DEFAULTS.weightDecay,
  clipNorm: TRAINING_DEFAULTS.clipNorm,
};
const optimizerSchema = z
  .object({
    beta1: z.number().min(0).lt(1).default(optimizerDefaults.beta1),
    beta2: z.number().min(0).lt(1).default(optimizerDefaults.beta2),
    eps: z.number().positive().default(optimizerDefaults.eps),
    weightDecay: z.number().min(0).default(optimizerDefaults.weightDecay),
    clipNorm: z.number().min(0).nullable().default(optimizerDefaults.clipNorm).describe("global-norm clipping; 0 or null: none"),
    offload: z
      .boolean()
      .optional()
      .describe(
        "keep the AdamW moments and the gradient accumulator in host memory, updating one parameter at a time (for a device smaller than the host: the 4 GiB wasm heap, a GPU); the same numbers as on the device. `midtrain run --memory` turns it on for a phase that fits only this way",
      ),
  })
  .strict();

const scheduleSchema = z.object({ type: z.string() }).passthrough();

const branchSchema = z
  .object({
    name: name,
    kind: z.enum(["baseline", "midtrain", "cpt"]),
    source: z.string().optional().describe("the specialised source (midtrain and cpt)"),
    weight: z.number().gt(0).max(1).optional().describe("share of the specialised source from `start` on (cpt: 1)"),
    start: z
      .union([fraction, z.object({ step: positiveInt }).strict()])
      .optional()
      .describe("fraction of pretraining, or { step }"),
    mixture: scheduleSchema
      .optional()
      .describe(
        "any registered mixture schedule (built-in or from `plugins`) from `start` on, in global steps; replaces the `source`/`weight` shorthand (which then only label the report)",
      ),
  })
  .strict()
  .superRefine((b, ctx) => {
    if (b.kind === "baseline") {
      for (const k of ["source", "weight", "start"] as const)
        if (b[k] !== undefined) ctx.addIssue({ code: "custom", path: [k], message: "a baseline branch takes no source, weight or start" });
      return;
    }
    if (b.start === undefined) ctx.addIssue({ code: "custom", path: ["start"], message: `a ${b.kind} branch needs a start` });
    if (b.mixture) {
      if (b.kind !== "midtrain") ctx.addIssue({ code: "custom", path: ["mixture"], message: "only a midtrain branch takes a mixture schedule" });
      return;
    }
    if (!b.source) ctx.addIssue({ code: "custom", path: ["source"], message: `a ${b.kind} branch needs the specialised source (or, for midtrain, a mixture)` });
    if (b.kind === "midtrain" && b.weight === undefined)
      ctx.addIssue({ code: "custom", path: ["weight"], message: "a midtrain branch needs a weight in (0, 1] (or a mixture)" });
    if (b.kind === "cpt" && b.weight !== undefined && b.weight !== 1)
      ctx.addIssue({ code: "custom", path: ["weight"], message: "continued pretraining uses weight 1; use kind: midtrain for other weights" });
  });

export const experimentSchema = z
  .object({
    name: name,
    description: z.string().optional(),
    plugins: z
      .array(z.string().min(1))
      .default([])
      .describe("schedule plugin packages (or module paths, relative to the config) whose LR and mixture types the config uses"),
    seed: z.number().int().default(1),
    /** Pretraining seeds: each runs the whole pipeline (pretraining variance dominates SFT variance). */
    pretrainSeeds: z.array(z.number().int()).nonempty().optional(),
    backend: z.enum(["auto", "cuda", "webgpu", "wasm", "cpu"]).default("auto"),
    model: z
      .object({
        preset: z.string(),
        overrides: z.record(z.string(), z.union([z.number(), z.boolean()])).default({}),
        recompute: z
          .boolean()
          .optional()
          .describe(
            "per-block activation recomputation: only each block's input is kept for the backward pass (one more forward pass of the blocks); for shapes whose activations do not fit otherwise (see `midtrain plan --memory`)",
          ),
      })
      .strict(),
    tokenizer: z
      .union([z.literal("byte"), z.object({ path: z.string() }).strict()])
      .default("byte")
      .describe("`byte` (the default for tiny models) or a Hugging Face tokenizer.json"),
    data: z
      .object({
        seqLen: positiveInt,
        validationFraction: z.number().gt(0).lt(0.5).default(0.05),
        maxValidationSequences: positiveInt.default(64),
        maxEpochs: z.number().positive().optional(),
        general: z.string().describe("name of the general (pretraining) source in `sources`"),
        sources: z.record(name, sourceSchema),
        sft: z.record(name, sftSourceSchema).default({}),
      })
      .strict(),
    pretrain: z
      .object({
        steps: positiveInt,
        batchSize: positiveInt.describe("sequences per optimizer step"),
        gradAccum: positiveInt.default(1).describe("micro-batches per step; must divide batchSize"),
        lr: scheduleSchema.describe("any registered LR schedule, in global steps; a run length it needs comes from pretrain.steps"),
        optimizer: optimizerSchema.default(optimizerDefaults),
        evalEvery: positiveInt.optional(),
        logEvery: positiveInt
          .default(TRAINING_DEFAULTS.logEvery)
          .describe("write a `train` record to metrics.jsonl every N steps (and at a phase's last step)"),
        checkpointEvery: positiveInt.optional(),
      })
      .strict(),
    branches: z.array(branchSchema).default([]),
    ablation: z
      .object({
        source: z.string(),
        starts: z
          .array(z.union([fraction, z.object({ step: positiveInt }).strict()]))
          .nonempty()
          .describe("fractions of pretraining or { step }"),
        weights: z.array(z.number().gt(0).max(1)).nonempty(),
        sftDomains: z
          .array(z.string())
          .nonempty()
          .optional()
          .describe(
            "SFT domains the grid's branches are fine-tuned on (default: the domains whose set matches the grid's source, else every sft.domains entry)",
          ),
      })
      .strict()
      .optional()
      .describe("a timing × weight grid of midtrain branches"),
    sft: z
      .object({
        domains: z.array(z.string()).nonempty().describe("names in data.sft"),
        steps: positiveInt.optional().describe("optimizer steps of every SFT run (or give `epochs`)"),
        epochs: z
          .number()
          .positive()
          .optional()
          .describe(
            "passes over each SFT set's training examples: steps = ceil(epochs × examples / batchSize), per set, fixed when the data is loaded (the study: 4)",
          ),
        batchSize: positiveInt,
        gradAccum: positiveInt.default(1).describe("micro-batches per SFT step; must divide sft.batchSize"),
        seqLen: positiveInt.optional().describe("SFT sequence length (default data.seqLen); examples are truncated to it"),
        lrGrid: z.array(z.number().positive()).nonempty().describe("peak learning rates tried; each sets the SFT schedule's `peak`"),
        lr: scheduleSchema
          .optional()
          .describe("the SFT LR schedule (any registered type with a `peak` parameter, set from lrGrid); default: warmup then cosine to minLr"),
        seeds: z.array(z.number().int()).nonempty(),
        warmupFraction: z.number().min(0).lt(1).default(0.1),
        minLr: z.number().min(0).default(0),
        optimizer: optimizerSchema.default(optimizerDefaults),
        evalEvery: positiveInt.optional(),
        logEvery: positiveInt.default(TRAINING_DEFAULTS.logEvery).describe("write a `train` record every N steps"),
      })
      .strict()
      .optional(),
  })
  .strict();

export type ExperimentConfig = z.output<typeof experimentSchema>;
export type ExperimentConfigInput = z.input<typeof experimentSchema>;
export type BranchConfig = ExperimentConfig["branches"][number];

function formatPath(path: ReadonlyArray<PropertyKey>): string {
  return path.map((p, i) => (typeof p === "number" ? `[${p}]` : `${i ? "." : ""}${String(p)}`)).join("");
}

/** Validates a parsed config object; cross-field checks (source names, steps) included. */
export function parseExperimentConfig(raw: unknown, source = "(object)"): ExperimentConfig {
  const r = experimentSchema.safeParse(raw);
  if (!r.success) {
    throw new ConfigError(
      source,
      r.error.issues.map((i) => ({ path: formatPath(i.path), message: i.message })),
    );
  }
  const c = r.data;
  const issues: Array<{ path: string; message: string }> = [];
  const sources = Object.keys(c.data.sources);
  const known = (n: string) => sources.includes(n);
  const list = sources.join(", ");
  if (!known(c.data.general)) issues.push({ path: "data.general", message: `'${c.data.general}' is not in data.sources (${list})` });
  c.branches.forEach((b, i) => {
    if (b.source && !known(b.source)) issues.push({ path: `branches[${i}].source`, message: `unknown source '${b.source}' (data.sources has: ${list})` });
    if (b.source && b.source === c.data.general) issues.push({ path: `branches[${i}].source`, message: "is the general source; name a specialised one" });
    if (b.start && typeof b.start === "object" && b.start.step >= c.pretrain.steps)
      issues.push({ path: `branches[${i}].start.step`, message: `must be below pretrain.steps (${c.pretrain.steps})` });
  });
  const names = c.branches.map((b) => b.name);
  names.forEach((n, i) => {
    if (names.indexOf(n) !== i) issues.push({ path: `branches[${i}].name`, message: `duplicate branch name '${n}'` });
  });
  if (c.pretrain.batchSize % c.pretrain.gradAccum !== 0)
    issues.push({ path: "pretrain.gradAccum", message: `must divide pretrain.batchSize (${c.pretrain.batchSize})` });
  for (const [d, s] of Object.entries(c.data.sft))
    if (s.matches && !known(s.matches)) issues.push({ path: `data.sft.${d}.matches`, message: `unknown source '${s.matches}' (data.sources has: ${list})` });
  if (c.sft && (c.sft.steps === undefined) === (c.sft.epochs === undefined))
    issues.push({ path: "sft", message: "give exactly one of `steps` (per SFT run) or `epochs` (over each SFT set)" });
  if (c.sft && c.sft.batchSize % c.sft.gradAccum !== 0) issues.push({ path: "sft.gradAccum", message: `must divide sft.batchSize (${c.sft.batchSize})` });
  if (c.ablation && !known(c.ablation.source))
    issues.push({ path: "ablation.source", message: `unknown source '${c.ablation.source}' (data.sources has: ${list})` });
  c.ablation?.starts.forEach((s, i) => {
    if (typeof s === "object" && s.step >= c.pretrain.steps)
      issues.push({ path: `ablation.starts[${i}].step`, message: `must be below pretrain.steps (${c.pretrain.steps})` });
  });
  if (c.sft) {
    const sft = Object.keys(c.data.sft);
    c.sft.domains.forEach((d, i) => {
      if (!sft.includes(d)) issues.push({ path: `sft.domains[${i}]`, message: `'${d}' is not in data.sft (${sft.join(", ") || "empty"})` });
    });
    c.ablation?.sftDomains?.forEach((d, i) => {
      if (!c.sft!.domains.includes(d))
        issues.push({ path: `ablation.sftDomains[${i}]`, message: `'${d}' is not in sft.domains (${c.sft!.domains.join(", ")})` });
    });
  } else if (c.ablation?.sftDomains) issues.push({ path: "ablation.sftDomains", message: "the config has no sft section" });
  try {
    const known = Object.keys(getModelConfig(c.model.preset)) as Array<keyof ModelConfig>;
    for (const key of Object.keys(c.model.overrides)) {
      if (known.includes(key as keyof ModelConfig)) continue;
      const guess = suggest(key, known, 1)[0];
      issues.push({
        path: `model.overrides.${key}`,
        message: `unknown model setting${guess ? ` — did you mean '${guess}'?` : ""} (settings: ${known.join(", ")})`,
      });
    }
    const model = getModelConfig(c.model.preset, c.model.overrides as never);
    const longest = Math.max(c.data.seqLen, c.sft?.seqLen ?? 0);
    if (model.seqLen < longest) {
      issues.push({
        path: "model.overrides.seqLen",
        message: `the model's context (${model.seqLen}) is shorter than the longest sequence (${longest}); raise it`,
      });
    }
  } catch (e) {
    issues.push({ path: "model", message: (e as Error).message });
  }
  if (issues.length) throw new ConfigError(source, issues);
  return c;
}
