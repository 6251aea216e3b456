import { type Batch, evalBatches, type PackedSource } from "@midtrain/data";
import { ckaPerLayer } from "@midtrain/metrics";
import type { GPTNeoXModel } from "@midtrain/model";
import * as tf from "@tensorflow/tfjs-core";

/**
 * Hidden states of a model on the run's fixed probe batch (the first sequences of the general
 * validation set): one [rows, d] matrix per layer (the embedding output, then each block), for
 * representation similarity (linear CKA) between models of a run.
 */
export interface Probe {
  rows: number;
  cols: number;
  layers: Float32Array[];
}

/** How a probe is stored in a job folder (`probe.json`): float32 bytes as base64 per layer. */
export interface ProbeJson {
  rows: number;
  cols: number;
  layers: string[];
}

/** Sequences in the probe batch: enough rows for a stable CKA, cheap to keep (rows × d × layers floats). */
export const PROBE_SEQUENCES = 8;

/** The probe batch: the first `PROBE_SEQUENCES` sequences of `src` (validation data, never trained on). */
export function probeBatch(src: PackedSource): Batch {
  const first = evalBatches(src, Math.min(PROBE_SEQUENCES, src.numSequences)).next();
  if (first.done) throw new Error("the probe needs at least one validation sequence");
  return first.value;
}

/** Runs the model on the probe batch and reads every layer's hidden states back. */
export async function probeHidden(model: GPTNeoXModel, batch: Batch): Promise<Probe> {
  const ids = tf.tensor2d(batch.inputs, [batch.batchSize, batch.seqLen], "int32");
  const hidden = model.hidden(ids);
  ids.dispose();
  try {
    const layers: Float32Array[] = [];
    for (const h of hidden) layers.push((await h.data()) as Float32Array);
    return { rows: batch.batchSize * batch.seqLen, cols: model.config.dModel, layers };
  } finally {
    for (const h of hidden) h.dispose();
  }
}

function toBase64(bytes: Uint8Array): string {
  let s = "";
  for (let i = 0; i < bytes.length; i += 0x8000) s += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  return btoa(s);
}

function fromBase64(b64: string): Uint8Array {
  const s = atob(b64);
  const out = new Uint8Array(s.length);
  for (let i = 0; i < s.length; i++) out[i] = s.charCodeAt(i);
  return out;
}

export function encodeProbe(p: Probe): ProbeJson {
  return { rows: p.rows, cols: p.cols, layers: p.layers.map((l) => toBase64(new Uint8Array(l.buffer, l.byteOffset, l.byteLength))) };
}

export function decodeProbe(j: ProbeJson): Probe {
  return {
    rows: j.rows,
    cols: j.cols,
    layers: j.layers.map((b) => {
      const bytes = fromBase64(b);
      if (bytes.length !== j.rows * j.cols * 4)
        throw new Error(`a probe layer has ${bytes.length} bytes, expected ${j.rows * j.cols * 4} (rows ${j.rows} × cols ${j.cols} × 4)`);
      return new Float32Array(bytes.buffer, bytes.byteOffset, j.rows * j.cols);
    }),
  };
}

/** Linear CKA per layer between two probes of the same batch. */
export function probeCka(a: Probe, b: Probe): number[] {
  const m = (p: Probe) => p.layers.map((data) => ({ data, rows: p.rows, cols: p.cols }));
  return ckaPerLayer(m(a), m(b));
}
