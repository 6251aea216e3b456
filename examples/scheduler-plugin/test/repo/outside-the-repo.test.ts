/**
 * The template works outside the midtrain repository: this folder is copied to a temporary
 * directory (without node_modules, dist and this test/repo/ folder), `@midtrain/schedulers` is
 * installed there with npm from its packed tarball (the stand-in for the registry; its
 * `@midtrain/common` dependency comes from a tarball too, through npm `overrides`), and the copy's
 * own scripts build it (JavaScript and declarations), type-check, lint and test it. The built
 * ESM and CommonJS files then register with the installed library. Also checks that `pnpm pack`
 * turns the template's `workspace:^` range into a version range.
 *
 * npm installs with --prefer-offline; the registry must be reachable when its cache is cold.
 * This file is the repository's check and not part of the template (its vitest.config.ts runs
 * test/*.test.ts only).
 */
import { type SpawnSyncOptions, spawnSync } from "node:child_process";
import { cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, relative, resolve } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

const template = resolve(import.meta.dirname, "../..");
const repo = resolve(template, "../..");
const LIBS = ["common", "schedulers"] as const;

/** The environment for child commands: declarations are built (the main job's switch is off). */
const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => k !== "MIDTRAIN_SKIP_DTS"));

/** Runs a command and returns its stdout; on a non-zero exit throws with its output, so a failure says what broke. */
function run(cmd: string, args: string[], cwd: string, opts: SpawnSyncOptions = {}): string {
  const r = spawnSync(cmd, args, { cwd, env, encoding: "utf8", timeout: 300_000, ...opts });
  if (r.status !== 0) {
    const why = `${r.status ?? r.signal}${r.error ? ` (${r.error.message})` : ""}`;
    throw new Error(`\`${cmd} ${args.join(" ")}\` in ${cwd} exited ${why}:\n${r.stdout ?? ""}${r.stderr ?? ""}`);
  }
  return String(r.stdout);
}

function newest(path: string): number {
  const s = statSync(path);
  if (!s.isDirectory()) return s.mtimeMs;
  return Math.max(s.mtimeMs, ...readdirSync(path).map((e) => newest(join(path, e))));
}

const hasDist = (lib: string) => ["index.js", "index.d.ts"].every((f) => existsSync(join(repo, "packages", lib, "dist", f)));

/** A library's dist is usable for packing when it has declarations and is newer than its sources. */
function distIsCurrent(lib: string): boolean {
  const dir = join(repo, "packages", lib);
  if (!hasDist(lib)) return false;
  const built = Math.min(...["index.js", "index.d.ts"].map((f) => statSync(join(dir, "dist", f)).mtimeMs));
  return built >= Math.max(newest(join(dir, "src")), statSync(join(dir, "tsup.config.ts")).mtimeMs);
}

/** The package.json inside a tarball made by `pnpm pack`. */
function packedManifest(tarball: string): Record<string, any> {
  return JSON.parse(run("tar", ["-xzOf", tarball, "package/package.json"], repo));
}

