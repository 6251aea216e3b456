import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import * as tf from "@tensorflow/tfjs-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  CheckpointError,
  createModel,
  f32ToBf16,
  fromHfConfig,
  getModelConfig,
  type GPTNeoXModel,
  ModelConfigError,
  modelToSafetensors,
  parseSafetensors,
  type SafeTensor,
  SafetensorsError,
  serializeSafetensors,
  toFloat32,
} from "../src/index.js";
import { loadHf, readSafetensorsFile, saveHf, writeSafetensorsFile } from "../src/node.js";
import { useBackend } from "./backends.js";
import { FIXTURE_MODEL_DIR } from "./helpers.js";

const cfg = getModelConfig("tiny-1m", { nLayer: 2, dModel: 64, nHead: 4, seqLen: 32 });
let dir: string;
let start = 0;
let ids: tf.Tensor2D;

beforeAll(async () => {
  await useBackend("cpu");
  start = tf.memory().numTensors;
  dir = mkdtempSync(join(tmpdir(), "midtrain-model-"));
  ids = tf.tensor2d([5, 9, 200, 31, 7, 7, 100, 257], [2, 4], "int32");
});
afterAll(() => {
  ids.dispose();
  rmSync(dir, { recursive: true, force: true });
  expect(tf.memory().numTensors).toBe(start);
});

async function logitsOf(m: GPTNeoXModel): Promise<Float32Array> {
  const y = m.forward(ids);
  const d = (await y.data()) as Float32Array;
  y.dispose();
  return d;
}

/** Copies the fixture checkpoint into a fresh folder, letting `edit` change its tensors/config. */
function editedCheckpoint(name: string, edit: (t: Map<string, SafeTensor>, config: Record<string, unknown>) => void): string {
  const out = join(dir, name);
  const { tensors } = parseSafetensors(new Uint8Array(readFileSync(join(FIXTURE_MODEL_DIR, "model.safetensors"))));
  const config = JSON.parse(readFileSync(join(FIXTURE_MODEL_DIR, "config.json"), "utf8"));
  edit(tensors, config);
  rmSync(out, { recursive: true, force: true });
  mkdirSync(out, { recursive: true });
  writeFileSync(join(out, "model.safetensors"), serializeSafetensors(tensors, { format: "pt" }));
  writeFileSync(join(out, "config.json"), JSON.stringify(config));
  return out;
}

