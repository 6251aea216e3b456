#!/usr/bin/env node
// The main job: builds the packages and runs the micro study (examples/micro-study) on the
// default backend, writing runs/micro-study/report.html, results.csv and results.json.
// `--study standard` (`pnpm study:standard`) runs the 30-45 minute standard study
// (examples/standard-study) into runs/standard-study instead. Other arguments go to `midtrain run`.
// A rerun resumes: finished jobs are not redone (delete the run folder to start over).
import { execFileSync } from "node:child_process";
import { resolve } from "node:path";

const root = resolve(import.meta.dirname, "..");
const t0 = Date.now();
const STUDIES = {
  micro: ["examples/micro-study/micro-study.yaml", "runs/micro-study"],
  standard: ["examples/standard-study/standard.yaml", "runs/standard-study"],
};
const args = process.argv.slice(2);
const at = args.indexOf("--study");
const study = at >= 0 ? args.splice(at, 2)[1] : "micro";
if (!(study in STUDIES)) {
  console.error(`--study must be one of ${Object.keys(STUDIES).join(", ")}, got '${study}'`);
  process.exit(2);
}
const [config, out] = STUDIES[study];
execFileSync("pnpm", ["exec", "turbo", "run", "build", "--output-logs=errors-only", "--filter=@midtrain/experiments..."], {
  cwd: root,
  stdio: "inherit",
  // JavaScript only: type declarations are for publishing and take most of the build time.
  env: { ...process.env, MIDTRAIN_SKIP_DTS: "1" },
});
execFileSync(process.execPath, [resolve(root, "packages/experiments/bin/midtrain.mjs"), "run", resolve(root, config), "--out", resolve(root, out), ...args], {
  cwd: root,
  stdio: "inherit",
});
console.log(`${study === "micro" ? "main job" : `${study} study`} finished in ${((Date.now() - t0) / 1000).toFixed(0)} s (build included)`);
