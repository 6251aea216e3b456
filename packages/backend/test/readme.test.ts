import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { describe, expect, it, vi } from "vitest";
import * as api from "../src/index.js";

const readme = readFileSync(join(import.meta.dirname, "..", "README.md"), "utf8");

describe("README", () => {
  it("documents every value the entry exports", () => {
    const apiSection = readme.split("\n## API")[1]?.split("\n## ")[0] ?? "";
    const names = Object.keys(api);
    expect(names).toContain("initBackend");
    expect(names.filter((n) => !apiSection.includes(`\`${n}`))).toEqual([]);
  });

  it("the example runs and prints what it claims (automatic mode, MIDTRAIN_BACKEND=cpu)", async () => {
    const code = /```ts\n([\s\S]*?)```/.exec(readme)![1];
    const dir = mkdtempSync(join(tmpdir(), "backend-readme-"));
    const file = join(dir, "example.ts");
    writeFileSync(file, code);
    const lines: unknown[][] = [];
    const spy = vi.spyOn(console, "log").mockImplementation((...a: unknown[]) => void lines.push(a));
    const saved = process.env.MIDTRAIN_BACKEND;
    process.env.MIDTRAIN_BACKEND = "cpu";
    const { tf } = await api.initBackend({ prefer: "cpu" });
    const before = tf.memory().numTensors;
    try {
      await import(pathToFileURL(file).href);
    } finally {
      spy.mockRestore();
      if (saved === undefined) delete process.env.MIDTRAIN_BACKEND;
      else process.env.MIDTRAIN_BACKEND = saved;
      rmSync(dir, { recursive: true, force: true });
    }
    expect(lines[0]).toEqual(["cpu", "plain JavaScript (tfjs-backend-cpu)", true]);
    expect(Array.from(lines[1][0] as Float32Array)).toEqual(new Array(8).fill(3));
    expect(tf.memory().numTensors).toBe(before);
  });
});
