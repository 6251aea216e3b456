import { didYouMean, suggest } from "@midtrain/common";
import { ModelConfigError } from "./errors.js";

/** Shape and hyper-parameters of a GPT-NeoX / Pythia decoder. */
export interface ModelConfig {
  /** Tokens the tokenizer can produce (ids are checked against `paddedVocabSize`). */
  vocabSize: number;
  /** Rows of the embedding matrices and width of the logits; a multiple of 128 for presets. */
  paddedVocabSize: number;
  nLayer: number;
  nHead: number;
  dModel: number;
  /** Maximum context length (HF `max_position_embeddings`). */
  seqLen: number;
  /** Fraction of each head's dims that get rotary embeddings (Pythia: 0.25). */
  rotaryPct: number;
  /** Rotary base (Pythia: 10000). */
  rotaryBase: number;
  layerNormEps: number;
  /** Attention and MLP both read the block input (Pythia: true). */
  parallelResidual: boolean;
  /** MLP hidden width (Pythia: 4 * dModel). */
  intermediateSize: number;
}

/** Rounds a vocabulary size up to the next multiple of `multiple` (default 128). */
export function padVocab(vocabSize: number, multiple = 128): number {
  return Math.ceil(vocabSize / multiple) * multiple;
}

/** Vocabulary of the project's byte-level tokenizer: 256 bytes + EOS + PAD. */
export const BYTE_VOCAB_SIZE = 258;
/** Vocabulary of the Pythia (GPT-NeoX) tokenizer as stored in the checkpoints (already padded). */
export const PYTHIA_VOCAB_SIZE = 50304;

type Shape = Pick<ModelConfig, "nLayer" | "dModel" | "nHead" | "seqLen" | "vocabSize">;

function fromShape(s: Shape): ModelConfig {
  return {
    vocabSize: s.vocabSize,
    paddedVocabSize: padVocab(s.vocabSize),
    nLayer: s.nLayer,
    nHead: s.nHead,
    dModel: s.dModel,
    seqLen: s.seqLen,
    rotaryPct: 0.25,
    rotaryBase: 10000,
    layerNormEps: 1e-5,
    parallelResidual: true,
    intermediateSize: 4 * s.dModel,
  };
}

const PRESET_SHAPES: Record<string, Shape> = {
  "pythia-14m": { nLayer: 6, dModel: 128, nHead: 4, seqLen: 2048, vocabSize: PYTHIA_VOCAB_SIZE },
  "pythia-31m": { nLayer: 6, dModel: 256, nHead: 8, seqLen: 2048, vocabSize: PYTHIA_VOCAB_SIZE },
  "pythia-70m": { nLayer: 6, dModel: 512, nHead: 8, seqLen: 2048, vocabSize: PYTHIA_VOCAB_SIZE },
  "pythia-160m": { nLayer: 12, dModel: 768, nHead: 12, seqLen: 2048, vocabSize: PYTHIA_VOCAB_SIZE },
  "pythia-410m": { nLayer: 24, dModel: 1024, nHead: 16, seqLen: 2048, vocabSize: PYTHIA_VOCAB_SIZE },
  "pythia-1b": { nLayer: 16, dModel: 2048, nHead: 8, seqLen: 2048, vocabSize: PYTHIA_VOCAB_SIZE },
  // CPU-sized presets for the byte-level tokenizer (vocab 258 -> padded 384).
  "tiny-1m": { nLayer: 4, dModel: 128, nHead: 4, seqLen: 128, vocabSize: BYTE_VOCAB_SIZE },
  "tiny-4m": { nLayer: 5, dModel: 256, nHead: 4, seqLen: 256, vocabSize: BYTE_VOCAB_SIZE },
};

/** Names accepted by {@link getModelConfig}. */
export const MODEL_PRESETS: readonly string[] = Object.freeze(Object.keys(PRESET_SHAPES));

/**
 * A named preset, with optional overrides. Overriding `vocabSize` without `paddedVocabSize`
 * re-pads the vocabulary to a multiple of 128; overriding `dModel` without
 * `intermediateSize` keeps the MLP at 4 * dModel.
 */