describe("saveHf / loadHf", () => {
  it("round trip: save -> load gives identical logits and weights", async () => {
    const m = createModel(cfg, { seed: 42 });
    const target = join(dir, "rt");
    await saveHf(m, target);
    expect(readdirSync(target).sort()).toEqual(["config.json", "model.safetensors"]); // no temp files left
    const back = await loadHf(target);
    expect(back.config).toEqual(m.config);
    const a = await logitsOf(m);
    const b = await logitsOf(back);
    expect(b).toEqual(a); // bit-identical
    const wa = await m.toHfTensors();
    const wb = await back.toHfTensors();
    for (const [name, t] of wa) expect(wb.get(name)!.data, name).toEqual(t.data);
    m.dispose();
    back.dispose();
  });

  it("the streamed file is byte-identical to the in-memory serialization", async () => {
    const m = createModel(cfg, { seed: 6 });
    for (const dtype of ["float32", "bfloat16"] as const) {
      const target = join(dir, `stream-${dtype}`);
      await saveHf(m, target, { dtype });
      const streamed = new Uint8Array(readFileSync(join(target, "model.safetensors")));
      const inMemory = await modelToSafetensors(m, dtype);
      expect(streamed.byteLength).toBe(inMemory.byteLength);
      expect(Buffer.compare(Buffer.from(streamed), Buffer.from(inMemory))).toBe(0);
    }
    const file = join(dir, "plain.safetensors");
    const tensors = { a: { dtype: "I32" as const, shape: [3], data: new Int32Array([1, -2, 3]) } };
    await writeSafetensorsFile(file, tensors, { k: "v" });
    expect(Buffer.compare(readFileSync(file), Buffer.from(serializeSafetensors(tensors, { k: "v" })))).toBe(0);
    m.dispose();
  });

  it("writes GPTNeoXConfig keys and HF tensor names/shapes", async () => {
    const m = createModel(cfg, { seed: 1 });
    const target = join(dir, "keys");
    await saveHf(m, target);
    m.dispose();
    const json = JSON.parse(readFileSync(join(target, "config.json"), "utf8"));
    expect(json).toMatchObject({
      architectures: ["GPTNeoXForCausalLM"],
      model_type: "gpt_neox",
      vocab_size: 384,
      hidden_size: 64,
      num_hidden_layers: 2,
      num_attention_heads: 4,
      intermediate_size: 256,
      rotary_pct: 0.25,
      rotary_emb_base: 10000,
      max_position_embeddings: 32,
      layer_norm_eps: 1e-5,
      use_parallel_residual: true,
      tie_word_embeddings: false,
      hidden_act: "gelu",
      torch_dtype: "float32",
      rope_theta: 10000,
      partial_rotary_factor: 0.25,
    });
    const { tensors, metadata } = await readSafetensorsFile(join(target, "model.safetensors"));
    expect(metadata.format).toBe("pt"); // transformers refuses safetensors without it
    expect(tensors.get("gpt_neox.layers.1.attention.query_key_value.weight")!.shape).toEqual([192, 64]);
    expect(tensors.get("gpt_neox.layers.1.mlp.dense_h_to_4h.weight")!.shape).toEqual([256, 64]);
    expect(tensors.get("gpt_neox.layers.1.mlp.dense_4h_to_h.weight")!.shape).toEqual([64, 256]);
    expect(tensors.get("embed_out.weight")!.shape).toEqual([384, 64]);
    expect(tensors.size).toBe(2 + 2 + 2 * 12);
  });

  it("re-saving the torch-written fixture reproduces its tensors exactly (layout round trip)", async () => {
    const m = await loadHf(FIXTURE_MODEL_DIR);
    const target = join(dir, "resave");
    await saveHf(m, target);
    m.dispose();
    const a = (await readSafetensorsFile(join(FIXTURE_MODEL_DIR, "model.safetensors"))).tensors;
    const b = (await readSafetensorsFile(join(target, "model.safetensors"))).tensors;
    expect([...b.keys()].sort()).toEqual([...a.keys()].sort());
    for (const [name, t] of a) {
      expect(b.get(name)!.shape, name).toEqual(t.shape);
      expect(b.get(name)!.data, name).toEqual(t.data);
    }
  });

  it("bf16 and f16 checkpoints are converted to float32 on load", async () => {
    const m = createModel(cfg, { seed: 5 });
    for (const dtype of ["bfloat16", "float16"] as const) {
      const target = join(dir, dtype);
      await saveHf(m, target, { dtype });
      const { tensors } = await readSafetensorsFile(join(target, "model.safetensors"));
      expect(tensors.get("embed_out.weight")!.dtype).toBe(dtype === "bfloat16" ? "BF16" : "F16");
      const back = await loadHf(target);
      const w = (await back.toHfTensors()).get("embed_out.weight")!.data;
      const orig = (await m.toHfTensors()).get("embed_out.weight")!.data;
      if (dtype === "bfloat16") {
        // exactly the bf16 rounding of the original
        const rounded = toFloat32({ dtype: "BF16", shape: [orig.length], data: f32ToBf16(orig) });
        expect(w).toEqual(rounded);
      }
      // round-to-nearest error bound: half an ulp relative (bf16 2^-8, f16 2^-11), plus the
      // f16 subnormal spacing 2^-24 for tiny values
      const rel = dtype === "bfloat16" ? 2 ** -8 : 2 ** -11;
      let worst = 0;
      for (let i = 0; i < w.length; i++) {
        worst = Math.max(worst, Math.abs(w[i] - orig[i]) - (rel * Math.abs(orig[i]) + 2 ** -24));
      }
      expect(worst).toBeLessThanOrEqual(0);
      back.dispose();
    }
    m.dispose();
  });

  it("loads HF checkpoints that carry attention buffers", async () => {
    const target = editedCheckpoint("buffers", (t) => {
      t.set("gpt_neox.layers.0.attention.bias", { dtype: "U8", shape: [1, 1, 4, 4], data: new Uint8Array(16) });
      t.set("gpt_neox.layers.0.attention.masked_bias", { dtype: "F32", shape: [], data: new Float32Array([-1e9]) });
      t.set("gpt_neox.layers.0.attention.rotary_emb.inv_freq", { dtype: "F32", shape: [2], data: new Float32Array(2) });
    });
    const m = await loadHf(target);
    expect(m.params.size).toBe(28);
    m.dispose();
  });

  it("reads a Pythia config.json as published", () => {
    // keys and values of EleutherAI/pythia-70m's config.json
    const pythia70m = {
      architectures: ["GPTNeoXForCausalLM"],
      bos_token_id: 0,
      eos_token_id: 0,
      hidden_act: "gelu",
      hidden_size: 512,
      initializer_range: 0.02,
      intermediate_size: 2048,
      layer_norm_eps: 1e-5,
      max_position_embeddings: 2048,
      model_type: "gpt_neox",
      num_attention_heads: 8,
      num_hidden_layers: 6,
      rotary_emb_base: 10000,
      rotary_pct: 0.25,
      tie_word_embeddings: false,
      torch_dtype: "float16",
      transformers_version: "4.24.0",
      use_cache: true,
      use_parallel_residual: true,
      vocab_size: 50304,
    };
    expect(fromHfConfig(pythia70m)).toEqual(getModelConfig("pythia-70m"));
    // newer transformers names for the rotary settings
    const { rotary_pct: _p, rotary_emb_base: _b, ...rest } = pythia70m;
    expect(fromHfConfig({ ...rest, partial_rotary_factor: 0.5, rope_theta: 500 })).toMatchObject({
      rotaryPct: 0.5,
      rotaryBase: 500,
    });
    expect(() => fromHfConfig({ ...pythia70m, model_type: "llama" })).toThrow(ModelConfigError);
    expect(() => fromHfConfig({ ...pythia70m, hidden_act: "gelu_new" })).toThrow(/exact 'gelu'/);
    expect(() => fromHfConfig({ ...pythia70m, hidden_size: "512" })).toThrow(/'hidden_size' must be a number/);
  });
});

