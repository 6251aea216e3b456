import type { ModelConfig } from "./config.js";

/** How a parameter is initialized (GPT-NeoX `small_init` / `wang_init`). */
export type InitKind = "small" | "wang" | "zeros" | "ones";

/** One named parameter of the model. */
export interface ParamSpec {
  /** Hugging Face GPTNeoXForCausalLM name. */
  name: string;
  /** Shape in the Hugging Face checkpoint (`nn.Linear` weights are [out, in]). */
  hfShape: number[];
  /**
   * True when the model stores the tensor transposed ([in, out]) so that the forward pass is
   * `x @ W` without transposed matmuls; save/load transpose back to the HF layout.
   */
  transposed: boolean;
  init: InitKind;
  /** A matrix weight (embedding or linear), the usual target of weight decay. */
  isMatrix: boolean;
}

/** The stored (in-memory) shape of a parameter. */
export function storedShape(spec: ParamSpec): number[] {
  return spec.transposed ? [spec.hfShape[1], spec.hfShape[0]] : spec.hfShape.slice();
}

/** Every parameter of a config, in Hugging Face `named_parameters()` order. */
export function paramSpecs(config: ModelConfig): ParamSpec[] {
  const d = config.dModel;
  const h = config.intermediateSize;
  const V = config.paddedVocabSize;
  const specs: ParamSpec[] = [];
  const vec = (name: string, n: number, init: InitKind) =>
    specs.push({ name, hfShape: [n], transposed: false, init, isMatrix: false });
  const lin = (name: string, out: number, inp: number, init: InitKind) =>
    specs.push({ name, hfShape: [out, inp], transposed: true, init, isMatrix: true });

  specs.push({
    name: "gpt_neox.embed_in.weight",
    hfShape: [V, d],
    transposed: false,
    init: "small",
    isMatrix: true,
  });
  for (let i = 0; i < config.nLayer; i++) {
    const p = `gpt_neox.layers.${i}.`;
    vec(`${p}input_layernorm.weight`, d, "ones");
    vec(`${p}input_layernorm.bias`, d, "zeros");
    vec(`${p}post_attention_layernorm.weight`, d, "ones");
    vec(`${p}post_attention_layernorm.bias`, d, "zeros");
    lin(`${p}attention.query_key_value.weight`, 3 * d, d, "small");
    vec(`${p}attention.query_key_value.bias`, 3 * d, "zeros");
    lin(`${p}attention.dense.weight`, d, d, "wang");
    vec(`${p}attention.dense.bias`, d, "zeros");
    lin(`${p}mlp.dense_h_to_4h.weight`, h, d, "small");
    vec(`${p}mlp.dense_h_to_4h.bias`, h, "zeros");
    lin(`${p}mlp.dense_4h_to_h.weight`, d, h, "wang");
    vec(`${p}mlp.dense_4h_to_h.bias`, d, "zeros");
  }
  vec("gpt_neox.final_layer_norm.weight", d, "ones");
  vec("gpt_neox.final_layer_norm.bias", d, "zeros");
  lin("embed_out.weight", V, d, "small");
  return specs;
}

/**
 * Standard deviations of the Pythia initialization (GPT-NeoX `init_functions.py`):
 * `small_init` = sqrt(2 / (5 d)) for embeddings and input projections, `wang_init` =
 * 2 / (nLayer * sqrt(d)) for the attention-out and MLP-out projections.
 */
export function initStd(config: ModelConfig, kind: InitKind): number {
  const d = config.dModel;
  if (kind === "small") return Math.sqrt(2 / (5 * d));
  if (kind === "wang") return 2 / (config.nLayer * Math.sqrt(d));
  return 0;
}

/** Transposes a row-major [rows, cols] matrix. */
export function transpose2d(src: Float32Array, rows: number, cols: number): Float32Array {
  const out = new Float32Array(src.length);
  for (let r = 0; r < rows; r++) {
    const base = r * cols;
    for (let c = 0; c < cols; c++) out[c * rows + r] = src[base + c];
  }
  return out;
}
