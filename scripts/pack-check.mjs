#!/usr/bin/env node
// The packages as a user gets them from the registry. Packs every publishable workspace package
// with `pnpm pack` (which rewrites workspace: ranges) and checks each tarball (publint --strict,
// @arethetypeswrong/cli, registry metadata), installs the tarballs with plain npm into an empty
// folder outside the workspace, then, from that install:
//   - the install stays lean (no tfjs umbrella, no Dawn binaries unless asked for; under 150 MB),
//   - every entry point (`.` and `/node`) imports from ESM and requires from CommonJS,
//   - each package ships the LICENSE,
//   - every command of the root README's "Use it from npm" section runs as written (the CLI
//     through npx: --help, --version, plan, a tiny run and its rerun),
//   - every example in the shipped READMEs runs, and a README whose examples import a package
//     that is not a dependency names it in its `npm install` line,
//   - the native addon compiles from the tarball, and WebGPU in Node is the README's one command.
// Usage: node scripts/pack-check.mjs [report.json]
// The report is { passed, failed, skipped: [{ name, reason }] } (read by scripts/test-all.mjs).
import { execFileSync, spawnSync } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { join, relative, resolve } from "node:path";

const root = resolve(import.meta.dirname, "..");
const outFile = process.argv[2];
const rootPkg = JSON.parse(readFileSync(join(root, "package.json"), "utf8"));
const LICENSE = readFileSync(join(root, "LICENSE"), "utf8");
const ts = createRequire(join(root, "package.json"))("typescript");
const ci = process.env.CI === "true" || process.env.CI === "1";
const pkgs = ["packages", "examples"].flatMap((g) =>
  existsSync(join(root, g))
    ? readdirSync(join(root, g))
        .map((d) => join(root, g, d))
        .filter((d) => existsSync(join(d, "package.json")))
        .map((dir) => ({ dir, json: JSON.parse(readFileSync(join(dir, "package.json"), "utf8")) }))
        .filter((p) => !p.json.private)
    : [],
);
const byName = new Map(pkgs.map((p) => [p.json.name, p]));

/** A wasm-only Node install of every publishable package must stay under this (issue 14: 482 MB before). */
const MAX_INSTALL_MB = 150;
/** Packages that must not be in a default install: the tfjs umbrella and Dawn (an optional peer). */
const NOT_INSTALLED = ["@tensorflow/tfjs", "webgpu"];
/**
 * README blocks that are not programs, by package and block number, with why they are not run.
 * Each is listed as skipped in the report, so it stays visible.
 */
const NOT_PROGRAMS = {};

let passed = 0;
let failed = 0;
/** Checks not run here, each with why: { name, reason }. */
const skipped = [];
/** Runs one check; `fn` throws to fail it, and may return `{ note }` (a time, a device) to print. */
const check = (name, fn) => {
  try {
    const note = fn()?.note;
    passed++;
    console.log(`  ok   ${name}${note ? ` (${note})` : ""}`);
  } catch (err) {
    failed++;
    console.log(`  FAIL ${name}\n${String(err.stdout ?? "")}${String(err.stderr ?? err.message)}`.trimEnd());
  }
};
const skip = (name, reason) => {
  skipped.push({ name, reason });
  console.log(`  skip ${name} (${reason})`);
};

/** Runs a command; throws with its output unless it exits 0. Returns stdout. */
function run(cmd, args, opts = {}) {
  // npm_config_yes=false: npx never fetches a package from the registry (were the installed bin
  // missing, `npx midtrain` would otherwise install whatever is published under that name).
  const env = { ...process.env, npm_config_yes: "false", ...opts.env };
  const r = spawnSync(cmd, args, { encoding: "utf8", timeout: 240_000, maxBuffer: 64 << 20, ...opts, env });
  if (r.status !== 0) {
    const why = r.error ? r.error.message : r.signal ? `killed by ${r.signal}` : `exit ${r.status}`;
    throw Object.assign(new Error(`${cmd} ${args.join(" ")}: ${why}`), { stdout: r.stdout, stderr: `${r.stderr ?? ""}\n${cmd} ${args.join(" ")}: ${why}` });
  }
  return r.stdout;
}
const fail = (msg) => {
  throw new Error(msg);
};