describe("malformed checkpoints give clear errors", () => {
  it("missing tensor", async () => {
    const target = editedCheckpoint("missing", (t) => t.delete("gpt_neox.layers.1.mlp.dense_4h_to_h.bias"));
    await expect(loadHf(target)).rejects.toThrow(CheckpointError);
    await expect(loadHf(target)).rejects.toThrow(/missing 1 tensor\(s\): gpt_neox.layers.1.mlp.dense_4h_to_h.bias/);
  });

  it("shape that does not match config.json", async () => {
    const target = editedCheckpoint("shape", (_t, c) => {
      c.intermediate_size = 128;
    });
    await expect(loadHf(target)).rejects.toThrow(/has shape \[256,64\] but config.json implies \[128,64\]/);
  });

  it("unexpected tensors (another architecture)", async () => {
    const target = editedCheckpoint("extra", (t) => t.set("lm_head.weight", { dtype: "F32", shape: [1], data: new Float32Array(1) }));
    await expect(loadHf(target)).rejects.toThrow(/unexpected tensor\(s\): lm_head.weight/);
  });

  it("wrong dtype", async () => {
    const target = editedCheckpoint("dtype", (t) => t.set("gpt_neox.final_layer_norm.bias", { dtype: "I32", shape: [64], data: new Int32Array(64) }));
    await expect(loadHf(target)).rejects.toThrow(/'gpt_neox.final_layer_norm.bias' has dtype I32/);
  });

  it("truncated file and header length beyond the file", async () => {
    const target = editedCheckpoint("trunc", () => {});
    const file = join(target, "model.safetensors");
    const bytes = readFileSync(file);
    writeFileSync(file, bytes.subarray(0, bytes.byteLength - 100));
    await expect(loadHf(target)).rejects.toThrow(SafetensorsError);
    await expect(loadHf(target)).rejects.toThrow(/truncated/);
    const huge = Buffer.alloc(16);
    huge.writeBigUInt64LE(1n << 50n, 0); // a 1 PiB header in a 16-byte file: refused before allocating
    writeFileSync(file, huge);
    await expect(loadHf(target)).rejects.toThrow(/header length 1125899906842624 exceeds the file size \(16 bytes\)/);
    writeFileSync(file, Buffer.alloc(3));
    await expect(loadHf(target)).rejects.toThrow(/8-byte header length/);
  });

  it("bad JSON in the header or config, missing files", async () => {
    const target = editedCheckpoint("json", () => {});
    const file = join(target, "model.safetensors");
    const head = Buffer.from('{"a": tru', "utf8");
    const bytes = Buffer.alloc(8 + head.byteLength);
    bytes.writeBigUInt64LE(BigInt(head.byteLength), 0);
    head.copy(bytes, 8);
    writeFileSync(file, bytes);
    await expect(loadHf(target)).rejects.toThrow(/header is not valid JSON/);
    writeFileSync(join(target, "config.json"), "{ nope");
    await expect(loadHf(target)).rejects.toThrow(/config.json is not valid JSON/);
    await expect(loadHf(join(dir, "does-not-exist"))).rejects.toThrow(/cannot read .*config.json/);
    const noWeights = join(dir, "noweights");
    mkdirSync(noWeights, { recursive: true });
    writeFileSync(join(noWeights, "config.json"), readFileSync(join(FIXTURE_MODEL_DIR, "config.json")));
    await expect(loadHf(noWeights)).rejects.toThrow(/model.safetensors not found/);
  });

  it("writeSafetensorsFile leaves no temp file behind when serialization fails", async () => {
    const file = join(dir, "bad.safetensors");
    await expect(writeSafetensorsFile(file, { a: { dtype: "F32", shape: [2], data: new Float32Array(1) } })).rejects.toThrow(/needs 8 bytes/);
    expect(existsSync(file)).toBe(false);
    expect(readdirSync(dir).some((f) => f.includes(".tmp-"))).toBe(false);
  });
});
