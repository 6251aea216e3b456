import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { bundleSources } from "../../../test-utils/bundle-sources.js";
import * as lib from "../src/index.js";
import { drawSteps, makeMixer } from "./fixtures/mixer-fixture.mjs";

const pkg = resolve(import.meta.dirname, "..");
let dir: string;
let bundle: string;

beforeAll(async () => {
  // Bundle the current sources (not a possibly stale dist/) into one ESM file for the child process.
  dir = mkdtempSync(join(tmpdir(), "midtrain-resume-"));
  await bundleSources({ index: join(pkg, "src/index.ts") }, dir);
  bundle = join(dir, "index.js");
});

afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe("resume in a fresh process", () => {
  it("a new Node process restoring the saved state yields the same next 1,000 sequences, across the mixture switch", () => {
    const m = makeMixer(lib);
    drawSteps(m, 0, 20); // 200 sequences before the save; the switch happens at step 50
    const statePath = join(dir, "state.json");
    writeFileSync(statePath, JSON.stringify(m.getState()));
    const expected = drawSteps(m, 20, 100); // the next 1,000 sequences in this process
    const outPath = join(dir, "out.json");
    execFileSync(process.execPath, [join(pkg, "test/fixtures/fresh-resume.mjs"), bundle, statePath, outPath, "20", "100"], {
      stdio: "pipe",
      timeout: 60_000,
    });
    const child = JSON.parse(readFileSync(outPath, "utf8"));
    expect(child.pid).not.toBe(process.pid);
    expect(child.drawn.length).toBe(100);
    expect(child.drawn.flatMap((b: { sources: string[] }) => b.sources).length).toBe(1000);
    // Both phases of the schedule are in the compared window.
    expect(new Set(child.drawn.slice(0, 30).flatMap((b: { sources: string[] }) => b.sources))).toEqual(new Set(["general"]));
    expect(new Set(child.drawn.slice(30).flatMap((b: { sources: string[] }) => b.sources))).toEqual(new Set(["general", "code", "qa"]));
    expect(child.drawn).toEqual(expected);
    expect(child.stats).toEqual(m.stats());
  });

  it("a child restoring a different state diverges (the comparison can fail)", () => {
    const m = makeMixer(lib);
    drawSteps(m, 0, 21); // one batch further than the saved state below claims
    const statePath = join(dir, "state2.json");
    const other = makeMixer(lib);
    drawSteps(other, 0, 20);
    writeFileSync(statePath, JSON.stringify(other.getState()));
    const outPath = join(dir, "out2.json");
    execFileSync(process.execPath, [join(pkg, "test/fixtures/fresh-resume.mjs"), bundle, statePath, outPath, "21", "5"], { stdio: "pipe" });
    const child = JSON.parse(readFileSync(outPath, "utf8"));
    expect(child.drawn).not.toEqual(drawSteps(m, 21, 5));
  });
});
