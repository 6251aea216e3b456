import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { buildLrSchedule } from "@midtrain/schedulers";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { AdamW, listCheckpoints, loadCheckpoint, MemorySink, teeSink, trainPhase } from "../src/index.js";
import { FsStorage, installSignalHandlers, JsonlSink, readJsonl } from "../src/node.js";
import { cpu, mixerFor, sources, tinyModel } from "./helpers.js";

let dir: string;
const enc = new TextEncoder();
const LR = { type: "constant", value: 1e-3 };

beforeAll(async () => {
  await cpu();
  dir = mkdtempSync(join(tmpdir(), "midtrain-trainer-"));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe("FsStorage", () => {
  it("writes a checkpoint folder atomically, lists, reads, replaces and deletes", async () => {
    const s = new FsStorage(join(dir, "a"));
    expect(await s.list()).toEqual([]); // missing folder: no checkpoints
    await s.write("ckpt-1", { "x.json": enc.encode("1"), "y.bin": new Uint8Array([1, 2]) });
    await s.write("ckpt-2", { "x.json": enc.encode("2") });
    expect((await s.list()).sort()).toEqual(["ckpt-1", "ckpt-2"]);
    expect(new TextDecoder().decode(await s.read("ckpt-1", "x.json"))).toBe("1");
    await s.write("ckpt-1", { "x.json": enc.encode("1b") }); // replace
    expect(readdirSync(join(dir, "a", "ckpt-1"))).toEqual(["x.json"]);
    expect(new TextDecoder().decode(await s.read("ckpt-1", "x.json"))).toBe("1b");
    await s.delete("ckpt-2");
    await s.delete("ckpt-2"); // absent: no error
    expect(await s.list()).toEqual(["ckpt-1"]);
    expect(readdirSync(join(dir, "a")).filter((n) => n.startsWith("."))).toEqual([]);
    await expect(s.read("../etc", "passwd")).rejects.toThrow(/plain name/);
  });

  it("a write failing half-way leaves no visible or temporary checkpoint and the previous one intact", async () => {
    const s = new FsStorage(join(dir, "b"));
    await s.write("ckpt-1", { "a.bin": new Uint8Array([7]) });
    // A file name over 255 bytes fails with ENAMETOOLONG after the first file was written.
    await expect(s.write("ckpt-2", { "a.bin": new Uint8Array([8]), ["n".repeat(300)]: new Uint8Array(1) })).rejects.toThrow(/ENAMETOOLONG/);
    expect(await s.list()).toEqual(["ckpt-1"]);
    expect(readdirSync(join(dir, "b"))).toEqual(["ckpt-1"]);
    expect(Array.from(await s.read("ckpt-1", "a.bin"))).toEqual([7]);
  });

  it("trainPhase reports a checkpoint folder it cannot write to and keeps training", async () => {
    const root = join(dir, "c");
    const storage = new FsStorage(root);
    const model = tinyModel();
    const mixer = mixerFor(sources(), { general: 1 }, { only: ["general"] });
    const optimizer = new AdamW();
    const first = await trainPhase({ model, mixer, optimizer, lr: buildLrSchedule(LR), phase: { name: "p", steps: 2, batchSize: 2 }, checkpoint: { storage } });
    expect(first.lastCheckpoint).toBe("ckpt-2");
    // Make the storage unusable: its folder becomes a file (what a full or read-only disk looks like to the trainer).
    rmSync(root, { recursive: true });
    writeFileSync(root, "not a folder");
    const sink = new MemorySink();
    const second = await trainPhase({
      model,
      mixer,
      optimizer,
      lr: buildLrSchedule(LR),
      time: first.time,
      phase: { name: "p", steps: 3, batchSize: 2 },
      checkpoint: { storage },
      metrics: sink,
    }).catch((e) => e);
    expect(second.checkpointErrors?.[0]).toMatch(/could not write checkpoint 'ckpt-3'.*(EEXIST|ENOTDIR)/);
    expect(sink.of("checkpoint-error")).toHaveLength(1);
    expect(sink.of("train").map((r) => r.step)).toEqual([3]);
    model.dispose();
  });

  it("round-trips a trainer checkpoint through the file system", async () => {
    const storage = new FsStorage(join(dir, "d"));
    const model = tinyModel();
    const optimizer = new AdamW();
    await trainPhase({
      model,
      mixer: mixerFor(sources(), { general: 1 }, { only: ["general"] }),
      optimizer,
      lr: buildLrSchedule(LR),
      phase: { name: "p", steps: 2, batchSize: 2 },
      checkpoint: { storage },
    });
    expect(readdirSync(join(dir, "d", "ckpt-2")).sort()).toEqual(["config.json", "model.safetensors", "optimizer.safetensors", "trainer.json"]);
    const loaded = await loadCheckpoint(storage);
    expect(loaded.id).toBe("ckpt-2");
    expect(loaded.optimizer!.step).toBe(2);
    expect((await listCheckpoints(storage)).map((c) => c.step)).toEqual([2]);
    loaded.model.dispose();
    model.dispose();
  });
});

describe("JsonlSink", () => {
  it("appends one JSON object per line, NaN as null", async () => {
    const path = join(dir, "logs", "m.jsonl");
    const sink = new JsonlSink(path);
    const mem = new MemorySink();
    const tee = teeSink(sink, mem);
    await tee.write({ type: "skip", phase: "p", step: 1, loss: Number.NaN as unknown as null, gradNorm: 2, reason: "loss is NaN", inARow: 1 });
    await tee.write({ type: "stop", phase: "p", step: 1, reason: "completed", lastCheckpoint: null });
    await tee.close?.();
    const recs = await readJsonl(path);
    expect(recs).toEqual([
      { type: "skip", phase: "p", step: 1, loss: null, gradNorm: 2, reason: "loss is NaN", inARow: 1 },
      { type: "stop", phase: "p", step: 1, reason: "completed", lastCheckpoint: null },
    ]);
    expect(mem.records).toHaveLength(2);
  });
});

describe("installSignalHandlers", () => {
  it("aborts its signal on SIGTERM and removes its listeners on dispose", () => {
    const before = process.listenerCount("SIGTERM");
    const seen: string[] = [];
    const h = installSignalHandlers({ onSignal: (s) => seen.push(s) });
    expect(process.listenerCount("SIGTERM")).toBe(before + 1);
    expect(h.signal.aborted).toBe(false);
    process.emit("SIGTERM", "SIGTERM");
    expect(h.signal.aborted).toBe(true);
    expect(h.received()).toBe("SIGTERM");
    expect(seen).toEqual(["SIGTERM"]);
    h.dispose();
    expect(process.listenerCount("SIGTERM")).toBe(before);
    expect(existsSync(dir)).toBe(true);
  });
});

describe("FsStorage.cleanTemporary", () => {
  it("removes folders a killed writer left behind, and only those", async () => {
    const root = join(dir, "e");
    const s = new FsStorage(root);
    await s.write("ckpt-1", { a: new Uint8Array(1) });
    for (const n of [".tmp-ckpt-2-123-abcd", ".old-ckpt-1-1-ff", ".del-ckpt-0-1-ee"]) {
      mkdirSync(join(root, n));
      writeFileSync(join(root, n, "model.safetensors"), "partial");
    }
    expect(await s.list()).toEqual(["ckpt-1"]); // temporaries are never listed
    expect((await s.cleanTemporary()).sort()).toEqual([".del-ckpt-0-1-ee", ".old-ckpt-1-1-ff", ".tmp-ckpt-2-123-abcd"]);
    expect(readdirSync(root)).toEqual(["ckpt-1"]);
  });
});
