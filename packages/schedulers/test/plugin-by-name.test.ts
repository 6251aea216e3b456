/**
 * The example plugin (`examples/scheduler-plugin`, a workspace package and a devDependency of
 * this one) is loaded by its package name, from a config, the way a third-party plugin is.
 *
 * Vitest aliases `@midtrain/<dir>` to `packages/<dir>/src` only for packages/*, so here the
 * name resolves through node_modules to the plugin's built `dist/index.js`. `beforeAll`
 * builds the plugin when its dist is missing or older than its sources.
 */
import { execFileSync } from "node:child_process";
import { existsSync, readdirSync, readFileSync, statSync } from "node:fs";
import { join, resolve } from "node:path";
import {
  createRegistry,
  DuplicateScheduleError,
  loadPlugin,
  loadSchedules,
  PluginLoadError,
  type TrainingTime,
  UnknownScheduleError,
} from "@midtrain/schedulers";
import { beforeAll, describe, expect, it } from "vitest";

const PLUGIN = "@midtrain/example-scheduler-plugin";
const pluginDir = resolve(import.meta.dirname, "../../../examples/scheduler-plugin");
const at = (step: number): TrainingTime => ({ step, tokens: 0, phase: "main", phaseStep: step, phaseSteps: 0, phaseFraction: 0 });

function newestSource(dir: string): number {
  let newest = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, entry.name);
    newest = Math.max(newest, entry.isDirectory() ? newestSource(p) : statSync(p).mtimeMs);
  }
  return newest;
}

beforeAll(() => {
  const dist = join(pluginDir, "dist/index.js");
  const sources = Math.max(
    newestSource(join(pluginDir, "src")),
    statSync(join(pluginDir, "package.json")).mtimeMs,
    statSync(join(pluginDir, "tsup.config.ts")).mtimeMs,
  );
  if (!existsSync(dist) || statSync(dist).mtimeMs < sources) {
    // JavaScript only: the plugin's declarations need this package's built ones, and only its code runs here.
    execFileSync("pnpm", ["--filter", PLUGIN, "build"], {
      cwd: resolve(pluginDir, "../.."),
      stdio: "pipe",
      timeout: 110_000,
      env: { ...process.env, MIDTRAIN_SKIP_DTS: "1" },
    });
  }
});

describe("loading the example plugin by package name", () => {
  const config = JSON.parse(readFileSync(join(pluginDir, "configs/cyclic-midtraining.json"), "utf8"));

  it("is a workspace package this package depends on", () => {
    const pkg = JSON.parse(readFileSync(resolve(import.meta.dirname, "../package.json"), "utf8"));
    expect(pkg.devDependencies[PLUGIN]).toBe("workspace:^");
  });

  it("loadSchedules imports the plugins a config names, then builds its schedules", async () => {
    const registry = createRegistry();
    expect(registry.has("triangular")).toBe(false);
    const { lr, mixture } = await loadSchedules(config, { registry });
    expect(registry.plugins()).toContain(PLUGIN);
    expect(registry.ownerOf("lr", "triangular")).toBe(PLUGIN);
    // Hand-computed: warmup to 1e-3 over 100 steps, then triangular2 between 1e-4 and 1e-3
    // with half cycles of 200 steps; sawtooth share of code 0 → 0.4 every 500 steps.
    expect(lr!.at(at(50))).toBeCloseTo(5e-4, 15);
    expect(lr!.at(at(300))).toBeCloseTo(1e-3, 15);
    expect(lr!.at(at(700))).toBeCloseTo(1e-4 + 9e-4 / 2, 15);
    expect(mixture!.sources).toEqual(["general", "code"]);
    expect(mixture!.at(at(250))).toEqual({ general: 0.8, code: 0.2 });
    // JSON round trip of a config that uses a plugin type.
    const again = registry.buildLr(JSON.parse(JSON.stringify(lr!.config)));
    for (const s of [0, 99, 100, 333, 1234]) expect(again.at(at(s))).toBe(lr!.at(at(s)));
  });

  it("the same config fails without the plugin, telling how to load it", () => {
    const registry = createRegistry();
    expect(() => registry.buildLr(config.lr)).toThrow(UnknownScheduleError);
    expect(() => registry.buildLr(config.lr)).toThrow(/lr\.parts\[1\]\.schedule\.type: unknown learning-rate schedule 'triangular'.*"plugins"/);
  });

  it("loading twice is a no-op; a colliding type from another plugin is a clear error", async () => {
    const registry = createRegistry();
    const a = await loadPlugin(PLUGIN, registry);
    const b = await loadPlugin(PLUGIN, registry);
    expect(b).toBe(a);
    const impostor = { name: "acme-schedules", types: [{ ...a.types[0] }] };
    await expect(loadPlugin(impostor, registry)).rejects.toThrow(DuplicateScheduleError);
    await expect(loadPlugin(impostor, registry)).rejects.toThrow(/'triangular' is already registered by plugin '@midtrain\/example-scheduler-plugin'/);
    // Misspelled plugin types get suggestions like the built-in ones.
    expect(() => registry.buildLr({ type: "triangle", base: 0, max: 1, halfCycle: 1 })).toThrow(/did you mean 'triangular'\?/);
  });

  it("an unknown package or a module without a plugin is a PluginLoadError", async () => {
    await expect(loadPlugin("@midtrain/no-such-plugin", createRegistry())).rejects.toThrow(PluginLoadError);
    await expect(loadPlugin("@midtrain/no-such-plugin", createRegistry())).rejects.toThrow(/could not import schedule plugin '@midtrain\/no-such-plugin'/);
    await expect(loadPlugin({ something: 1 }, createRegistry())).rejects.toThrow(/does not export a schedule plugin/);
    await expect(loadSchedules({ plugins: [42 as unknown as string] }, { registry: createRegistry() })).rejects.toThrow(/"plugins" must be a list/);
  });

  it("a caller can resolve plugin names itself", async () => {
    const seen: string[] = [];
    const registry = createRegistry();
    const importer = (name: string) => {
      seen.push(name);
      return import(/* @vite-ignore */ join(pluginDir, "dist/index.js"));
    };
    await loadSchedules(config, { registry, import: importer });
    expect(seen).toEqual([PLUGIN]);
    expect(registry.has("sawtooth", "mixture")).toBe(true);
  });
});
