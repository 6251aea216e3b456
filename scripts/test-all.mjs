#!/usr/bin/env node
// The README's test command: build, typecheck and lint every package (turbo), run every
// vitest project, then pack each package and import it outside the workspace. Prints one
// closing line "Tests: N passed, N failed" and exits non-zero on any failure.
import { spawnSync } from "node:child_process";
import { existsSync, readFileSync, rmSync } from "node:fs";
import { resolve } from "node:path";

const root = resolve(import.meta.dirname, "..");
const results = { passed: 0, failed: 0 };
const failures = [];

function step(name, cmd, args, env = {}) {
  console.log(`\n=== ${name}: ${cmd} ${args.join(" ")}`);
  const r = spawnSync(cmd, args, { cwd: root, stdio: "inherit", env: { ...process.env, ...env } });
  if (r.status !== 0) failures.push(`${name} (exit ${r.status ?? r.signal})`);
  return r.status === 0;
}

step("build, typecheck, lint", "pnpm", ["exec", "turbo", "run", "build", "typecheck", "lint", "--output-logs=errors-only"]);

const report = resolve(root, "node_modules/.cache/vitest-results.json");
rmSync(report, { force: true });
step("unit and integration tests", "pnpm", ["exec", "vitest", "run", "--reporter=default", "--reporter=json", `--outputFile.json=${report}`]);
if (existsSync(report)) {
  const j = JSON.parse(readFileSync(report, "utf8"));
  results.passed += j.numPassedTests;
  results.failed += j.numFailedTests;
  if (j.numTotalTests === 0) failures.push("vitest ran no test");
} else failures.push("vitest wrote no results");

if (!process.argv.includes("--no-pack")) {
  const packReport = resolve(root, "node_modules/.cache/pack-check.json");
  rmSync(packReport, { force: true });
  step("pack and import outside the workspace", "node", ["scripts/pack-check.mjs", packReport]);
  if (existsSync(packReport)) {
    const j = JSON.parse(readFileSync(packReport, "utf8"));
    results.passed += j.passed;
    results.failed += j.failed;
  }
}

if (failures.length) console.log(`\nFailed steps: ${failures.join("; ")}`);
if (failures.length && results.failed === 0) results.failed = failures.length;
console.log(`\nTests: ${results.passed} passed, ${results.failed} failed`);
process.exit(failures.length || results.failed ? 1 : 0);