export function getModelConfig(name: string, overrides: Partial<ModelConfig> = {}): ModelConfig {
  const shape = PRESET_SHAPES[name];
  if (!shape) {
    throw new ModelConfigError(`unknown model preset '${name}'${didYouMean(suggest(name, MODEL_PRESETS)) || "."} Known presets: ${MODEL_PRESETS.join(", ")}.`);
  }
  const base = fromShape(shape);
  const cfg: ModelConfig = { ...base, ...overrides };
  if (overrides.vocabSize !== undefined && overrides.paddedVocabSize === undefined) {
    cfg.paddedVocabSize = padVocab(overrides.vocabSize);
  }
  if (overrides.dModel !== undefined && overrides.intermediateSize === undefined) {
    cfg.intermediateSize = 4 * overrides.dModel;
  }
  return validateConfig(cfg);
}

/** Head size, rotary dims and other derived sizes. */
export function derivedSizes(config: ModelConfig): { headDim: number; rotaryDims: number } {
  const headDim = config.dModel / config.nHead;
  // HF GPTNeoX: rotary_ndims = int(head_size * rotary_pct)
  const rotaryDims = Math.floor(headDim * config.rotaryPct);
  return { headDim, rotaryDims };
}

/** Checks a config and returns it; throws {@link ModelConfigError} saying what to fix. */
export function validateConfig(config: ModelConfig): ModelConfig {
  const intKeys = ["vocabSize", "paddedVocabSize", "nLayer", "nHead", "dModel", "seqLen", "intermediateSize"] as const;
  for (const k of intKeys) {
    const v = config[k];
    if (typeof v !== "number" || !Number.isInteger(v) || v <= 0) {
      throw new ModelConfigError(`config.${k} must be a positive integer, got ${String(v)}`);
    }
  }
  if (config.paddedVocabSize < config.vocabSize) {
    throw new ModelConfigError(
      `config.paddedVocabSize (${config.paddedVocabSize}) must be >= vocabSize (${config.vocabSize}); ` +
        `use padVocab(${config.vocabSize}) = ${padVocab(config.vocabSize)}`,
    );
  }
  if (config.dModel % config.nHead !== 0) {
    throw new ModelConfigError(`config.dModel (${config.dModel}) must be divisible by nHead (${config.nHead})`);
  }
  if (!(config.rotaryPct >= 0 && config.rotaryPct <= 1)) {
    throw new ModelConfigError(`config.rotaryPct must be in [0, 1], got ${config.rotaryPct}`);
  }
  const { rotaryDims } = derivedSizes(config);
  if (rotaryDims % 2 !== 0) {
    throw new ModelConfigError(
      `rotary dims (head size ${config.dModel / config.nHead} * rotaryPct ${config.rotaryPct} = ${rotaryDims}) must be even; change rotaryPct or nHead`,
    );
  }
  if (!(config.rotaryBase > 0)) {
    throw new ModelConfigError(`config.rotaryBase must be > 0, got ${config.rotaryBase}`);
  }
  if (!(config.layerNormEps > 0)) {
    throw new ModelConfigError(`config.layerNormEps must be > 0, got ${config.layerNormEps}`);
  }
  if (typeof config.parallelResidual !== "boolean") {
    throw new ModelConfigError("config.parallelResidual must be a boolean");
  }
  return config;
}

/**
 * Number of parameters (all of them: both embeddings, biases and LayerNorms), counted over
 * the padded vocabulary as Pythia's published counts are.
 * Per layer: 12 d^2 + 13 d (with intermediate 4d); plus 2 V d embeddings and 2 d final LN.
 */
export function countParams(config: ModelConfig): number {
  const d = config.dModel;
  const h = config.intermediateSize;
  const perLayer =
    4 * d + // two LayerNorms
    (3 * d * d + 3 * d) + // query_key_value
    (d * d + d) + // attention.dense
    (d * h + h) + // dense_h_to_4h
    (h * d + d); // dense_4h_to_h
  return 2 * config.paddedVocabSize * d + config.nLayer * perLayer + 2 * d;
}

/**
 * Training FLOPs per token (forward + backward), PaLM-style:
 * `6 * N_matmul + 12 * nLayer * dModel * seqLen`, where `N_matmul` is every parameter except
 * the input embedding (a lookup, not a matmul) — the output embedding is counted — and the
 * second term is the attention scores and weighted sum (QK^T and AV, 2 * 2 * T * d FLOPs per
 * token per layer forward, x3 for backward), counted without the causal halving.
 */
export function flopsPerToken(config: ModelConfig, seqLen: number = config.seqLen): number {
  const nMatmul = countParams(config) - config.paddedVocabSize * config.dModel;
  return 6 * nMatmul + 12 * config.nLayer * config.dModel * seqLen;
}
