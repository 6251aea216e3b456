import type { ModelConfig } from "./config.js";

/** How a parameter is initialized (GPT-NeoX `small_init` / `wang_init`). */
export type InitKind = "small" | "wang" | "zeros" | "ones";

/** Stored layout of a parameter relative to the Hugging Face checkpoint. */
export type ParamLayout = "hf" | "transposed" | "qkv-weight" | "qkv-bias";

/** One named parameter of the model. */
export interface ParamSpec {
  /** Hugging Face GPTNeoXForCausalLM name. */
  name: string;
  /** Shape in the Hugging Face checkpoint (`nn.Linear` weights are [out, in]). */
  hfShape: number[];
  /**
   * How the model stores the tensor; save/load convert to and from the HF layout.
   * - `hf`: as in the checkpoint.
   * - `transposed`: `nn.Linear` weight stored [in, out], so the forward pass is `x @ W`
   *   without transposed matmuls.
   * - `qkv-weight`: the fused query_key_value weight stored [in, 3d] with its output columns
   *   regrouped from HF's per-head interleaving [nHead, 3, headDim] to [3, nHead, headDim]
   *   (all query columns, then keys, then values), so q, k and v are contiguous blocks.
   * - `qkv-bias`: its bias regrouped the same way.
   */
  layout: ParamLayout;
  init: InitKind;
  /** A matrix weight (embedding or linear), the usual target of weight decay. */
  isMatrix: boolean;
}

/** The stored (in-memory) shape of a parameter. */
export function storedShape(spec: ParamSpec): number[] {
  const [a, b] = spec.hfShape;
  return spec.layout === "transposed" || spec.layout === "qkv-weight" ? [b, a] : spec.hfShape.slice();
}

/** Every parameter of a config, in Hugging Face `named_parameters()` order. */
export function paramSpecs(config: ModelConfig): ParamSpec[] {
  const d = config.dModel;
  const h = config.intermediateSize;
  const V = config.paddedVocabSize;
  const specs: ParamSpec[] = [];
  const vec = (name: string, n: number, init: InitKind, layout: ParamLayout = "hf") => specs.push({ name, hfShape: [n], layout, init, isMatrix: false });
  const lin = (name: string, out: number, inp: number, init: InitKind, layout: ParamLayout = "transposed") =>
    specs.push({ name, hfShape: [out, inp], layout, init, isMatrix: true });

  specs.push({
    name: "gpt_neox.embed_in.weight",
    hfShape: [V, d],
    layout: "hf",
    init: "small",
    isMatrix: true,
  });
  for (let i = 0; i < config.nLayer; i++) {
    const p = `gpt_neox.layers.${i}.`;
    vec(`${p}input_layernorm.weight`, d, "ones");
    vec(`${p}input_layernorm.bias`, d, "zeros");
    vec(`${p}post_attention_layernorm.weight`, d, "ones");
    vec(`${p}post_attention_layernorm.bias`, d, "zeros");
    lin(`${p}attention.query_key_value.weight`, 3 * d, d, "small", "qkv-weight");
    vec(`${p}attention.query_key_value.bias`, 3 * d, "zeros", "qkv-bias");
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

/**
 * Position of HF fused-qkv output row `o` ([nHead, 3, headDim] order) in the stored
 * [3, nHead, headDim] order.
 */
function qkvColumn(o: number, nHead: number, headDim: number): number {
  const h = Math.floor(o / (3 * headDim));
  const j = Math.floor((o % (3 * headDim)) / headDim);
  const i = o % headDim;
  return j * nHead * headDim + h * headDim + i;
}

/** Converts a parameter's values from the HF layout to the stored layout. */
export function hfToStored(spec: ParamSpec, hf: Float32Array, config: ModelConfig): Float32Array {
  const nH = config.nHead;
  const hd = config.dModel / config.nHead;
  switch (spec.layout) {
    case "hf":
      return hf;
    case "transposed":
      return transpose2d(hf, spec.hfShape[0], spec.hfShape[1]);
    case "qkv-bias": {
      const out = new Float32Array(hf.length);
      for (let o = 0; o < hf.length; o++) out[qkvColumn(o, nH, hd)] = hf[o];
      return out;
    }
    case "qkv-weight": {
      const [rows, cols] = spec.hfShape; // [3d, d]
      const out = new Float32Array(hf.length); // [d, 3d]
      for (let o = 0; o < rows; o++) {
        const c = qkvColumn(o, nH, hd);
        for (let i = 0; i < cols; i++) out[i * rows + c] = hf[o * cols + i];
      }
      return out;
    }
  }
}

/** Converts a parameter's values from the stored layout back to the HF layout. */
export function storedToHf(spec: ParamSpec, stored: Float32Array, config: ModelConfig): Float32Array {
  const nH = config.nHead;
  const hd = config.dModel / config.nHead;
  switch (spec.layout) {
    case "hf":
      return stored.slice();
    case "transposed":
      return transpose2d(stored, spec.hfShape[1], spec.hfShape[0]);
    case "qkv-bias": {
      const out = new Float32Array(stored.length);
      for (let o = 0; o < stored.length; o++) out[o] = stored[qkvColumn(o, nH, hd)];
      return out;
    }
    case "qkv-weight": {
      const [rows, cols] = spec.hfShape;
      const out = new Float32Array(stored.length);
      for (let o = 0; o < rows; o++) {
        const c = qkvColumn(o, nH, hd);
        for (let i = 0; i < cols; i++) out[o * cols + i] = stored[i * rows + c];
      }
      return out;
    }
  }
}
