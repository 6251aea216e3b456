import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { buildLrSchedule } from "@midtrain/schedulers";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { AdamW, CheckpointWriteError, listCheckpoints, loadCheckpoint, MemorySink, teeSink, trainPhase } from "../src/index.js";
import { FsStorage, installSignalHandlers, JsonlSink, MetricsFileError, readJsonl, type TornTail } from "../src/node.js";
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

  it("trainPhase fails with CheckpointWriteError on a checkpoint folder it cannot write to, after reporting it", async () => {
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
    expect(second).toBeInstanceOf(CheckpointWriteError);
    expect(second.message).toMatch(/could not write checkpoint 'ckpt-3'.*(EEXIST|ENOTDIR)/);
    expect(sink.of("checkpoint-error")).toHaveLength(1);
    expect(sink.of("train").map((r) => r.step)).toEqual([3]);
    expect(sink.of("stop")).toEqual([]);
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
    expect(readdirSync(join(dir, "d", "ckpt-2")).sort()).toEqual([
      "checksums.json",
      "config.json",
      "model.safetensors",
      "optimizer.safetensors",
      "trainer.json",
    ]);
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

/** The pid of a process that has exited. */
function deadPid(): number {
  const r = spawnSync(process.execPath, ["-e", ""]);
  return r.pid!;
}

describe("FsStorage.cleanTemporary", () => {
  it("removes what dead writers left, moves back a checkpoint a writer had moved aside, and leaves live writers alone", async () => {
    const root = join(dir, "e");
    const s = new FsStorage(root);
    expect(await s.cleanTemporary()).toEqual([]); // no folder yet: nothing to do
    await s.write("ckpt-1", { a: new Uint8Array(1) });
    const dead = deadPid();
    const live = process.ppid; // the test runner: alive
    const leftovers = [`.tmp-ckpt-2-${dead}-abcd`, `.old-ckpt-1-${dead}-ff`, `.del-ckpt-0-${dead}-ee`, `.old-ckpt-3-${dead}-aa`, `.tmp-ckpt-4-${live}-bb`];
    for (const n of leftovers) {
      mkdirSync(join(root, n));
      writeFileSync(join(root, n, "model.safetensors"), n);
    }
    expect(await s.list()).toEqual(["ckpt-1"]); // temporaries are never listed
    expect((await s.cleanTemporary()).sort()).toEqual(leftovers.slice(0, 4).sort());
    // ckpt-3 had been moved aside by a writer that died before moving its replacement in: it is back.
    expect(readdirSync(root).sort()).toEqual([`.tmp-ckpt-4-${live}-bb`, "ckpt-1", "ckpt-3"]);
    expect(readFileSync(join(root, "ckpt-3", "model.safetensors"), "utf8")).toBe(`.old-ckpt-3-${dead}-aa`);
    expect(await s.cleanTemporary()).toEqual([]);
  });

  it("trainPhase cleans the checkpoint folder once at the start of a phase", async () => {
    const root = join(dir, "f");
    class Counting extends FsStorage {
      calls = 0;
      override async cleanTemporary(): Promise<string[]> {
        this.calls++;
        return super.cleanTemporary();
      }
    }
    const storage = new Counting(root);
    const stale = `.tmp-ckpt-8-${deadPid()}-abcd`;
    mkdirSync(join(root, stale), { recursive: true });
    writeFileSync(join(root, stale, "model.safetensors"), "partial");
    const model = tinyModel();
    const summary = await trainPhase({
      model,
      mixer: mixerFor(sources(), { general: 1 }, { only: ["general"] }),
      optimizer: new AdamW(),
      lr: buildLrSchedule(LR),
      phase: { name: "p", steps: 3, batchSize: 2 },
      checkpoint: { storage, every: 1 },
    });
    expect(summary.checkpoints).toEqual(["ckpt-1", "ckpt-2", "ckpt-3"]);
    expect(storage.calls).toBe(1);
    expect(readdirSync(root).sort()).toEqual(["ckpt-1", "ckpt-2", "ckpt-3"]);
    model.dispose();
  });
});

describe("torn metrics lines", () => {
  const rec = (step: number) => ({ type: "stop" as const, phase: "p", step, reason: "completed" as const, lastCheckpoint: null });
  const line = (step: number) => `${JSON.stringify(rec(step))}\n`;

  it("JsonlSink cuts a torn last line off before appending, and says what it dropped", async () => {
    const path = join(dir, "torn", "metrics.jsonl");
    mkdirSync(join(dir, "torn"), { recursive: true });
    const torn = '{"type":"train","phase":"p","st';
    writeFileSync(path, line(1) + line(2) + torn);
    const sink = new JsonlSink(path);
    await sink.write(rec(3));
    await sink.close();
    expect(sink.repairedTail).toEqual({ path, line: 3, bytes: torn.length });
    expect(readFileSync(path, "utf8")).toBe(line(1) + line(2) + line(3));
    expect(await readJsonl(path)).toEqual([rec(1), rec(2), rec(3)]);
    // A whole file of one torn line, and a complete last line that only lacks its newline.
    writeFileSync(path, torn);
    const a = new JsonlSink(path);
    await a.write(rec(4));
    await a.close();
    expect(a.repairedTail).toEqual({ path, line: 1, bytes: torn.length });
    expect(readFileSync(path, "utf8")).toBe(line(4));
    writeFileSync(path, line(1) + JSON.stringify(rec(2)));
    const b = new JsonlSink(path);
    await b.write(rec(3));
    await b.close();
    expect(b.repairedTail).toBeUndefined();
    expect(await readJsonl(path)).toEqual([rec(1), rec(2), rec(3)]);
  });

  it("readJsonl returns the complete records of a file with a torn last line and reports the tail; a bad line elsewhere names file and line", async () => {
    const path = join(dir, "torn", "read.jsonl");
    writeFileSync(path, `${line(1)}${line(2)}{"type":"tra`);
    const tails: TornTail[] = [];
    expect(await readJsonl(path, { onTornTail: (t) => tails.push(t) })).toEqual([rec(1), rec(2)]);
    expect(tails).toEqual([{ path, line: 3, bytes: 12 }]);
    expect(await readJsonl(path)).toEqual([rec(1), rec(2)]);
    // What the old sink produced: a resumed run appended onto the torn line.
    writeFileSync(path, `${line(1)}{"type":"tra${line(2)}${line(3)}`);
    const err = await readJsonl(path).catch((e) => e);
    expect(err).toBeInstanceOf(MetricsFileError);
    expect(err.line).toBe(2);
    expect(err.message).toContain(`${path}:2: not valid JSON`);
    // A complete but malformed last line (it has its newline) is an error too.
    writeFileSync(path, `${line(1)}not json\n`);
    await expect(readJsonl(path)).rejects.toThrow(/read\.jsonl:2: not valid JSON/);
  });
});