/** The text of a markdown section (`## title` up to the next `## `), or "". */
function section(md, title) {
  const start = md.indexOf(`\n## ${title}\n`);
  if (start < 0) return "";
  const end = md.indexOf("\n## ", start + 4);
  return md.slice(start, end < 0 ? undefined : end);
}
/**
 * The plugin schedules of a README config that uses `@midtrain/example-scheduler-plugin`'s
 * `triangular` LR and a branch with its `sawtooth` mixture (plain numbers in steps), or undefined.
 */
function pluginSchedules(yamlText) {
  if (!/^plugins:/m.test(yamlText)) return undefined;
  const num = (block, key) => Number(new RegExp(`\\b${key}: ([0-9.e-]+)`).exec(block)?.[1]);
  const lr = /lr: \{ type: triangular,([^}]*)\}/.exec(yamlText)?.[1];
  const saw = /mixture: \{ type: sawtooth,([^}]*)\}/.exec(yamlText)?.[1];
  const branch = /- \{ name: ([\w.-]+), kind: midtrain/.exec(yamlText)?.[1];
  if (!lr || !saw || !branch) return undefined;
  return {
    lr: { base: num(lr, "base"), max: num(lr, "max"), halfCycle: num(lr, "halfCycle") },
    saw: { period: num(saw, "period"), target: /target: (\w+)/.exec(saw)[1] },
    branch,
  };
}

/**
 * The run followed the plugin: every trunk step's LR is the triangular wave at the step before
 * the update, and the branch draws nothing from the sawtooth's target where its share is 0 (the
 * start of each tooth) and something elsewhere.
 */
function checkPluginRun(out, { lr, saw, branch }) {
  const train = (f) =>
    readFileSync(join(out, f), "utf8")
      .split("\n")
      .filter((l) => l.includes('"type":"train"'))
      .map((l) => JSON.parse(l));
  const wave = (x) => {
    const cycle = Math.floor(1 + x / (2 * lr.halfCycle));
    return lr.base + (lr.max - lr.base) * Math.max(0, 1 - Math.abs(x / lr.halfCycle - 2 * cycle + 1));
  };
  const trunk = train("p1/trunk/metrics.jsonl");
  if (trunk.length < 4) fail(`the trunk logged ${trunk.length} steps`);
  for (const r of trunk) if (Math.abs(r.lr - wave(r.step - 1)) > 1e-12) fail(`trunk step ${r.step}: lr ${r.lr}, the triangular wave gives ${wave(r.step - 1)}`);
  const steps = train(`p1/branches/${branch}/metrics.jsonl`);
  if (!steps.length) fail(`branch ${branch} logged no step`);
  let drawn = 0;
  for (const r of steps) {
    const got = r.stepTokensBySource[saw.target] ?? 0;
    if ((r.step - 1) % saw.period === 0 && got) fail(`branch step ${r.step}: ${got} ${saw.target} tokens where the sawtooth's share is 0`);
    drawn += got;
  }
  if (!drawn) fail(`branch ${branch} drew no ${saw.target} tokens`);
}

