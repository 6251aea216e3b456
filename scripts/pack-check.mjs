#!/usr/bin/env node
// Packs every publishable workspace package with `pnpm pack` (which rewrites workspace:
// ranges), installs the tarballs into an empty folder outside the workspace with npm, and
// imports each package from Node ESM and CommonJS. Also runs publint on each package.
// Usage: node scripts/pack-check.mjs [report.json]
import { execFileSync, spawnSync } from "node:child_process";
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync, existsSync, mkdirSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";

const root = resolve(import.meta.dirname, "..");
const outFile = process.argv[2];
const pkgs = ["packages", "examples"].flatMap((g) =>
  existsSync(join(root, g))
    ? readdirSync(join(root, g))
        .map((d) => join(root, g, d))
        .filter((d) => existsSync(join(d, "package.json")))
        .map((dir) => ({ dir, json: JSON.parse(readFileSync(join(dir, "package.json"), "utf8")) }))
        .filter((p) => !p.json.private)
    : [],
);

let passed = 0;
let failed = 0;
/** Checks not run here, each with why: { name, reason }. */
const skipped = [];
const check = (name, fn) => {
  try {
    fn();
    passed++;
    console.log(`  ok   ${name}`);
  } catch (err) {
    failed++;
    console.log(`  FAIL ${name}\n${String(err.stdout ?? "")}${String(err.stderr ?? err.message)}`.trimEnd());
  }
};

const work = mkdtempSync(join(tmpdir(), "midtrain-pack-"));
const tarballs = join(work, "tarballs");
mkdirSync(tarballs);
for (const p of pkgs) {
  check(`publint ${p.json.name}`, () => execFileSync("pnpm", ["exec", "publint", "--strict", p.dir], { cwd: root, stdio: "pipe" }));
  check(`pnpm pack ${p.json.name}`, () => execFileSync("pnpm", ["pack", "--pack-destination", tarballs], { cwd: p.dir, stdio: "pipe" }));
}
const app = join(work, "app");
mkdirSync(app);
writeFileSync(join(app, "package.json"), JSON.stringify({ name: "pack-check-app", private: true, version: "0.0.0" }));
const files = readdirSync(tarballs).map((f) => join(tarballs, f));
const install = spawnSync("npm", ["install", "--no-audit", "--no-fund", "--prefer-offline", "--loglevel=error", ...files], { cwd: app, encoding: "utf8" });
if (install.status !== 0) {
  failed++;
  console.log(`  FAIL npm install of the packed tarballs\n${install.stdout}${install.stderr}`);
} else {
  for (const p of pkgs) {
    const name = p.json.name;
    check(`${name} imports from ESM`, () =>
      execFileSync("node", ["--input-type=module", "-e", `const m = await import(${JSON.stringify(name)}); if (!Object.keys(m).length) throw new Error("no exports");`], { cwd: app, stdio: "pipe" }),
    );
    check(`${name} requires from CommonJS`, () =>
      execFileSync("node", ["-e", `const m = require(${JSON.stringify(name)}); if (!Object.keys(m).length) throw new Error("no exports");`], { cwd: app, stdio: "pipe" }),
    );
  }
  // The native addon compiles from the files the tarball ships (C source, node-api-headers), in
  // the installed package: wherever the workspace copy loads (under CI: always), this one must.
  const probe = spawnSync("node", ["-e", "require('@midtrain/native-blas').loadNativeBlas()"], { cwd: join(root, "packages/backend"), encoding: "utf8" });
  const ci = process.env.CI === "true" || process.env.CI === "1";
  if (probe.status === 0 || ci) {
    check("@midtrain/native-blas compiles and opens BLAS from the installed tarball", () =>
      execFileSync(
        "node",
        ["-e", "const b = require('@midtrain/native-blas').loadNativeBlas(); const c = new Float32Array(1); b.sgemmBatch(1, false, false, 1, 1, 1, new Float32Array([3]), 0, new Float32Array([4]), 0, c, 1); if (c[0] !== 12) throw new Error('3*4 gave ' + c[0]); if (!b.addonPath.includes('node_modules')) throw new Error('addon outside the installed package: ' + b.addonPath);"],
        { cwd: app, stdio: "pipe", env: { ...process.env, MIDTRAIN_NATIVE_BLAS_DIR: "" } },
      ),
    );
  } else {
    const reason = `the native addon is not buildable here: ${(probe.stderr || "").trim().split("\n").pop()}`;
    skipped.push({ name: "@midtrain/native-blas compiles and opens BLAS from the installed tarball", reason });
    console.log(`  skip @midtrain/native-blas build from the tarball (${reason})`);
  }
}
rmSync(work, { recursive: true, force: true });
console.log(`pack-check: ${passed} passed, ${failed} failed, ${skipped.length} skipped`);
if (outFile) writeFileSync(outFile, JSON.stringify({ passed, failed, skipped }));
process.exit(failed ? 1 : 0);
