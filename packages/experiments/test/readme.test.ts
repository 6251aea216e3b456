import { readFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { afterEach, describe, expect, it, vi } from "vitest";
import type { ExperimentConfig } from "../src/config.js";
import type { RunEnv } from "../src/env.js";
import * as api from "../src/index.js";
import * as nodeApi from "../src/node.js";
import * as queueApi from "../src/queue.js";
import { planExperiment } from "../src/plan.js";
import type { RunOptions } from "../src/runner.js";
import { sampleResults } from "./helpers/sample-results.js";

const pkg = join(import.meta.dirname, "..");
const readme = readFileSync(join(pkg, "README.md"), "utf8");

// The example's training is the smoke test's (test/smoke.test.ts runs the same shrunken study);
// here the training, the backend and the file writing are replaced so that the rest of the
// example (config parsing, planning, the table) runs as written.
const calls = vi.hoisted(() => ({ run: [] as unknown[][], report: [] as unknown[][], backend: [] as unknown[] }));
vi.mock("@midtrain/backend", () => ({ initBackend: async (o: unknown) => void calls.backend.push(o) }));
vi.mock("@midtrain/experiments", async (importOriginal) => ({
  ...(await importOriginal<typeof import("../src/index.js")>()),
  runExperiment: async (...args: unknown[]) => {
    calls.run.push(args);
    return sampleResults();
  },
}));
vi.mock("@midtrain/experiments/node", async (importOriginal) => ({
  ...(await importOriginal<typeof import("../src/node.js")>()),
  writeReport: async (...args: unknown[]) => void calls.report.push(args),
}));

afterEach(() => {
  vi.restoreAllMocks();
});

describe("README", () => {
  it("shows test/readme-example.ts verbatim (type-checked by `tsc -p .`), and its config parses and plans", async () => {
    const block = /```ts\n([\s\S]*?)```/.exec(readme)?.[1];
    expect(block).toBe(readFileSync(join(pkg, "test/readme-example.ts"), "utf8"));
    const lines: string[] = [];
    vi.spyOn(console, "log").mockImplementation((...a: unknown[]) => void lines.push(a.join(" ")));
    await import("./readme-example.js");
    expect(calls.backend).toEqual([{ prefer: "wasm" }]);
    expect(calls.run).toHaveLength(1);
    const [config, options] = calls.run[0] as [ExperimentConfig, RunOptions];
    const plan = planExperiment(config);
    // The baseline is added to the one midtraining branch; it starts at half of the 12 steps.
    expect(plan.branches.map((b) => [b.name, b.kind, b.startStep])).toEqual([
      ["baseline", "baseline", 12],
      ["mid", "midtrain", 6],
    ]);
    expect(plan.sftRuns).toHaveLength(2 * 2); // 2 branches × 1 domain × 1 seed × 2 LRs
    expect((options.env as RunEnv).storage("a/checkpoints").location).toBe(resolve("runs/tiny/a/checkpoints")); // a nodeEnv on runs/tiny
    expect(lines[0]).toContain("mid");
    expect(lines[1]).toContain("baseline"); // the results table
    expect(calls.report).toEqual([["runs/tiny", sampleResults()]]);
  });

  it("documents every value the entries export (`@midtrain/experiments`, `/node` and `/queue`)", () => {
    const apiSection = readme.split("## API")[1] ?? "";
    const names = [...Object.keys(api), ...Object.keys(nodeApi), ...Object.keys(queueApi)];
    expect(names).toContain("runExperiment");
    expect(names.filter((n) => !apiSection.includes(`\`${n}`))).toEqual([]);
  });
});
