import { createModel } from "@midtrain/model";
import { beforeAll, describe, expect, it } from "vitest";
import { checkpointStep, optimizerFromSafetensors, optimizerToSafetensors, pruneCheckpoints } from "../src/checkpoint.js";
import { AdamW, CheckpointReadError, checkpointName, listCheckpoints, loadCheckpoint, MemoryStorage } from "../src/index.js";
import { carryMixerState } from "../src/phases.js";
import { cpu, mixerFor, sources, tinyConfig, tinyModel } from "./helpers.js";

beforeAll(async () => {
  await cpu();
});

describe("checkpoint helpers", () => {
  it("names, lists by step and prunes keep-last-N while keeping protected steps", async () => {
    expect(checkpointName(120)).toBe("ckpt-120");
    expect(checkpointStep("ckpt-120")).toBe(120);
    expect(checkpointStep("best")).toBeUndefined();
    const s = new MemoryStorage();
    for (const step of [100, 20, 3, 50, 7]) await s.write(checkpointName(step), { a: new Uint8Array([step]) });
    await s.write("notes", { a: new Uint8Array(1) });
    expect((await listCheckpoints(s)).map((c) => c.step)).toEqual([3, 7, 20, 50, 100]); // numeric, not lexical
    expect(await pruneCheckpoints(s, 2, [7], ["ckpt-3"])).toEqual(["ckpt-20"]);
    expect((await s.list()).sort()).toEqual(["ckpt-100", "ckpt-3", "ckpt-50", "ckpt-7", "notes"]);
  });

  it("loading from an empty or incomplete storage fails with CheckpointReadError naming the problem", async () => {
    const s = new MemoryStorage("mem://x");
    await expect(loadCheckpoint(s)).rejects.toThrow(/no checkpoint in mem:\/\/x/);
    await s.write("ckpt-1", { "trainer.json": new TextEncoder().encode("{}") });
    await expect(loadCheckpoint(s, "ckpt-1")).rejects.toThrow(CheckpointReadError);
    await expect(loadCheckpoint(s, "ckpt-1")).rejects.toThrow(/not a midtrain trainer state/);
    await expect(loadCheckpoint(s, "ckpt-9")).rejects.toThrow(/cannot read trainer.json of checkpoint 'ckpt-9'/);
  });

  it("optimizer state files round-trip and are checked against the model", async () => {
    const model = tinyModel();
    const opt = new AdamW();
    const name = "gpt_neox.final_layer_norm.weight";
    const n = model.params.get(name)!.size;
    const state = { step: 3, m: { [name]: new Float32Array(n).fill(0.5) }, v: { [name]: new Float32Array(n).fill(0.25) } };
    const bytes = optimizerToSafetensors(model, state, opt.config);
    const back = optimizerFromSafetensors(model, bytes);
    expect(back.state).toEqual(state);
    expect(back.config).toEqual(opt.config);
    const other = createModel({ ...tinyConfig(), dModel: 64, nHead: 2, intermediateSize: 256 });
    expect(() => optimizerFromSafetensors(other, bytes)).toThrow(/has shape \[32\] but the parameter has \[64\]/);
    model.dispose();
    other.dispose();
  });

  it("carrying a mixer state into a branch mixer needs the same seed", () => {
    const src = sources();
    const parent = mixerFor(src, { general: 1 }, { only: ["general"], seed: 7 });
    parent.nextBatch(4, { step: 0, tokens: 0, phase: "p", phaseStep: 0, phaseSteps: 1, phaseFraction: 0 });
    const same = mixerFor(src, { general: 0.5, code: 0.5 }, { seed: 7 });
    expect(carryMixerState(parent.getState(), same)).toEqual(["general"]);
    expect(same.stats().general.sequences).toBe(4);
    const other = mixerFor(src, { general: 0.5, code: 0.5 }, { seed: 8 });
    expect(carryMixerState(parent.getState(), other)).toEqual([]);
    expect(other.stats().general.sequences).toBe(0);
  });
});
