import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { describe, expect, it, vi } from "vitest";
import * as api from "../src/index.js";
import * as nodeApi from "../src/node.js";

const readme = readFileSync(join(import.meta.dirname, "..", "README.md"), "utf8");

describe("README", () => {
  it("documents every value the entries export (`@midtrain/data` and `/node`)", () => {
    const apiSection = readme.split("\n## API")[1]?.split("\n## ")[0] ?? "";
    const names = [...Object.keys(api), ...Object.keys(nodeApi)];
    expect(names).toContain("createMixer");
    expect(names).toContain("loadCorpusSource");
    expect(names.filter((n) => !apiSection.includes(`\`${n}`))).toEqual([]);
  });

  it("`@midtrain/data/node` holds only the Node-only additions, as the README says", () => {
    expect(readme).toContain("it does not repeat the\n  core");
    expect(Object.keys(nodeApi).filter((n) => n in api)).toEqual([]);
  });

  it("the example runs and does what its comments say", async () => {
    const code = /```js\n([\s\S]*?)```/.exec(readme)![1];
    const dir = mkdtempSync(join(tmpdir(), "data-readme-"));
    const file = join(dir, "example.mjs");
    // The example's own variables, exported so the test can check its claims.
    writeFileSync(file, `${code}\nexport { batch, code, general, mixer, saved, time };\n`);
    const logged: unknown[] = [];
    const spy = vi.spyOn(console, "log").mockImplementation((x: unknown) => void logged.push(x));
    let ex: Record<string, any>;
    try {
      ex = await import(pathToFileURL(file).href);
    } finally {
      spy.mockRestore();
      rmSync(dir, { recursive: true, force: true });
    }
    const { batch, mixer, saved, time, general, code: codeSource } = ex;
    expect(batch.inputs).toBeInstanceOf(Int32Array);
    expect(batch.inputs.length).toBe(32 * 128);
    expect(batch.mask).toBeInstanceOf(Float32Array);
    expect(new Set(batch.sources)).toEqual(new Set(["general"])); // only general before step 300
    expect(Object.keys(logged[0] as object).sort()).toEqual(["code", "general"]);
    // A mixer rebuilt from the same sources continues exactly where the saved state was.
    const { createMixer } = api;
    const { buildMixtureSchedule } = await import("@midtrain/schedulers");
    const rebuild = () =>
      createMixer({
        sources: { general: general.train, code: codeSource.train },
        validation: { general: general.valid, code: codeSource.valid },
        schedule: buildMixtureSchedule({ type: "midtraining", general: "general", specialized: "code", weight: 0.2, start: 300 }),
        seed: 1234,
        maxEpochs: 10,
      });
    const resumed = rebuild();
    resumed.setState(JSON.parse(saved));
    const later = { ...time, step: 400, phaseStep: 400, phaseFraction: 0.4 };
    const [a, b] = [mixer.nextBatch(32, later), resumed.nextBatch(32, later)];
    expect(b.sources).toEqual(a.sources);
    expect(Array.from(b.inputs)).toEqual(Array.from(a.inputs));
    expect(a.sources).toContain("code"); // 20% code after step 300
  });
});
