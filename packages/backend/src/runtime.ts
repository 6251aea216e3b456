/** True in Node.js (and not in a browser page or worker). */
export function isNode(): boolean {
  const p = (globalThis as { process?: { versions?: { node?: string } } }).process;
  return typeof p?.versions?.node === "string";
}

export function defaultEnv(): Record<string, string | undefined> {
  const p = (globalThis as { process?: { env?: Record<string, string | undefined> } }).process;
  return p?.env ?? {};
}

/**
 * Imports a module whose name is only known at run time, so that bundlers leave it out
 * of browser bundles (optional Node-only packages such as tfjs-node-gpu and webgpu).
 */
export function importOptional<T = unknown>(name: string): Promise<T> {
  return import(/* @vite-ignore */ /* webpackIgnore: true */ name) as Promise<T>;
}