/** Fenced code blocks of the given languages, in order. */
function codeBlocks(md, langs) {
  return [...md.matchAll(/^```([a-z]*)\n([\s\S]*?)^```/gm)].filter((m) => langs.includes(m[1])).map((m) => m[2]);
}
/** Bare package names a module imports (node: builtins and relative paths left out). */
function importedPackages(code) {
  const names = new Set();
  for (const m of code.matchAll(/^\s*import\s+(type\s+)?[^"';]*?from\s+["']([^"']+)["']/gm)) {
    const spec = m[2];
    if (spec.startsWith(".") || spec.startsWith("node:")) continue;
    names.add(spec.startsWith("@") ? spec.split("/").slice(0, 2).join("/") : spec.split("/")[0]);
  }
  return names;
}
/** Package names in the README's `npm install …` lines (version ranges dropped). */
function installLine(md) {
  const names = new Set();
  for (const m of md.matchAll(/^\s*npm (?:install|i) ([^\n#]+)/gm)) {
    for (const w of m[1].trim().split(/\s+/)) if (!w.startsWith("-")) names.add(w.replace(/(.)@.*$/, "$1"));
  }
  return names;
}

/** What registry-ready metadata lacks, as a list of problems. */
function metadataProblems({ dir, json }) {
  const problems = [];
  const where = relative(root, dir);
  if (typeof json.description !== "string" || json.description.length < 30 || /^midtrain \w+$/i.test(json.description)) {
    problems.push(`description is a placeholder or too short: ${JSON.stringify(json.description)}`);
  }
  if (!Array.isArray(json.keywords) || json.keywords.length === 0) problems.push("no keywords");
  if (json.license !== "Apache-2.0") problems.push(`license is ${JSON.stringify(json.license)}, not Apache-2.0`);
  if (json.repository?.type !== "git" || !/^git\+https:\/\/.+\.git$/.test(json.repository?.url ?? ""))
    problems.push("repository needs type git and a git+https URL");
  if (json.repository?.directory !== where) problems.push(`repository.directory should be ${where}`);
  if (!/^https:\/\//.test(json.homepage ?? "")) problems.push("no homepage");
  if (!/^https:\/\//.test(json.bugs?.url ?? "")) problems.push("no bugs.url");
  if (json.engines?.node !== rootPkg.engines.node)
    problems.push(`engines.node is ${JSON.stringify(json.engines?.node)}, the root says ${rootPkg.engines.node}`);
  if (!json.files?.includes("LICENSE")) problems.push("files does not list LICENSE");
  if (!existsSync(join(dir, "LICENSE")) || readFileSync(join(dir, "LICENSE"), "utf8") !== LICENSE) problems.push("LICENSE missing or not the root's");
  if (Array.isArray(json.sideEffects)) {
    for (const f of json.sideEffects) {
      const shipped = json.files.some((entry) => f.replace(/^\.\//, "").startsWith(entry.replace(/\/$/, "")));
      if (!shipped) problems.push(`sideEffects lists ${f}, which the tarball does not ship`);
      else if (!f.includes("*") && !existsSync(join(dir, f))) problems.push(`sideEffects lists ${f}, which the build does not emit`);
    }
  } else if (json.sideEffects !== false) problems.push("sideEffects should be false or the list of files with side effects");
  return problems;
}

const work = mkdtempSync(join(tmpdir(), "midtrain-pack-"));
const tarballs = join(work, "tarballs");
mkdirSync(tarballs);
const tarballOf = (json) => join(tarballs, `${json.name.replace(/^@/, "").replace("/", "-")}-${json.version}.tgz`);

for (const p of pkgs) {
  const name = p.json.name;
  check(`publint ${name}`, () => run("pnpm", ["exec", "publint", "--strict", p.dir], { cwd: root }));
  check(`registry metadata ${name}`, () => {
    const problems = metadataProblems(p);
    if (problems.length) fail(problems.join("\n"));
  });
  check(`pnpm pack ${name}`, () => run("pnpm", ["pack", "--pack-destination", tarballs], { cwd: p.dir }));
  // Types for every entry point under node16 (CJS and ESM importers) and bundler resolution.
  // Profile node16 leaves out TypeScript's legacy node10 resolution (`moduleResolution: "node"`),
  // which ignores `exports` and so cannot see the `/node` subpaths at all; every rule is checked
  // for the other resolutions. (attw's JSON lists node10 problems too: they are dropped here.)
  if (existsSync(tarballOf(p.json))) {
    check(
      `attw ${name} (types of ${Object.keys(p.json.exports ?? { ".": 0 })
        .filter((k) => k !== "./package.json")
        .join(", ")})`,
      () => {
        const out = run("pnpm", ["exec", "attw", tarballOf(p.json), "--profile", "node16", "--no-definitely-typed", "--format", "json"], { cwd: root });
        const j = JSON.parse(out);
        if (!j.analysis?.types) fail(`attw: the tarball has no types (is dist/*.d.ts built? build without MIDTRAIN_SKIP_DTS)`);
        const all = Array.isArray(j.problems) ? j.problems : Object.values(j.problems ?? {}).flat();
        const problems = all.filter((x) => x.resolutionKind !== "node10");
        if (problems.length) fail(`attw found problems:\n${JSON.stringify(problems, null, 2)}`);
        const wanted = Object.keys(p.json.exports ?? {});
        const seen = Object.keys(j.analysis.entrypoints ?? {});
        const unchecked = wanted.filter((e) => !seen.includes(e));
        if (unchecked.length) fail(`attw did not check ${unchecked.join(", ")}`);
      },
    );
  }
}

const app = join(work, "app");
mkdirSync(app);
writeFileSync(join(app, "package.json"), JSON.stringify({ name: "pack-check-app", private: true, version: "0.0.0", type: "module" }));
const files = readdirSync(tarballs).map((f) => join(tarballs, f));
const install = spawnSync("npm", ["install", "--no-audit", "--no-fund", "--prefer-offline", "--loglevel=error", ...files], { cwd: app, encoding: "utf8" });
if (install.status !== 0) {
  failed++;
  console.log(`  FAIL npm install of the packed tarballs\n${install.stdout}${install.stderr}`);
} else {
  const modules = join(app, "node_modules");
  const installed = (name) => join(modules, ...name.split("/"));

  // Measured before anything runs (the native addon builds into its package folder).
  const sizeMb = Number(run("du", ["-sk", modules]).split(/\s/)[0]) / 1024;
  check(`lean install: node_modules ${sizeMb.toFixed(0)} MB (under ${MAX_INSTALL_MB} MB), without ${NOT_INSTALLED.join(" or ")}`, () => {
    const present = NOT_INSTALLED.filter((n) => existsSync(installed(n)));
    if (present.length) fail(`a default install pulled in ${present.join(", ")}`);
    if (sizeMb >= MAX_INSTALL_MB)
      fail(
        `node_modules is ${sizeMb.toFixed(0)} MB; largest:\n${run("sh", ["-c", "du -sk node_modules/* node_modules/@*/* | sort -n | tail -8"], { cwd: app })}`,
      );
  });

  for (const p of pkgs) {
    const name = p.json.name;
    const entries = Object.keys(p.json.exports ?? { ".": 0 }).filter((k) => k !== "./package.json");
    for (const e of entries) {
      const spec = JSON.stringify(name + e.slice(1));
      check(`${name + e.slice(1)} imports from ESM`, () =>
        run("node", ["--input-type=module", "-e", `const m = await import(${spec}); if (!Object.keys(m).length) throw new Error("no exports");`], { cwd: app }),
      );
      check(`${name + e.slice(1)} requires from CommonJS`, () =>
        run("node", ["--input-type=commonjs", "-e", `const m = require(${spec}); if (!Object.keys(m).length) throw new Error("no exports");`], { cwd: app }),
      );
    }
    check(`${name} ships the LICENSE`, () => {
      const f = join(installed(name), "LICENSE");
      if (!existsSync(f) || readFileSync(f, "utf8") !== LICENSE) fail(`${relative(app, f)} is missing or differs from the repository's LICENSE`);
    });
  }

  // The root README's "Use it from npm": write its config file, then run its commands in order.
  const readme = readFileSync(join(root, "README.md"), "utf8");
  const npmSection = section(readme, "Use it from npm");
  const experiments = byName.get("@midtrain/experiments").json;
  const commands = codeBlocks(npmSection, ["sh"])
    .flatMap((b) => b.split("\n"))
    .map((l) => l.replace(/\s+#.*$/, "").trim())
    .filter((l) => l && !l.startsWith("#"));
  let webgpuInstall;
  check(`README "Use it from npm": the section shows install, --help, --version, plan, run and a rerun`, () => {
    if (!npmSection) fail(`README.md has no "## Use it from npm" section`);
    const cli = commands.filter((c) => c.startsWith("npx midtrain "));
    const runs = cli.filter((c) => / run /.test(` ${c} `));
    const missing = [
      commands.some((c) => /^npm install .*@midtrain\/experiments\b/.test(c)) ? null : "npm install @midtrain/experiments",
      cli.some((c) => / --help$/.test(c)) ? null : "npx midtrain --help",
      cli.some((c) => / --version$/.test(c)) ? null : "npx midtrain --version",
      cli.some((c) => c.startsWith("npx midtrain plan ")) ? null : "npx midtrain plan <config>",
      runs.length >= 2 && new Set(runs).size < runs.length ? null : "npx midtrain run … twice (the second is the rerun)",
      codeBlocks(npmSection, ["yaml"]).some((b) => /^# [\w.-]+\.ya?ml\b/.test(b)) ? null : "a yaml block starting with `# <file>.yaml`",
    ].filter(Boolean);
    if (missing.length) fail(`missing: ${missing.join("; ")}`);
  });
  for (const block of codeBlocks(npmSection, ["yaml"])) {
    const file = /^# ([\w.-]+\.ya?ml)\b/.exec(block)?.[1];
    if (file) writeFileSync(join(app, file), block);
  }
  for (const c of commands) {
    if (c.startsWith("npm install ")) {
      const names = [...installLine(c)];
      const ours = names.filter((n) => n.startsWith("@midtrain/"));
      if (ours.length) {
        check(`README: \`${c}\` names packages this check installed from tarballs`, () => {
          const unknown = ours.filter((n) => !byName.has(n));
          if (unknown.length) fail(`not a publishable workspace package: ${unknown.join(", ")}`);
        });
      } else if (names.length === 1 && names[0] === "webgpu")
        webgpuInstall = c; // run last, below
      else check(`README: \`${c}\``, () => fail("pack-check does not know this install line; teach it or change the README"));
      continue;
    }
    if (!c.startsWith("npx midtrain")) {
      check(`README: \`${c}\``, () => fail("pack-check runs only `npm install …` and `npx midtrain …` lines of this section; teach it or change the README"));
      continue;
    }
    const args = c.split(/\s+/).slice(2);
    const cmd = ["midtrain", ...args];
    const sub = args[0];
    if (sub === "--help") {
      check(`README: \`${c}\` lists the commands`, () => {
        const out = run("npx", cmd, { cwd: app });
        const missing = ["run", "plan", "report", "corpora"].filter((s) => !new RegExp(`^\\s+${s}\\b`, "m").test(out));
        if (missing.length) fail(`--help does not list: ${missing.join(", ")}\n${out}`);
      });
    } else if (sub === "--version" || sub === "-V") {
      check(`README: \`${c}\` prints ${experiments.version}`, () => {
        const out = run("npx", cmd, { cwd: app }).trim();
        if (out !== experiments.version) fail(`printed ${JSON.stringify(out)}`);
      });
    } else if (sub === "run") {
      if (!args.includes("--out")) {
        check(`README: \`${c}\``, () => fail("a run line needs --out <dir> (the check reads the results from it)"));
        continue;
      }
      const out = join(app, args[args.indexOf("--out") + 1]);
      const rerun = existsSync(join(out, "results.json"));
      const outcomes = () => {
        const found = new Map();
        const walk = (d) => {
          for (const e of readdirSync(d, { withFileTypes: true })) {
            if (e.isDirectory()) walk(join(d, e.name));
            else if (/^outcome.*\.json$/.test(e.name)) found.set(join(d, e.name), statSync(join(d, e.name)).mtimeMs);
          }
        };
        if (existsSync(out)) walk(out);
        return found;
      };
      const before = outcomes();
      check(`README: \`${c}\` ${rerun ? "(rerun of a finished run) exits 0, prints the table and runs no job again" : "trains and prints the table"}`, () => {
        const t0 = Date.now();
        const stdout = run("npx", cmd, { cwd: app, timeout: 180_000 });
        const results = JSON.parse(readFileSync(join(out, "results.json"), "utf8"));
        const branches = [...new Set(results.rows.map((r) => r.branch))];
        if (!branches.length) fail(`results.json has no rows`);
        if (!/^-+( +-+)+$/m.test(stdout) || branches.some((b) => !stdout.includes(b)))
          fail(`no results table (branches ${branches.join(", ")}) in:\n${stdout}`);
        if (/PARTIAL RESULTS/.test(stdout)) fail(`partial results:\n${stdout}`);
        const after = outcomes();
        if (!after.size) fail(`no job outcome files under ${relative(app, out)}`);
        if (rerun) {
          const again = [...after].filter(([f, t]) => before.get(f) !== t).map(([f]) => relative(out, f));
          if (again.length) fail(`the rerun ran finished jobs again: ${again.join(", ")}`);
        }
        return { note: `${((Date.now() - t0) / 1000).toFixed(1)} s` };
      });
      const configFile = join(app, args[1]);
      const plugin = existsSync(configFile) ? pluginSchedules(readFileSync(configFile, "utf8")) : undefined;
      if (plugin && !rerun) {
        check(`README: \`${c}\`: the plugin's LR and branch mixture are what metrics.jsonl shows`, () => checkPluginRun(out, plugin));
      }
    } else {
      check(`README: \`${c}\``, () => {
        const out = run("npx", cmd, { cwd: app });
        if (!out.trim()) fail("printed nothing");
      });
    }
  }

  // Every example in the shipped READMEs, compiled with TypeScript's transpiler and run with the
  // installed package's folder as the working directory (where the READMEs' relative paths point).
  const examplesDir = join(app, "readme-examples");
  mkdirSync(examplesDir);
  for (const p of pkgs) {
    const name = p.json.name;
    const md = readFileSync(join(installed(name), "README.md"), "utf8");
    const programs = codeBlocks(md, ["ts", "js"]).filter((b) => /^\s*import\b[^;]*from\s+["']@midtrain\//m.test(b));
    const deps = new Set([name, ...Object.keys(p.json.dependencies ?? {}), ...Object.keys(p.json.peerDependencies ?? {})]);
    const extra = [...new Set(programs.flatMap((b) => [...importedPackages(b)]))].filter((n) => !deps.has(n));
    if (extra.length) {
      check(`${name} README: its npm install line names ${extra.join(", ")} (imported by its examples, not dependencies)`, () => {
        const listed = installLine(md);
        const missing = [name, ...extra].filter((n) => !listed.has(n));
        if (missing.length) fail(`the README's \`npm install\` line lacks ${missing.join(", ")}`);
      });
    }
    for (const [i, code] of programs.entries()) {
      const id = `${name}#${i + 1}`;
      if (NOT_PROGRAMS[id]) {
        skip(`README example ${id} runs from the tarball`, NOT_PROGRAMS[id]);
        continue;
      }
      check(`README example ${id} runs from the tarball`, () => {
        const js = ts.transpileModule(code, {
          compilerOptions: { module: ts.ModuleKind.ESNext, target: ts.ScriptTarget.ES2022, verbatimModuleSyntax: false },
        }).outputText;
        const file = join(examplesDir, `${name.replace(/^@/, "").replace("/", "-")}-${i + 1}.mjs`);
        writeFileSync(file, js);
        const t0 = Date.now();
        run("node", [file], { cwd: installed(name), timeout: 300_000 });
        return { note: `${((Date.now() - t0) / 1000).toFixed(1)} s` };
      });
    }
  }

  // The native addon compiles from the files the tarball ships (C source, node-api-headers), in
  // the installed package: wherever the workspace copy loads (under CI: always), this one must.
  const probe = spawnSync("node", ["-e", "require('@midtrain/native-blas').loadNativeBlas()"], { cwd: join(root, "packages/backend"), encoding: "utf8" });
  if (probe.status === 0 || ci) {
    check("@midtrain/native-blas compiles and opens BLAS from the installed tarball", () =>
      execFileSync(
        "node",
        [
          "-e",
          "const b = require('@midtrain/native-blas').loadNativeBlas(); const c = new Float32Array(1); b.sgemmBatch(1, false, false, 1, 1, 1, new Float32Array([3]), 0, new Float32Array([4]), 0, c, 1); if (c[0] !== 12) throw new Error('3*4 gave ' + c[0]); if (!b.addonPath.includes('node_modules')) throw new Error('addon outside the installed package: ' + b.addonPath);",
        ],
        { cwd: app, stdio: "pipe", env: { ...process.env, MIDTRAIN_NATIVE_BLAS_DIR: "" } },
      ),
    );
  } else {
    const reason = `the native addon is not buildable here: ${(probe.stderr || "").trim().split("\n").pop()}`;
    skip("@midtrain/native-blas compiles and opens BLAS from the installed tarball", reason);
  }

  // WebGPU in Node: Dawn (`webgpu`) is an optional peer of @midtrain/backend. Without it, asking
  // for webgpu says the README's one command; after that command, webgpu loads (and starts
  // wherever the workspace's webgpu starts: under CI, on Mesa, always).
  const startWebgpu = `import { initBackend } from "@midtrain/backend";
try { const r = await initBackend({ prefer: "webgpu" }); console.log("started " + r.backend + " on " + r.device.description); }
catch (e) { console.log("error " + e.message.split("\\n")[0]); }`;
  const tryWebgpu = () => run("node", ["--input-type=module", "-e", startWebgpu], { cwd: app }).trim();
  const peer = byName.get("@midtrain/backend").json.peerDependencies?.webgpu;
  check(`README: WebGPU in Node is one command, \`npm install webgpu@${peer}\`, the one the backend's error names`, () => {
    if (!peer) fail("@midtrain/backend has no webgpu peer dependency");
    if (webgpuInstall !== `npm install webgpu@${peer}`) fail(`the README's section says ${JSON.stringify(webgpuInstall)}, the peer range is ${peer}`);
    const out = tryWebgpu();
    if (!out.includes(`install webgpu with \`npm install webgpu@${peer}\``)) fail(`without webgpu installed: ${out}`);
  });
  if (webgpuInstall) {
    const name = `after \`${webgpuInstall}\`, @midtrain/backend loads Dawn${ci ? " and starts webgpu" : ""}`;
    let out = "";
    check(`${name}`, () => {
      run("npm", ["install", "--no-audit", "--no-fund", "--prefer-offline", "--loglevel=error", webgpuInstall.split(" ").pop()], {
        cwd: app,
        timeout: 300_000,
      });
      out = tryWebgpu();
      if (/not installed|failed to load/.test(out)) fail(out);
      if (ci && !out.startsWith("started webgpu")) fail(out);
      return { note: out };
    });
  }
}
rmSync(work, { recursive: true, force: true });
console.log(`pack-check: ${passed} passed, ${failed} failed, ${skipped.length} skipped`);
if (outFile) writeFileSync(outFile, JSON.stringify({ passed, failed, skipped }));
process.exit(failed ? 1 : 0);
