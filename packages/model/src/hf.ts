/** Hugging Face interop (pure, browser-safe): config.json keys and model.safetensors bytes. */
import { type ModelConfig, validateConfig } from "./config.js";
import { CheckpointError, ModelConfigError, SafetensorsError } from "./errors.js";
import { type GPTNeoXModel, type HfTensor, type MemoryOptions, modelFromHfTensors } from "./model.js";
import { f32ToBf16, f32ToF16, parseSafetensors, type SafeTensor, serializeSafetensors, toFloat32 } from "./safetensors.js";

/** The `config.json` of a GPTNeoXForCausalLM checkpoint (the keys this package reads/writes). */
export interface HfGPTNeoXConfig {
  architectures: string[];
  model_type: "gpt_neox";
  vocab_size: number;
  hidden_size: number;
  num_hidden_layers: number;
  num_attention_heads: number;
  intermediate_size: number;
  rotary_pct: number;
  rotary_emb_base: number;
  max_position_embeddings: number;
  layer_norm_eps: number;
  use_parallel_residual: boolean;
  tie_word_embeddings: boolean;
  hidden_act: string;
  torch_dtype: string;
  /** Not an HF key: the tokenizer's vocabulary when smaller than the padded `vocab_size`. */
  midtrain_vocab_size?: number;
  [key: string]: unknown;
}

/** Dtype of the tensors written to `model.safetensors`. */
export type SaveDtype = "float32" | "bfloat16" | "float16";

const TORCH_DTYPE: Record<SaveDtype, string> = {
  float32: "float32",
  bfloat16: "bfloat16",
  float16: "float16",
};

/** `config.json` contents for a model config. HF `vocab_size` is the padded vocabulary. */
export function toHfConfig(config: ModelConfig, dtype: SaveDtype = "float32"): HfGPTNeoXConfig {
  const c = validateConfig({ ...config });
  return {
    architectures: ["GPTNeoXForCausalLM"],
    model_type: "gpt_neox",
    vocab_size: c.paddedVocabSize,
    hidden_size: c.dModel,
    num_hidden_layers: c.nLayer,
    num_attention_heads: c.nHead,
    intermediate_size: c.intermediateSize,
    rotary_pct: c.rotaryPct,
    rotary_emb_base: c.rotaryBase,
    max_position_embeddings: c.seqLen,
    layer_norm_eps: c.layerNormEps,
    use_parallel_residual: c.parallelResidual,
    tie_word_embeddings: false,
    hidden_act: "gelu",
    torch_dtype: TORCH_DTYPE[dtype],
    // newer transformers releases read the rotary settings under these names
    rope_theta: c.rotaryBase,
    partial_rotary_factor: c.rotaryPct,
    attention_bias: true,
    initializer_range: 0.02,
    midtrain_vocab_size: c.vocabSize,
  };
}

/** Reads a GPT-NeoX `config.json` object into a {@link ModelConfig}. */
export function fromHfConfig(json: unknown): ModelConfig {
  if (typeof json !== "object" || json === null || Array.isArray(json)) {
    throw new ModelConfigError("config.json must be a JSON object");
  }
  const j = json as Record<string, unknown>;
  if (j.model_type !== undefined && j.model_type !== "gpt_neox") {
    throw new ModelConfigError(`config.json has model_type '${String(j.model_type)}'; only 'gpt_neox' (GPTNeoXForCausalLM) is supported`);
  }
  const num = (key: string, fallback?: number): number => {
    const v = j[key];
    if (v === undefined && fallback !== undefined) return fallback;
    if (typeof v !== "number" || !Number.isFinite(v)) {
      throw new ModelConfigError(`config.json key '${key}' must be a number, got ${JSON.stringify(v)}`);
    }
    return v;
  };
  if (j.tie_word_embeddings === true) {
    throw new ModelConfigError("config.json sets tie_word_embeddings: true; this model keeps untied embeddings");
  }
  const act = j.hidden_act ?? "gelu";
  if (act !== "gelu") {
    throw new ModelConfigError(`config.json hidden_act '${String(act)}' is not supported; this model uses exact 'gelu'`);
  }
  const hidden = num("hidden_size");
  const padded = num("vocab_size");
  const vocab = typeof j.midtrain_vocab_size === "number" ? j.midtrain_vocab_size : padded;
  return validateConfig({
    vocabSize: vocab,
    paddedVocabSize: padded,
    nLayer: num("num_hidden_layers"),
    nHead: num("num_attention_heads"),
    dModel: hidden,
    seqLen: num("max_position_embeddings", 2048),
    rotaryPct: j.rotary_pct !== undefined ? num("rotary_pct") : num("partial_rotary_factor", 0.25),
    rotaryBase: j.rotary_emb_base !== undefined ? num("rotary_emb_base") : num("rope_theta", 10000),
    layerNormEps: num("layer_norm_eps", 1e-5),
    parallelResidual: typeof j.use_parallel_residual === "boolean" ? j.use_parallel_residual : true,
    intermediateSize: num("intermediate_size", 4 * hidden),
  });
}

/** The safetensors dtype a {@link SaveDtype} is written as. */
export const SAFETENSORS_DTYPE: Record<SaveDtype, "F32" | "BF16" | "F16"> = {
  float32: "F32",
  bfloat16: "BF16",
  float16: "F16",
};

/** Float32 values encoded for a {@link SaveDtype} (round to nearest even for halves). */
export function encodeFloat32(data: Float32Array, dtype: SaveDtype): Float32Array | Uint16Array {
  if (dtype === "float32") return data;
  return dtype === "bfloat16" ? f32ToBf16(data) : f32ToF16(data);
}

/** A model's weights as safetensors bytes with Hugging Face names and layout. */
export async function modelToSafetensors(model: GPTNeoXModel, dtype: SaveDtype = "float32"): Promise<Uint8Array> {
  const tensors = new Map<string, SafeTensor>();
  for (const spec of model.specs) {
    const t = await model.hfTensor(spec.name);
    tensors.set(spec.name, { dtype: SAFETENSORS_DTYPE[dtype], shape: t.shape, data: encodeFloat32(t.data, dtype) });
  }
  return serializeSafetensors(tensors, { format: "pt" });
}

/** Converts parsed safetensors to float32 HF tensors (F16/BF16/F64 converted). */
export function safeTensorsToHf(tensors: Map<string, SafeTensor>): Map<string, HfTensor> {
  const out = new Map<string, HfTensor>();
  const buffer = /\.attention\.(bias|masked_bias|rotary_emb\.inv_freq)$/;
  for (const [name, t] of tensors) {
    if (buffer.test(name)) continue; // non-parameter buffers of older HF checkpoints
    let data: Float32Array;
    try {
      data = toFloat32(t, `tensor '${name}'`);
    } catch (e) {
      if (e instanceof SafetensorsError) throw new CheckpointError(e.message);
      throw e;
    }
    out.set(name, { shape: t.shape, data });
  }
  return out;
}

/** Builds a model from `config.json` contents and `model.safetensors` bytes; `memory` as in {@link modelFromHfTensors}. */
export function modelFromSafetensors(configJson: unknown, bytes: Uint8Array, memory: MemoryOptions = {}): GPTNeoXModel {
  const config = fromHfConfig(configJson);
  const { tensors } = parseSafetensors(bytes);
  return modelFromHfTensors(config, safeTensorsToHf(tensors), memory);
}
