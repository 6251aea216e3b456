#!/usr/bin/env node
// The main job: builds the packages and runs the micro study (examples/micro-study) on the
// default backend, writing runs/micro-study/report.html, results.csv and results.json.
// A rerun resumes: finished jobs are not redone (delete runs/micro-study to start over).
import { execFileSync } from "node:child_process";
import { resolve } from "node:path";

const root = resolve(import.meta.dirname, "..");
const t0 = Date.now();
execFileSync("pnpm", ["exec", "turbo", "run", "build", "--output-logs=errors-only", "--filter=@midtrain/experiments..."], {
  cwd: root,
  stdio: "inherit",
  // JavaScript only: type declarations are for publishing and take most of the build time.
  env: { ...process.env, MIDTRAIN_SKIP_DTS: "1" },
});
const args = process.argv.slice(2);
execFileSync(
  process.execPath,
  [
    resolve(root, "packages/experiments/bin/midtrain.mjs"),
    "run",
    resolve(root, "examples/micro-study/micro-study.yaml"),
    "--out",
    resolve(root, "runs/micro-study"),
    ...args,
  ],
  { cwd: root, stdio: "inherit" },
);
console.log(`main job finished in ${((Date.now() - t0) / 1000).toFixed(0)} s (build included)`);
