import type { BuiltSource, Tokenizer } from "@midtrain/data";
import type { ExperimentConfig } from "./config.js";
import type { ExperimentData } from "./env.js";

/** One source of a config, as a loader is asked to build it. */
export interface SourceRequest {
  /** Its name in `data.sources` / `data.sft`. */
  name: string;
  source: ExperimentConfig["data"]["sources"][string];
  kind: "pretrain" | "sft";
  /** Sequence length to pack to (`sft.seqLen` for SFT sets, else `data.seqLen`). */
  seqLen: number;
  /** SFT sets: prompt tokens carry no loss (default true). */
  maskPrompt?: boolean;
  /** `maxDocuments`: read at most this many training documents. */
  limit?: number;
}

/**
 * The rules every loader shares (Node reads files, a page fetches the shipped corpora): which
 * sources a config has, the sequence length and prompt masking of each, and that each has
 * validation sequences. `build` turns one request into packed train and validation sources.
 */
export async function buildExperimentData(
  config: ExperimentConfig,
  tokenizer: Tokenizer,
  build: (request: SourceRequest) => Promise<BuiltSource>,
): Promise<ExperimentData> {
  const one = async (name: string, source: SourceRequest["source"], kind: SourceRequest["kind"]) => {
    const request: SourceRequest = {
      name,
      source,
      kind,
      seqLen: kind === "sft" ? (config.sft?.seqLen ?? config.data.seqLen) : config.data.seqLen,
      ...(kind === "sft" ? { maskPrompt: (source as { maskPrompt?: boolean }).maskPrompt ?? true } : {}),
      ...(source.maxDocuments ? { limit: source.maxDocuments } : {}),
    };
    const built = await build(request);
    if (!built.valid || built.valid.numSequences === 0) {
      throw new Error(`source '${name}' has no validation sequences; give it more documents or a validPath`);
    }
    return built as Required<BuiltSource>;
  };
  const sources: ExperimentData["sources"] = {};
  for (const [name, s] of Object.entries(config.data.sources)) sources[name] = await one(name, s, "pretrain");
  const sft: ExperimentData["sft"] = {};
  for (const [name, s] of Object.entries(config.data.sft)) sft[name] = await one(name, s, "sft");
  return { tokenizer, sources, sft };
}
