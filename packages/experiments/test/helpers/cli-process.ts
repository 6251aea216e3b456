/**
 * Runs the `midtrain` command (bin/midtrain.mjs over the built dist/, what `npx midtrain` runs) as a real process, for
 * tests that kill it, signal it or run two at once. The build is refreshed first when any
 * source of the CLI's packages is newer than it (CI builds before the tests; this keeps a
 * developer's `vitest` honest).
 */
import { type ChildProcess, execFileSync, spawn } from "node:child_process";
import { existsSync, readdirSync, readFileSync, statSync } from "node:fs";
import { join, resolve } from "node:path";

const root = resolve(import.meta.dirname, "../../../..");
export const cliPath = resolve(root, "packages/experiments/bin/midtrain.mjs");
const builtCli = resolve(root, "packages/experiments/dist/cli.js");

function newestSource(dir: string): number {
  let newest = 0;
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) newest = Math.max(newest, newestSource(p));
    else if (e.name.endsWith(".ts")) newest = Math.max(newest, statSync(p).mtimeMs);
  }
  return newest;
}

/** Builds the CLI and the packages it uses when dist/ is missing or older than the sources. */
export function ensureCliBuilt(): void {
  const pkgs = ["backend", "native-blas", "model", "data", "schedulers", "trainer", "metrics", "experiments"];
  const built = existsSync(builtCli) ? statSync(builtCli).mtimeMs : 0;
  const stale = pkgs.some((p) => newestSource(resolve(root, "packages", p, "src")) > built);
  if (!stale) return;
  execFileSync("pnpm", ["exec", "turbo", "run", "build", "--output-logs=errors-only", "--filter=@midtrain/experiments..."], {
    cwd: root,
    stdio: "inherit",
    // A full build (with declarations): pack-check and typecheck read dist/ after the tests.
    env: { ...process.env, MIDTRAIN_SKIP_DTS: "" },
  });
}

export interface CliRun {
  child: ChildProcess;
  exit: Promise<{ code: number | null; signal: NodeJS.Signals | null; stdout: string; stderr: string }>;
  output(): string;
}

/** Starts `midtrain ...args` (the bin); a watchdog kills it after `timeoutMs`. */
export function startCli(args: string[], opts: { env?: Record<string, string>; timeoutMs?: number } = {}): CliRun {
  const child = spawn(process.execPath, [cliPath, ...args], {
    cwd: root,
    stdio: ["ignore", "pipe", "pipe"],
    // Its own process group, so a test can kill the CLI with its workers at once (as a lost host would).
    detached: true,
    env: { ...process.env, CI: "1", MIDTRAIN_BACKEND: "", ...opts.env },
  });
  let stdout = "";
  let stderr = "";
  child.stdout!.on("data", (d) => {
    stdout += d;
  });
  child.stderr!.on("data", (d) => {
    stderr += d;
  });
  const watchdog = setTimeout(() => killGroup(child, "SIGKILL"), opts.timeoutMs ?? 240_000);
  const exit = new Promise<{ code: number | null; signal: NodeJS.Signals | null; stdout: string; stderr: string }>((res) =>
    child.on("exit", (code, signal) => {
      clearTimeout(watchdog);
      res({ code, signal, stdout, stderr });
    }),
  );
  return { child, exit, output: () => stdout + stderr };
}

/** Sends a signal to the CLI and every worker it forked. */
export function killGroup(child: ChildProcess, sig: NodeJS.Signals): void {
  try {
    process.kill(-child.pid!, sig);
  } catch {
    // already gone
  }
}

/** Runs the CLI to its end. */
export async function runCli(args: string[], opts: { env?: Record<string, string>; timeoutMs?: number } = {}) {
  return startCli(args, opts).exit;
}

/** Polls until `cond()` holds (or the process exits first: then throws, with its output). */
export async function waitFor(run: CliRun, what: string, cond: () => boolean, everyMs = 10): Promise<void> {
  let exited = false;
  void run.exit.then(() => {
    exited = true;
  });
  for (;;) {
    if (cond()) return;
    if (exited) throw new Error(`the CLI exited before ${what}:\n${run.output()}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

/** Train records of a metrics file so far (complete lines only). */
export function trainSteps(path: string): number[] {
  if (!existsSync(path)) return [];
  return readFileSync(path, "utf8")
    .split("\n")
    .filter((l) => l.includes('"type":"train"'))
    .flatMap((l) => {
      try {
        return [JSON.parse(l).step as number];
      } catch {
        return [];
      }
    });
}

/**
 * The shrunken study the process tests run: 2 trunk segments, 1 branch, 4 SFT runs on the cpu
 * backend, seconds per job.
 */
export function shrunkStudyYaml(name: string): string {
  return `
name: ${name}
seed: 1
backend: cpu
model: { preset: tiny-1m, overrides: { dModel: 16, nLayer: 1, nHead: 2, seqLen: 64 } }
data:
  seqLen: 16
  general: general
  maxValidationSequences: 8
  sources:
    general: { corpus: general, maxDocuments: 40 }
    code: { corpus: code, maxDocuments: 40 }
  sft:
    code: { corpus: sft-code, maxDocuments: 40 }
pretrain:
  steps: 30
  batchSize: 4
  lr: { type: cosine, peak: 0.003, min: 0.0003, warmup: { fraction: 0.1 } }
  evalEvery: 10
  checkpointEvery: 4
branches:
  - { name: baseline, kind: baseline }
  - { name: mid, kind: midtrain, source: code, weight: 0.5, start: 0.4 }
sft: { domains: [code], steps: 8, batchSize: 4, seqLen: 64, lrGrid: [0.001, 0.003], seeds: [1] }
`;
}
