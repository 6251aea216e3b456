import { PluginLoadError } from "./errors.js";
import { LR_TYPES } from "./lr.js";
import { MIXTURE_TYPES } from "./mixture.js";
import { show } from "./params.js";
import { type BuildOptions, isSchedulePlugin, type MixtureBuildOptions, Registry } from "./registry.js";
import type { LrSchedule, MixtureSchedule, ScheduleConfig, SchedulePlugin } from "./types.js";

/** The built-in types, as a plugin (registered in every registry `createRegistry` makes). */
export const builtinPlugin: SchedulePlugin = {
  name: "@midtrain/schedulers",
  description: "Built-in learning-rate and mixture schedules.",
  types: [...LR_TYPES, ...MIXTURE_TYPES],
};

/** A new registry holding the built-in types (or nothing, with `builtins: false`). */
export function createRegistry(opts: { builtins?: boolean } = {}): Registry {
  const r = new Registry();
  if (opts.builtins !== false) r.register(builtinPlugin);
  return r;
}

/** The process-wide registry used when no registry is passed. */
export const defaultRegistry: Registry = createRegistry();

/** Builds a learning-rate schedule from its JSON config. */
export function buildLrSchedule(config: ScheduleConfig, opts: BuildOptions & { registry?: Registry } = {}): LrSchedule {
  return (opts.registry ?? defaultRegistry).buildLr(config, opts);
}

/** Builds a mixture schedule from its JSON config. */
export function buildMixtureSchedule(config: ScheduleConfig, opts: MixtureBuildOptions & { registry?: Registry } = {}): MixtureSchedule {
  return (opts.registry ?? defaultRegistry).buildMixture(config, opts);
}

/** Finds the plugin object in a module: its default export, a named `plugin`, or the module itself. */
export function pluginFromModule(mod: unknown): SchedulePlugin | undefined {
  const m = mod as any;
  const candidates = [m?.default, m?.plugin, m, m?.default?.default, m?.default?.plugin];
  return candidates.find(isSchedulePlugin);
}

/** How plugin package names are turned into modules. */
export interface PluginImportOptions {
  /**
   * Imports a module by specifier. Pass `(name) => import(name)` from your own code to
   * resolve plugin names from your package's location instead of this one's.
   */
  import?: (specifier: string) => Promise<unknown>;
}

/**
 * The default importer: resolves the name with `import.meta.resolve` where the runtime has
 * it (Node >= 20.6, browsers with import maps), then imports the resolved URL; otherwise a
 * plain dynamic `import()`. Names resolve from this package's location.
 */
async function defaultImport(specifier: string): Promise<unknown> {
  const meta = import.meta as { resolve?: (s: string) => string };
  let target = specifier;
  if (typeof meta?.resolve === "function") {
    try {
      target = meta.resolve(specifier);
    } catch {
      target = specifier;
    }
  }
  return import(/* @vite-ignore */ target);
}

/**
 * Registers a plugin's types. `nameOrModule` is a package name (resolved from this package's
 * location, or with `opts.import`), an imported module, or the plugin object itself.
 * Loading the same plugin twice is a no-op. Resolves to the plugin.
 */
export async function loadPlugin(nameOrModule: string | object, registry: Registry = defaultRegistry, opts: PluginImportOptions = {}): Promise<SchedulePlugin> {
  let mod: unknown = nameOrModule;
  const label = typeof nameOrModule === "string" ? `'${nameOrModule}'` : "the given module";
  if (typeof nameOrModule === "string") {
    if (nameOrModule.length === 0) throw new PluginLoadError("plugin name is empty; give a package name");
    try {
      mod = await (opts.import ?? defaultImport)(nameOrModule);
    } catch (e) {
      throw new PluginLoadError(
        `could not import schedule plugin ${label}: ${(e as Error).message}. Check the package name and install it (pnpm add ${nameOrModule})`,
        { cause: e },
      );
    }
  }
  const plugin = pluginFromModule(mod);
  if (!plugin) {
    throw new PluginLoadError(
      `${label} does not export a schedule plugin: expected a default export (or a named export 'plugin') of the form { name, types: [...] } (module keys: ${show(Object.keys((mod as object) ?? {}))})`,
    );
  }
  registry.register(plugin);
  return plugin;
}

/** Loads several plugins in order. */
export async function loadPlugins(
  names: readonly (string | object)[],
  registry: Registry = defaultRegistry,
  opts: PluginImportOptions = {},
): Promise<SchedulePlugin[]> {
  const out: SchedulePlugin[] = [];
  for (const n of names) out.push(await loadPlugin(n, registry, opts));
  return out;
}

/** A config file section naming the plugins it needs and its schedules. */
export interface SchedulesConfig {
  /** Package names of schedule plugins, loaded before building. */
  plugins?: string[];
  lr?: ScheduleConfig;
  mixture?: ScheduleConfig;
}

/** Loads the config's plugins, then builds its schedules. */
export async function loadSchedules(
  config: SchedulesConfig,
  opts: PluginImportOptions & { registry?: Registry; sources?: readonly string[] } = {},
): Promise<{ lr?: LrSchedule; mixture?: MixtureSchedule }> {
  const registry = opts.registry ?? defaultRegistry;
  if (config.plugins !== undefined) {
    if (!Array.isArray(config.plugins) || config.plugins.some((p) => typeof p !== "string")) {
      throw new PluginLoadError(`"plugins" must be a list of package names (got ${show(config.plugins)})`);
    }
    await loadPlugins(config.plugins, registry, opts);
  }
  const out: { lr?: LrSchedule; mixture?: MixtureSchedule } = {};
  if (config.lr !== undefined) out.lr = registry.buildLr(config.lr, { path: "lr" });
  if (config.mixture !== undefined) out.mixture = registry.buildMixture(config.mixture, { path: "mixture", sources: opts.sources });
  return out;
}
