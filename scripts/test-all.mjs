#!/usr/bin/env node
// The README's test command: build, typecheck and lint every package (turbo), run every
// vitest project, then pack each package and import it outside the workspace. Lists every
// failed and every skipped test (with why it was skipped), prints one closing line
// "Tests: N passed, N failed, N skipped" and exits non-zero on any failure.
//
// A skipped test says why in its title, or in the title of a suite above it, as a trailing
// "[skipped: <reason>]" (e.g. `describe.skipIf(!ok)(ok ? title : `${title} [skipped: ${why}]`)`).
// A skip without a reason fails the run: nothing is skipped silently.
import { spawnSync } from "node:child_process";
import { existsSync, readFileSync, rmSync } from "node:fs";
import { relative, resolve } from "node:path";

const root = resolve(import.meta.dirname, "..");
const results = { passed: 0, failed: 0 };
/** Failed tests and steps, one line each. */
const failed = [];
/** Skipped tests: { name, reason }. */
const skipped = [];
const failures = [];

function step(name, cmd, args, env = {}) {
  console.log(`\n=== ${name}: ${cmd} ${args.join(" ")}`);
  const r = spawnSync(cmd, args, { cwd: root, stdio: "inherit", env: { ...process.env, ...env } });
  if (r.status !== 0) failures.push(`${name} (exit ${r.status ?? r.signal})`);
  return r.status === 0;
}

const NOTE = /\s*\[skipped: (.*)\]$/;

/** Reads a vitest JSON report into the counts and lists above. */
function collectVitest(report) {
  const counts = { passed: 0, failed: 0 };
  for (const file of report.testResults) {
    const where = relative(root, file.name);
    const tests = file.assertionResults;
    for (const t of tests) {
      const titles = [...t.ancestorTitles, t.title];
      const reasons = titles.map((s) => NOTE.exec(s)?.[1]).filter((r) => r !== undefined);
      const name = `${where} > ${titles.map((s) => s.replace(NOTE, "")).join(" > ")}`;
      if (t.status === "passed") counts.passed++;
      else if (t.status === "failed") {
        counts.failed++;
        failed.push(name);
      } else skipped.push({ name, reason: reasons.join("; ") });
    }
    // A file that failed outside any test (an import error, a required backend that cannot
    // start) has no failed test to count: count the file.
    if (file.status === "failed" && !tests.some((t) => t.status === "failed")) {
      counts.failed++;
      failed.push(`${where} (the file failed: ${file.message.split("\n")[0] || "see the log above"})`);
    }
  }
  return counts;
}

/** The closing summary: failed tests, skipped tests grouped by reason, then the counts line. */
function summary(counts, failedList, skippedList) {
  const lines = [];
  if (failedList.length) lines.push(`\nFailed (${failedList.length}):`, ...failedList.map((f) => `  ${f}`));
  if (skippedList.length) {
    lines.push(`\nSkipped (${skippedList.length}):`);
    const byReason = new Map();
    for (const s of skippedList) byReason.set(s.reason, [...(byReason.get(s.reason) ?? []), s.name]);
    for (const [reason, names] of byReason) {
      lines.push(`  ${reason || "NO REASON GIVEN (add \"[skipped: <why>]\" to the test's or suite's title)"} — ${names.length}:`);
      for (const n of names) lines.push(`    ${n}`);
    }
  }
  lines.push(`\nTests: ${counts.passed} passed, ${counts.failed} failed, ${skippedList.length} skipped`);
  return lines.join("\n");
}

if (process.argv.includes("--summarize")) {
  // Summarize an existing vitest JSON report: node scripts/test-all.mjs --summarize report.json
  const counts = collectVitest(JSON.parse(readFileSync(process.argv[process.argv.indexOf("--summarize") + 1], "utf8")));
  console.log(summary(counts, failed, skipped));
  process.exit(counts.failed || skipped.some((s) => !s.reason) ? 1 : 0);
}

step("build, typecheck, lint", "pnpm", ["exec", "turbo", "run", "build", "typecheck", "lint", "--output-logs=errors-only"]);
// Formatting and lint of everything, the root scripts and benches included (biome.json).
step("format and lint (biome check)", "pnpm", ["exec", "biome", "check", "."]);

const report = resolve(root, "node_modules/.cache/vitest-results.json");
rmSync(report, { force: true });
step("unit and integration tests", "pnpm", ["exec", "vitest", "run", "--reporter=default", "--reporter=json", `--outputFile.json=${report}`]);
if (existsSync(report)) {
  const j = JSON.parse(readFileSync(report, "utf8"));
  const counts = collectVitest(j);
  results.passed += counts.passed;
  results.failed += counts.failed;
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
    for (const s of j.skipped ?? []) skipped.push({ name: `pack-check > ${s.name}`, reason: s.reason });
  }
}

const reasonless = skipped.filter((s) => !s.reason).length;
if (reasonless) failures.push(`${reasonless} skipped test(s) give no reason`);
if (failures.length) console.log(`\nFailed steps: ${failures.join("; ")}`);
if (failures.length && results.failed === 0) results.failed = failures.length;
console.log(summary(results, failed, skipped));
process.exit(failures.length || results.failed ? 1 : 0);
