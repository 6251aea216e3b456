import { initBackend } from "@midtrain/backend";
import { PretrainPacker, byteTokenizer } from "@midtrain/data";
import { createModel, getModelConfig } from "@midtrain/model";
import * as tf from "@tensorflow/tfjs-core";
import { describe, expect, it } from "vitest";
import { decodeProbe, encodeProbe, PROBE_SEQUENCES, probeBatch, probeCka, probeHidden } from "../src/probe.js";

describe("probe (hidden states on a fixed batch, for CKA)", () => {
  it("reads every layer's hidden states, survives the JSON round trip, and CKA of a model with itself is 1", async () => {
    await initBackend({ prefer: "cpu" });
    const packer = new PretrainPacker(byteTokenizer(), { seqLen: 16 });
    for (let i = 0; i < 40; i++) packer.add(`document ${i}: ${"some words here and there ".repeat(3)}`);
    const src = packer.finish();
    const batch = probeBatch(src);
    expect(batch.batchSize).toBe(PROBE_SEQUENCES);
    const model = createModel(getModelConfig("tiny-1m", { dModel: 16, nLayer: 2, nHead: 2, seqLen: 32 }), { seed: 1 });
    const other = createModel(getModelConfig("tiny-1m", { dModel: 16, nLayer: 2, nHead: 2, seqLen: 32 }), { seed: 2 });
    const before = tf.memory().numTensors;
    const p = await probeHidden(model, batch);
    expect(tf.memory().numTensors).toBe(before);
    expect(p.layers).toHaveLength(3);
    expect(p.rows).toBe(PROBE_SEQUENCES * 16);
    // The same numbers as the model's own hidden states.
    const ids = tf.tensor2d(batch.inputs, [batch.batchSize, batch.seqLen], "int32");
    const hs = model.hidden(ids);
    expect(Array.from(p.layers[2])).toEqual(Array.from(await hs[2].data()));
    tf.dispose([ids, ...hs]);
    const back = decodeProbe(JSON.parse(JSON.stringify(encodeProbe(p))));
    expect(back.layers.map((l) => Array.from(l))).toEqual(p.layers.map((l) => Array.from(l)));
    for (const v of probeCka(p, back)) expect(v).toBeCloseTo(1, 10);
    const q = await probeHidden(other, batch);
    for (const v of probeCka(p, q)) expect(v).toBeLessThan(0.999);
    expect(() => decodeProbe({ ...encodeProbe(p), rows: p.rows + 1 })).toThrow(/expected/);
    model.dispose();
    other.dispose();
  });
});