describe("the scheduler-plugin template, copied out of the repository", () => {
  let work = "";
  let copy = "";
  const tarballs: Record<string, string> = {};

  beforeAll(() => {
    // `pnpm test` builds every package first; run alone, this builds what is stale.
    if (!LIBS.every(distIsCurrent)) run("pnpm", LIBS.flatMap((l) => ["--filter", `@midtrain/${l}`]).concat("build"), repo);
    for (const lib of LIBS) expect(hasDist(lib), `packages/${lib}/dist/index.{js,d.ts} after building`).toBe(true);

    work = mkdtempSync(join(tmpdir(), "midtrain-plugin-template-"));
    const packs = join(work, "tarballs");
    mkdirSync(packs);
    for (const [name, dir] of [...LIBS.map((l) => [l, join(repo, "packages", l)]), ["plugin", template]]) {
      const before = new Set(readdirSync(packs));
      run("pnpm", ["pack", "--pack-destination", packs], dir);
      const made = readdirSync(packs).filter((f) => !before.has(f));
      expect(made, `pnpm pack in ${dir}`).toHaveLength(1);
      tarballs[name] = join(packs, made[0]);
    }

    // The copy: what a user takes from the repository, minus installed and built files.
    copy = join(work, "my-plugin");
    const skip = new Set(["node_modules", "dist", ".turbo", join("test", "repo")]);
    cpSync(template, copy, { recursive: true, filter: (src) => !skip.has(relative(template, src)) });
    // Stand-in for the registry: @midtrain/schedulers's own dependency comes from its tarball.
    const pkgFile = join(copy, "package.json");
    const pkg = JSON.parse(readFileSync(pkgFile, "utf8"));
    pkg.overrides = { "@midtrain/common": `file:${tarballs.common}` };
    writeFileSync(pkgFile, `${JSON.stringify(pkg, null, 2)}\n`);
    // What the README tells a user to run after copying (with the tarball in place of the name).
    run("npm", ["install", "--save-dev", "--no-audit", "--no-fund", "--prefer-offline", "--loglevel=error", tarballs.schedulers], copy, { timeout: 480_000 });
  }, 600_000);

  afterAll(() => {
    if (work) rmSync(work, { recursive: true, force: true });
  });

  it("pnpm pack turns the workspace range into a version range", () => {
    const own = JSON.parse(readFileSync(join(template, "package.json"), "utf8"));
    expect(own.devDependencies["@midtrain/schedulers"]).toBe("workspace:^");
    const packed = packedManifest(tarballs.plugin);
    const version = packedManifest(tarballs.schedulers).version as string;
    expect(packed.devDependencies["@midtrain/schedulers"]).toBe(`^${version}`);
    expect(packed.peerDependencies).toEqual(own.peerDependencies);
    expect(JSON.stringify(packed)).not.toContain("workspace:");
  });

  it("the copy has only its own files and installed @midtrain/schedulers from the tarball", () => {
    expect(existsSync(join(copy, "test", "repo"))).toBe(false);
    expect(existsSync(join(copy, "tsconfig.json"))).toBe(true);
    const tsconfig = readFileSync(join(copy, "tsconfig.json"), "utf8");
    expect(tsconfig).not.toMatch(/extends|paths|\.\.\//);
    const installed = JSON.parse(readFileSync(join(copy, "node_modules/@midtrain/schedulers/package.json"), "utf8"));
    expect(installed.version).toBe(packedManifest(tarballs.schedulers).version);
    expect(existsSync(join(copy, "node_modules/@midtrain/schedulers/dist/index.d.ts"))).toBe(true);
  });

  it("builds JavaScript and declarations there, type-checks and lints", () => {
    run("npm", ["run", "build"], copy);
    for (const f of ["index.js", "index.cjs", "index.d.ts", "index.d.cts"]) expect(existsSync(join(copy, "dist", f)), `dist/${f}`).toBe(true);
    const dts = readFileSync(join(copy, "dist/index.d.ts"), "utf8");
    expect(dts).toMatch(/from ['"]@midtrain\/schedulers['"]/);
    expect(dts).not.toMatch(/packages\/|\.\.\/\.\./);
    run("npm", ["run", "typecheck"], copy);
    run("npm", ["run", "lint"], copy);
  }, 300_000);

  it("runs its tests there", () => {
    const report = join(work, "vitest.json");
    run("npm", ["test", "--", "--reporter=json", `--outputFile=${report}`], copy);
    const r = JSON.parse(readFileSync(report, "utf8"));
    const titles = r.testResults.flatMap((f: { assertionResults: { title: string }[] }) => f.assertionResults.map((t) => t.title));
    expect(r.numFailedTests).toBe(0);
    expect(r.numPassedTests).toBe(r.numTotalTests);
    // Every test of test/plugin.test.ts ran (none skipped), and nothing else.
    const declared = (readFileSync(join(template, "test/plugin.test.ts"), "utf8").match(/^\s*it\(/gm) ?? []).length;
    expect(declared).toBeGreaterThan(5);
    expect(titles).toHaveLength(declared);
  }, 300_000);

  it("the built files register with the installed library (ESM and CommonJS)", () => {
    const esm = `
      import { createRegistry } from "@midtrain/schedulers";
      import plugin from "./dist/index.js";
      const lr = createRegistry().register(plugin).buildLr({ type: "triangular", base: 0.1, max: 1.1, halfCycle: 10 });
      const t = (step) => ({ step, tokens: 0, phase: "main", phaseStep: step, phaseSteps: 0, phaseFraction: 0 });
      console.log(JSON.stringify([lr.at(t(5)), lr.at(t(10))]));`;
    expect(JSON.parse(run("node", ["--input-type=module", "-e", esm], copy)).map((v: number) => v.toFixed(12))).toEqual(["0.600000000000", "1.100000000000"]);
    const cjs = `
      const { createRegistry } = require("@midtrain/schedulers");
      const { plugin } = require("./dist/index.cjs");
      const mix = createRegistry().register(plugin).buildMixture({ type: "sawtooth", base: "general", target: "code", low: 0.1, high: 0.5, period: 100 });
      console.log(JSON.stringify(mix.at({ step: 50, tokens: 0, phase: "main", phaseStep: 50, phaseSteps: 0, phaseFraction: 0 })));`;
    const w = JSON.parse(run("node", ["-e", cjs], copy)) as Record<string, number>;
    expect(w.code).toBeCloseTo(0.3, 12);
    expect(w.general).toBeCloseTo(0.7, 12);
  });
});
