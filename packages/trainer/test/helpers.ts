/** Shared fixtures: the cpu backend, a tiny byte-level model and small in-memory sources. */
import { initBackend } from "@midtrain/backend";
import { byteTokenizer, createMixer, type Mixer, type MixtureScheduleLike, packPretrain, type PackedSource } from "@midtrain/data";
import { createModel, type GPTNeoXModel, getModelConfig, type ModelConfig } from "@midtrain/model";

export const tok = byteTokenizer();
export const SEQ = 16;

export async function cpu() {
  const { tf, backend } = await initBackend({ prefer: "cpu" });
  if (backend !== "cpu") throw new Error(`expected cpu, got ${backend}`);
  return tf;
}

/** d 32, 2 layers, 2 heads, T 16, byte vocabulary (258, padded 384). */
export function tinyConfig(): ModelConfig {
  return getModelConfig("tiny-1m", { nLayer: 2, dModel: 32, nHead: 2, seqLen: SEQ, intermediateSize: 128 });
}

export function tinyModel(seed = 1): GPTNeoXModel {
  return createModel(tinyConfig(), { seed });
}

const WORDS = "the a cat dog sat on mat ran far near house tree river stone light dark small big old new".split(" ");
const CODE = ["def f(x):", "return x+1", "for i in range(n):", "if x > 0:", "print(x)", "import os", "x = [1, 2]", "while y:"];

function docs(n: number, seed: number, gen: (i: number, r: () => number) => string): string[] {
  let s = seed >>> 0;
  const r = () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
  return Array.from({ length: n }, (_, i) => gen(i, r));
}

export function generalDocs(n: number, seed = 1): string[] {
  return docs(n, seed, (_i, r) => Array.from({ length: 8 + Math.floor(r() * 12) }, () => WORDS[Math.floor(r() * WORDS.length)]).join(" "));
}

export function codeDocs(n: number, seed = 2): string[] {
  return docs(n, seed, (_i, r) => Array.from({ length: 3 + Math.floor(r() * 4) }, () => CODE[Math.floor(r() * CODE.length)]).join("\n"));
}

export function pack(documents: string[]): PackedSource {
  return packPretrain(documents, tok, { seqLen: SEQ });
}

export interface Sources {
  train: { general: PackedSource; code: PackedSource };
  valid: { general: PackedSource; code: PackedSource };
}

export function sources(): Sources {
  return {
    train: { general: pack(generalDocs(200, 1)), code: pack(codeDocs(120, 2)) },
    valid: { general: packValid(generalDocs(12, 99)), code: packValid(codeDocs(8, 98)) },
  };
}

export function mixerFor(
  s: Sources,
  schedule: MixtureScheduleLike | Record<string, number>,
  opts: { seed?: number; only?: ("general" | "code")[] } = {},
): Mixer {
  const names = opts.only ?? (["general", "code"] as const);
  return createMixer({
    sources: Object.fromEntries(names.map((n) => [n, s.train[n]])),
    validation: { general: s.valid.general, code: s.valid.code },
    schedule,
    seed: opts.seed ?? 7,
  });
}

/** Bitwise equality of two Float32Arrays (NaN-safe), as a count of differing elements. */
export function bitDiff(a: Float32Array, b: Float32Array): number {
  if (a.length !== b.length) return Number.POSITIVE_INFINITY;
  const ua = new Uint32Array(a.buffer, a.byteOffset, a.length);
  const ub = new Uint32Array(b.buffer, b.byteOffset, b.length);
  let n = 0;
  for (let i = 0; i < ua.length; i++) if (ua[i] !== ub[i]) n++;
  return n;
}

export async function paramValues(model: GPTNeoXModel): Promise<Map<string, Float32Array>> {
  const out = new Map<string, Float32Array>();
  for (const [k, v] of model.params) out.set(k, (await v.data()) as Float32Array);
  return out;
}

/** Validation packing keeps the final partial block (padded, masked). */
export function packValid(documents: string[]): PackedSource {
  return packPretrain(documents, tok, { seqLen: SEQ, keepTail: true });
}
