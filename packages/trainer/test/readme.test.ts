import { readFileSync } from "node:fs";
import { join } from "node:path";
import { afterEach, describe, expect, it, vi } from "vitest";
import * as api from "../src/index.js";
import * as nodeApi from "../src/node.js";

const pkg = join(import.meta.dirname, "..");

afterEach(() => {
  vi.restoreAllMocks();
});

describe("README", () => {
  it("documents every value the entries export (`@midtrain/trainer` and `/node`)", () => {
    const apiSection = readFileSync(join(pkg, "README.md"), "utf8").split("## API")[1] ?? "";
    const names = [...Object.keys(api), ...Object.keys(nodeApi)];
    expect(names).toContain("trainPhase");
    expect(names.filter((n) => !apiSection.includes(`\`${n}`))).toEqual([]);
  });

  it("shows test/readme-example.ts verbatim (so `tsc -p .` type-checks the README's example), and that example runs", async () => {
    const readme = readFileSync(join(pkg, "README.md"), "utf8");
    const block = /## Example[\s\S]*?```ts\n([\s\S]*?)```/.exec(readme)?.[1];
    expect(block).toBe(readFileSync(join(pkg, "test/readme-example.ts"), "utf8"));
    const lines: string[] = [];
    vi.spyOn(console, "log").mockImplementation((...a: unknown[]) => void lines.push(a.join(" ")));
    await import("./readme-example.js");
    // The printer callback: every 10th step of each phase.
    const printed = lines.filter((l) => / step \d+: loss \d+\.\d{3}, \d+ tok\/s$/.test(l)).map((l) => l.split(":")[0]);
    expect(printed).toEqual(["pretrain step 10", "pretrain step 20", "pretrain step 30", "pretrain step 40", "midtrain step 30", "midtrain step 40"]);
    const sft = /^after SFT: sft loss (\d+\.\d+), general loss (\d+\.\d+)$/.exec(lines.find((l) => l.startsWith("after SFT")) ?? "");
    expect(sft).not.toBeNull();
    expect(Number(sft![1])).toBeLessThan(Math.log(258)); // learned something: below a uniform guess over bytes
    expect(lines.at(-1)).toBe("pretrain completed at 40; resumed from ckpt-40, now at step 40");
  }, 300_000);
});
