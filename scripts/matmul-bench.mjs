#!/usr/bin/env node
// Matmul throughput per backend (GFLOP/s), JSON lines on stdout.
// Usage: node scripts/matmul-bench.mjs [backend ...]   (default: every backend that starts)
// Needs `pnpm build` (imports the built @midtrain/backend).
import { resolve } from "node:path";

const root = resolve(import.meta.dirname, "..");
const { initBackend, probeBackend, BACKENDS } = await import(resolve(root, "packages/backend/dist/index.js"));
const wanted = process.argv.slice(2).length ? process.argv.slice(2) : BACKENDS;
for (const name of wanted) {
  const probe = await probeBackend(name);
  if (!probe.ok) {
    console.log(JSON.stringify({ backend: name, skipped: probe.reason.split("\n")[0] }));
    continue;
  }
  const { tf, device } = await initBackend({ prefer: name });
  for (const n of [256, 1024, 2048]) {
    const a = tf.randomNormal([n, n]);
    const b = tf.randomNormal([n, n]);
    const warm = tf.matMul(a, b);
    await warm.data();
    warm.dispose();
    let reps = 0;
    const t0 = performance.now();
    while (performance.now() - t0 < 1500 || reps < 3) {
      const c = tf.matMul(a, b);
      await c.data();
      c.dispose();
      reps++;
    }
    const s = (performance.now() - t0) / 1000;
    console.log(JSON.stringify({ backend: name, device: device.description, n, reps, gflops: +((2 * n ** 3 * reps) / s / 1e9).toFixed(2) }));
    tf.dispose([a, b]);
  }
}
