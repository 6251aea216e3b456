/**
 * A schedule plugin from a package outside the workspace, named in a YAML config, drives the
 * pretraining LR and a branch's mixture through the CLI (with forked workers): the LR curve
 * and the branch's draws in metrics.jsonl follow the plugin's formulas. A typo in a plugin
 * type or parameter fails at `midtrain plan`, with the config path.
 */
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ensureCliBuilt, runCli } from "./helpers/cli-process.js";

// A plugin as a third party would publish it: plain ESM, no dependency on midtrain at run time.
const PLUGIN = `
const stairs = {
  kind: "lr",
  type: "stairs",
  description: "base * (1 + floor(step / every))",
  params: {
    base: { type: "number > 0", description: "first value", required: true },
    every: { type: "integer > 0", description: "steps per stair", required: true },
    unit: { type: "string", description: "axis", default: "steps" },
    total: { type: "number", description: "unused" },
  },
  build(p) {
    const base = p.number("base", { above: 0 });
    const every = p.number("every", { above: 0 });
    return (t) => base * (1 + Math.floor(t.step / every));
  },
};
const alternate = {
  kind: "mixture",
  type: "alternate",
  description: "all of a on even steps, all of b on odd steps",
  params: {
    a: { type: "string", description: "even steps", required: true },
    b: { type: "string", description: "odd steps", required: true },
    unit: { type: "string", description: "axis", default: "steps" },
    total: { type: "number", description: "unused" },
  },
  build(p) {
    const a = p.source("a");
    const b = p.source("b");
    return { sources: [a, b], at: (t) => (t.step % 2 === 0 ? { [a]: 1, [b]: 0 } : { [a]: 0, [b]: 1 }) };
  },
};
export default { name: "midtrain-test-stairs", types: [stairs, alternate] };
`;

const config = (lr: string, mixture: string) => `
name: plugin-run
plugins: [midtrain-test-stairs]
backend: cpu
model: { preset: tiny-1m, overrides: { dModel: 16, nLayer: 1, nHead: 2, seqLen: 64 } }
data:
  seqLen: 16
  general: general
  maxValidationSequences: 4
  sources:
    general: { corpus: general, maxDocuments: 20 }
    code: { corpus: code, maxDocuments: 20 }
  sft:
    code: { corpus: sft-code, maxDocuments: 20 }
pretrain:
  steps: 12
  batchSize: 4
  lr: ${lr}
branches:
  - { name: alt, kind: midtrain, start: 0.5, mixture: ${mixture} }
sft: { domains: [code], steps: 2, batchSize: 2, seqLen: 64, lrGrid: [0.001], seeds: [1] }
`;

let dir: string;
beforeAll(() => {
  ensureCliBuilt();
  dir = mkdtempSync(join(tmpdir(), "midtrain-plugin-"));
  const pkg = join(dir, "node_modules/midtrain-test-stairs");
  mkdirSync(pkg, { recursive: true });
  writeFileSync(join(pkg, "package.json"), JSON.stringify({ name: "midtrain-test-stairs", version: "1.0.0", type: "module", main: "index.js" }));
  writeFileSync(join(pkg, "index.js"), PLUGIN);
}, 300_000);
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const records = (path: string) =>
  readFileSync(path, "utf8")
    .split("\n")
    .filter(Boolean)
    .map((l) => JSON.parse(l));

describe("schedule plugins in an experiment", () => {
  it("drive the pretraining LR and a branch mixture from a YAML config through the CLI", async () => {
    const cfg = join(dir, "plugin.yaml");
    writeFileSync(cfg, config("{ type: stairs, base: 0.001, every: 4 }", "{ type: alternate, a: general, b: code }"));
    const plan = await runCli(["plan", cfg]);
    expect(plan.code).toBe(0);
    expect(plan.stdout).toMatch(/alt: midtrain mixture 'alternate' from step 6/);
    const out = join(dir, "out");
    const run = await runCli(["run", cfg, "--out", out, "--jobs", "2"]);
    expect(run.stderr).not.toMatch(/Error/);
    expect(run.code).toBe(0);
    const trunk = records(join(out, "p1/trunk/metrics.jsonl")).filter((r) => r.type === "train");
    expect(trunk.map((r) => r.step)).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]);
    // The LR of the update to step s is the schedule at the time before it (step s - 1).
    for (const r of trunk) expect(r.lr).toBeCloseTo(0.001 * (1 + Math.floor((r.step - 1) / 4)), 12);
    const branch = records(join(out, "p1/branches/alt/metrics.jsonl")).filter((r) => r.type === "train");
    expect(branch.map((r) => r.step)).toEqual([7, 8, 9, 10, 11, 12]);
    for (const r of branch) {
      const drawnAt = r.step - 1;
      const only = drawnAt % 2 === 0 ? "general" : "code";
      expect(Object.keys(r.stepTokensBySource)).toEqual([only]);
      // The LR schedule continues from the trunk (global steps).
      expect(r.lr).toBeCloseTo(0.001 * (1 + Math.floor(drawnAt / 4)), 12);
    }
  });

  it("a plugin given as a path resolves against the config's folder; a missing path is refused with the field", async () => {
    const sub = join(dir, "configs");
    mkdirSync(sub, { recursive: true });
    writeFileSync(join(sub, "my-schedules.mjs"), PLUGIN);
    const local = join(sub, "local.yaml");
    writeFileSync(
      local,
      config("{ type: stairs, base: 0.001, every: 4 }", "{ type: alternate, a: general, b: code }").replace("[midtrain-test-stairs]", "[./my-schedules.mjs]"),
    );
    const ok = await runCli(["plan", local]);
    expect(ok.code).toBe(0);
    expect(ok.stdout).toMatch(/alt: midtrain mixture 'alternate'/);
    const gone = join(sub, "gone.yaml");
    writeFileSync(
      gone,
      config("{ type: stairs, base: 0.001, every: 4 }", "{ type: alternate, a: general, b: code }").replace("[midtrain-test-stairs]", "[./nope.mjs]"),
    );
    const bad = await runCli(["plan", gone]);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toMatch(/plugins\[0\]: .*configs\/nope\.mjs does not exist/);
  });

  it("a typo in a plugin type or a bad plugin parameter fails at plan time with the config path", async () => {
    const typo = join(dir, "typo.yaml");
    writeFileSync(typo, config("{ type: stair, base: 0.001, every: 4 }", "{ type: alternate, a: general, b: code }"));
    const t = await runCli(["plan", typo]);
    expect(t.code).toBe(1);
    expect(t.stderr).toMatch(/pretrain\.lr\.type: .*'stair'.*did you mean 'stairs'/);
    const bad = join(dir, "bad.yaml");
    writeFileSync(bad, config("{ type: stairs, base: 0.001, every: 4 }", "{ type: alternate, a: general, b: cdoe }"));
    const b = await runCli(["plan", bad]);
    expect(b.code).toBe(1);
    expect(b.stderr).toMatch(/branches\[0\]\.mixture\.b: .*cdoe/);
    const missing = join(dir, "missing.yaml");
    writeFileSync(
      missing,
      config("{ type: stairs, base: 0.001, every: 4 }", "{ type: alternate, a: general, b: code }").replace("midtrain-test-stairs", "midtrain-no-such-plugin"),
    );
    const m = await runCli(["plan", missing]);
    expect(m.code).toBe(1);
    expect(m.stderr).toMatch(/could not import schedule plugin 'midtrain-no-such-plugin'/);
  });
});
