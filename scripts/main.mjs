#!/usr/bin/env node
// The main job. Until the experiment runner lands this is a backend smoke run: it builds
// the packages, starts the default backend, prints the device and times a matmul.
import { execFileSync } from "node:child_process";
import { resolve } from "node:path";

const root = resolve(import.meta.dirname, "..");
execFileSync("pnpm", ["exec", "turbo", "run", "build", "--output-logs=errors-only"], { cwd: root, stdio: "inherit" });
const { initBackend } = await import(resolve(root, "packages/backend/dist/index.js"));
const { tf, backend, device } = await initBackend();
console.log(`backend: ${backend} — ${device.description}${device.isSoftware ? " (software)" : ""}`);
const n = 512;
const a = tf.randomNormal([n, n]);
const b = tf.randomNormal([n, n]);
await tf.matMul(a, b).data(); // warm-up
const reps = 10;
const t0 = performance.now();
for (let i = 0; i < reps; i++) {
  const c = tf.matMul(a, b);
  await c.data();
  c.dispose();
}
const s = (performance.now() - t0) / 1000;
console.log(`matmul ${n}x${n}x${n}: ${((2 * n ** 3 * reps) / s / 1e9).toFixed(1)} GFLOP/s`);
