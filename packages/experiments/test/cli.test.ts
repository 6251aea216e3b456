import { readFileSync } from "node:fs";
import { mkdtemp, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { afterEach, describe, expect, it, vi } from "vitest";
import { main } from "../src/cli.js";

const micro = resolve(import.meta.dirname, "../../../examples/micro-study/micro-study.yaml");

describe("midtrain CLI", () => {
  afterEach(() => vi.restoreAllMocks());
  it("plan prints the derived branches of the micro study", async () => {
    const log = vi.spyOn(console, "log").mockImplementation(() => {});
    await main(["node", "midtrain", "plan", micro]);
    const out = log.mock.calls.map((c) => c.join(" ")).join("\n");
    expect(out).toMatch(/experiment micro-study: 3 pretraining seed\(s\), 4 branches/);
    expect(out).toMatch(/midtrain-code-20: midtrain code 20% from step 300 \(30%\), 700 steps/);
    expect(out).toMatch(/cpt-code: cpt code 100% from step 800/);
  });
  it("run with a bad config fails before training, naming the field", async () => {
    const dir = await mkdtemp(join(tmpdir(), "midtrain-cli-"));
    const bad = join(dir, "bad.yaml");
    await writeFile(
      bad,
      "name: bad\nmodel: { preset: tiny-1m }\ndata: { seqLen: 16, general: g, sources: { g: { corpus: general } } }\npretrain: { steps: 0, batchSize: 2, lr: { type: constant, value: 0.001 } }\n",
    );
    await expect(main(["node", "midtrain", "run", bad, "--out", join(dir, "out")])).rejects.toThrow(/pretrain\.steps/);
  });
  it("--version prints the package's version", async () => {
    const out = vi.spyOn(process.stdout, "write").mockImplementation(() => true);
    const exit = vi.spyOn(process, "exit").mockImplementation(((code: number) => {
      throw new Error(`exit ${code}`);
    }) as never);
    await expect(main(["node", "midtrain", "--version"])).rejects.toThrow(/exit 0/);
    const { version } = JSON.parse(readFileSync(resolve(import.meta.dirname, "../package.json"), "utf8"));
    expect(out.mock.calls.join("")).toBe(`${version}\n`);
    exit.mockRestore();
  });
  it("rejects an unknown backend name", async () => {
    const err = vi.spyOn(process.stderr, "write").mockImplementation(() => true);
    const exit = vi.spyOn(process, "exit").mockImplementation(((code: number) => {
      throw new Error(`exit ${code}`);
    }) as never);
    await expect(main(["node", "midtrain", "run", micro, "--backend", "tpu"])).rejects.toThrow(/exit 1/);
    expect(err.mock.calls.join("")).toMatch(/Allowed choices are auto, cuda, webgpu, wasm, cpu/);
    exit.mockRestore();
  });
});
