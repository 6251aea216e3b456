import { createRegistry, loadPlugins, type PluginImportOptions, type Registry } from "@midtrain/schedulers";
import type { ExperimentConfig } from "./config.js";

/**
 * The schedule registry an experiment is planned and trained with: the built-in LR and mixture
 * types plus those of the config's `plugins`. Browser-safe; pass `import` to say how a plugin
 * name becomes a module (Node: `experimentRegistry` from `@midtrain/experiments/node` imports
 * the paths `loadExperimentConfig` resolved).
 */
export async function experimentRegistry(config: Pick<ExperimentConfig, "plugins">, opts: PluginImportOptions = {}): Promise<Registry> {
  const registry = createRegistry();
  if (config.plugins.length) await loadPlugins(config.plugins, registry, opts);
  return registry;
}
