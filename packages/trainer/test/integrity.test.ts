import { createHash, randomBytes } from "node:crypto";
import { cpSync, mkdtempSync, readFileSync, rmSync, truncateSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { buildLrSchedule } from "@midtrain/schedulers";
import * as tf from "@tensorflow/tfjs-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  AdamW,
  branch,
  CheckpointCorruptError,
  CheckpointReadError,
  latestValidCheckpoint,
  loadCheckpoint,
  resume,
  startSft,
  trainPhase,
  verifyCheckpoint,
} from "../src/index.js";
import { FsStorage } from "../src/node.js";
import { sha256Hex, sha256Js } from "../src/sha256.js";
import { cpu, mixerFor, sources, tinyModel } from "./helpers.js";

const src = sources();
const mixer = () => mixerFor(src, { general: 1 }, { only: ["general"] });
let dir: string;
let pristine: string;

beforeAll(async () => {
  await cpu();
  dir = mkdtempSync(join(tmpdir(), "midtrain-integrity-"));
  pristine = join(dir, "pristine");
  const model = tinyModel();
  await trainPhase({
    model,
    mixer: mixer(),
    optimizer: new AdamW(),
    lr: buildLrSchedule({ type: "constant", value: 1e-3 }),
    phase: { name: "pretrain", steps: 4, batchSize: 2 },
    checkpoint: { storage: new FsStorage(pristine), every: 2 },
  });
  model.dispose();
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** A copy of the pristine run folder. */
function copy(name: string): { root: string; storage: FsStorage } {
  const root = join(dir, name);
  cpSync(pristine, root, { recursive: true });
  return { root, storage: new FsStorage(root) };
}

/** Flips the low bit of a few bytes of a file. */
function flip(path: string, at: number[]): void {
  const b = readFileSync(path);
  for (const i of at) b[i < 0 ? b.length + i : i] ^= 1;
  writeFileSync(path, b);
}

describe("SHA-256", () => {
  it("the WebCrypto digest and the JavaScript fallback both equal node:crypto's, at every padding boundary", async () => {
    for (const n of [0, 1, 55, 56, 63, 64, 65, 119, 120, 128, 1000, 70_001]) {
      const data = new Uint8Array(randomBytes(n));
      const want = createHash("sha256").update(data).digest("hex");
      expect(Buffer.from(sha256Js(data)).toString("hex")).toBe(want);
      expect(await sha256Hex(data)).toBe(want);
    }
    const view = new Uint8Array(randomBytes(300)).subarray(7, 207); // an offset view
    expect(Buffer.from(sha256Js(view)).toString("hex")).toBe(createHash("sha256").update(view).digest("hex"));
  });
});

describe("checkpoint checksums", () => {
  it("checksums.json records the SHA-256 and size of every other file", async () => {
    const manifest = JSON.parse(readFileSync(join(pristine, "ckpt-4", "checksums.json"), "utf8"));
    expect(manifest).toMatchObject({ format: "midtrain-checksums", version: 1, algorithm: "SHA-256" });
    expect(Object.keys(manifest.files).sort()).toEqual(["config.json", "model.safetensors", "optimizer.safetensors", "trainer.json"]);
    for (const [file, { sha256, bytes }] of Object.entries(manifest.files) as [string, { sha256: string; bytes: number }][]) {
      const data = readFileSync(join(pristine, "ckpt-4", file));
      expect(bytes).toBe(data.length);
      expect(sha256).toBe(createHash("sha256").update(data).digest("hex"));
    }
    expect(await verifyCheckpoint(new FsStorage(pristine), "ckpt-4")).toBe(true);
  });

  for (const [file, at] of [
    ["model.safetensors", [-100, -99, -40]],
    ["optimizer.safetensors", [-8, -7, -6, -5]],
    ["trainer.json", [20, 21]],
  ] as const) {
    it(`a few flipped bytes in ${file}: loading names the file, resume falls back to the previous checkpoint, branch and SFT refuse`, async () => {
      const { root, storage } = copy(`flip-${file}`);
      flip(join(root, "ckpt-4", file), [...at]);
      const tensors = tf.memory().numTensors;
      const err = await loadCheckpoint(storage, "ckpt-4").catch((e) => e);
      expect(err).toBeInstanceOf(CheckpointCorruptError);
      expect(err).toBeInstanceOf(CheckpointReadError);
      expect(err).toMatchObject({ checkpoint: "ckpt-4", file, location: root });
      expect(err.message).toContain(`checkpoint 'ckpt-4' in ${root} is corrupt: ${file} does not match the checksum`);
      expect(err.message).toContain(`Delete ${join(root, "ckpt-4")}`);
      expect(tf.memory().numTensors).toBe(tensors); // refused before building anything

      expect(await latestValidCheckpoint(storage)).toEqual({ id: "ckpt-2", skipped: [{ id: "ckpt-4", file, error: err.message }] });
      const m = mixer();
      const r = await resume({ storage, mixer: m });
      expect(r.fromCheckpoint).toBe("ckpt-2");
      expect(r.time.step).toBe(2);
      expect(r.skipped).toEqual([{ id: "ckpt-4", file, error: err.message }]);
      r.model.dispose();
      r.optimizer.dispose();

      await expect(resume({ storage, checkpoint: "ckpt-4", mixer: mixer() })).rejects.toBeInstanceOf(CheckpointCorruptError);
      await expect(branch({ storage, checkpoint: "ckpt-4", mixer: mixer() })).rejects.toMatchObject({ name: "CheckpointCorruptError", file });
      await expect(startSft({ storage, checkpoint: "ckpt-4" })).rejects.toMatchObject({ name: "CheckpointCorruptError", file });
      expect(tf.memory().numTensors).toBe(tensors);
    });
  }

  it("a truncated file, an edited checksums.json, and a run whose every checkpoint is corrupt", async () => {
    const { root, storage } = copy("truncated");
    const size = readFileSync(join(root, "ckpt-4", "model.safetensors")).length;
    truncateSync(join(root, "ckpt-4", "model.safetensors"), size - 10);
    await expect(loadCheckpoint(storage, "ckpt-4")).rejects.toThrow(`model.safetensors has ${size - 10} bytes, but ${size} were written`);
    writeFileSync(join(root, "ckpt-2", "checksums.json"), "{ not json");
    const all = await latestValidCheckpoint(storage);
    expect(all.id).toBeUndefined();
    expect(all.skipped.map((s) => [s.id, s.file])).toEqual([
      ["ckpt-4", "model.safetensors"],
      ["ckpt-2", "checksums.json"],
    ]);
    const err = await resume({ storage, mixer: mixer() }).catch((e) => e);
    expect(err).toBeInstanceOf(CheckpointReadError);
    expect(err.message).toMatch(/no intact checkpoint in .*'ckpt-4' \(model.safetensors\), 'ckpt-2' \(checksums.json\)/);
  });

  it("checkpoints written before checksums existed still load", async () => {
    const { root, storage } = copy("legacy");
    rmSync(join(root, "ckpt-4", "checksums.json"));
    expect(await verifyCheckpoint(storage, "ckpt-4")).toBe(false);
    const loaded = await loadCheckpoint(storage, "ckpt-4");
    expect(loaded.state.step).toBe(4);
    loaded.model.dispose();
    loaded.optimizer!.dispose();
    const r = await resume({ storage, mixer: mixer() });
    expect(r.fromCheckpoint).toBe("ckpt-4");
    expect(r.skipped).toEqual([]);
    r.model.dispose();
    r.optimizer.dispose();
  });
});
