// Shared by bench/run.mjs and bench/dp.mjs: start the backend for a variant and build the
// training step from the project's own packages (the trainer's computeGradients and AdamW).
import { resolve } from "node:path";

const root = resolve(import.meta.dirname, "..");
const dist = (pkg) => resolve(root, `packages/${pkg}/dist/index.js`);

/**
 * Variant parts that choose how the backend starts: `xnnpack` (wasm matmuls on tfjs's own
 * XNNPACK kernel), `blasN` (native BLAS matmuls on N threads, required). Without either the
 * backend starts as users get it (native BLAS when it loads). Other parts go to bench/variants.mjs.
 */
export async function startBench(backend, variant, defaults = {}) {
  const parts = variant === "base" ? [] : variant.split(",");
  const init = { prefer: backend, onNotice: () => {}, ...defaults };
  const rest = [];
  for (const p of parts) {
    if (p === "xnnpack") init.nativeBlas = false;
    else if (/^blas\d+$/.test(p)) Object.assign(init, { nativeBlas: true, blasThreads: Number(p.slice(4)) });
    else rest.push(p);
  }
  const { initBackend } = await import(dist("backend"));
  const M = await import(dist("model"));
  const T = await import(dist("trainer"));
  const { tf, device } = await initBackend(init);
  if (rest.length) {
    const { applyVariant } = await import("./variants.mjs");
    await applyVariant(rest.join(","), { tf, M });
  }
  return { tf, device, M, T };
}

/** The AdamW every bench step uses: the trainer's, with its defaults for decay groups. */
export function benchOptimizer(T) {
  return new T.AdamW({ beta1: 0.9, beta2: 0.95, eps: 1e-8, weightDecay: 0.1 });
}

export const BENCH_LR = 1e-4;
