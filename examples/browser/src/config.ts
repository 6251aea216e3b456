import { hashString } from "@midtrain/common";
import { type ExperimentConfig, parseExperimentConfig } from "@midtrain/experiments";
import { parse } from "yaml";
import { HEAD_DOCUMENTS } from "./corpora.js";

/** How far `shrinkConfig` scales the study down (the page's `?smoke=1`, and the browser test). */
export interface ShrinkOptions {
  /** Pretraining steps (default 60); branches start at the same fractions of it. */
  steps?: number;
  /** Steps of each SFT run (default 6). */
  sftSteps?: number;
}

type Raw = Record<string, any>;

/**
 * The "smoke" version of a study config: the same phases, branches, sources, SFT domains and
 * seeds, with everything that sets the cost scaled down — a 1-layer, 32-wide model, 32-token
 * pretraining and 128-token SFT sequences, batch 4, 60 pretraining steps, 6 SFT steps per run,
 * only the first learning rate of the SFT grid and the first pretraining seed, 24 documents per
 * source (HEAD_DOCUMENTS), 8 validation sequences per set. Applied to the
 * parsed YAML before validation, so the browser page and the Node side of the test derive the
 * same config from the same file.
 */
export function shrinkConfig(raw: Raw, o: ShrinkOptions = {}): Raw {
  const c: Raw = structuredClone(raw);
  c.name = `${c.name}-smoke`;
  c.model = { ...c.model, overrides: { ...(c.model?.overrides ?? {}), dModel: 32, nLayer: 1, nHead: 2, seqLen: 128 } };
  c.data = { ...c.data, seqLen: 32, maxValidationSequences: 8 };
  for (const group of ["sources", "sft"] as const) {
    const g = c.data[group] as Record<string, Raw> | undefined;
    if (!g) continue;
    // HEAD_DOCUMENTS: the page then fetches only the heads of the train files (corpora/head/).
    for (const k of Object.keys(g)) g[k] = { ...g[k], maxDocuments: Math.min(g[k].maxDocuments ?? HEAD_DOCUMENTS, HEAD_DOCUMENTS) };
  }
  const steps = o.steps ?? 60;
  c.pretrain = { ...c.pretrain, steps, batchSize: 4, evalEvery: Math.max(1, Math.floor(steps / 2)), logEvery: 2 };
  delete c.pretrain.checkpointEvery;
  if (c.sft) c.sft = { ...c.sft, steps: o.sftSteps ?? 6, batchSize: 4, seqLen: 128, lrGrid: (c.sft.lrGrid as number[]).slice(0, 1) };
  // One pretraining seed (the first): a second seed doubles the run and tests nothing new here.
  if (Array.isArray(c.pretrainSeeds)) c.pretrainSeeds = c.pretrainSeeds.slice(0, 1);
  return c;
}

/** Parses a study YAML (the text of examples/micro-study/micro-study.yaml), shrunk when asked. */
export function loadConfig(yamlText: string, shrink?: ShrinkOptions | false, source = "micro-study.yaml"): ExperimentConfig {
  const raw = parse(yamlText) as Raw;
  return parseExperimentConfig(shrink ? shrinkConfig(raw, shrink) : raw, source);
}

/** Reads the shrink options from the page's URL: `?smoke=1` (and optionally `steps=`, `sftSteps=`). */
export function shrinkFromUrl(params: URLSearchParams): ShrinkOptions | false {
  if (!params.has("smoke") || params.get("smoke") === "0") return false;
  const num = (k: string) => {
    const v = params.get(k);
    return v && Number.isInteger(Number(v)) && Number(v) > 0 ? Number(v) : undefined;
  };
  return { steps: num("steps"), sftSteps: num("sftSteps") };
}

/** A short stable hash (FNV-1a) of a config: names the IndexedDB database of its run. */
export function configHash(config: ExperimentConfig): string {
  return hashString(JSON.stringify(config)).toString(16).padStart(8, "0");
}
