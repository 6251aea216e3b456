/**
 * The CLI as a process, the way `pnpm main` and users run it: `midtrain run` with forked
 * workers, killed with SIGKILL during the trunk, a branch, an SFT run and a checkpoint write,
 * then rerun; stopped with SIGTERM; run twice on one folder. The interrupted run must end
 * with the same results.json as an uninterrupted one (cpu backend: identical numbers), and a
 * finished job is never run again.
 */
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, watch, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ensureCliBuilt, killGroup, runCli, shrunkStudyYaml, startCli, trainSteps, waitFor } from "./helpers/cli-process.js";

const CONFIG = shrunkStudyYaml("killtest");

let dir: string;
let config: string;

beforeAll(() => {
  ensureCliBuilt();
  dir = mkdtempSync(join(tmpdir(), "midtrain-cli-proc-"));
  config = join(dir, "killtest.yaml");
  writeFileSync(config, CONFIG);
}, 300_000);
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** results.json without what differs between any two runs (times, wall-clock notes). */
function results(out: string) {
  const r = JSON.parse(readFileSync(join(out, "results.json"), "utf8"));
  delete r.createdAt;
  delete r.wallSeconds;
  delete r.device;
  r.notes = (r.notes as string[]).filter((n) => !/wall time/.test(n));
  return r;
}

/** finishedAt of every outcome file in a run folder, by path. */
function outcomes(out: string): Map<string, string> {
  const found = new Map<string, string>();
  const walk = (d: string) => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      const p = join(d, e.name);
      if (e.isDirectory()) walk(p);
      else if (/^outcome.*\.json$/.test(e.name)) found.set(p, JSON.parse(readFileSync(p, "utf8")).finishedAt);
    }
  };
  if (existsSync(out)) walk(out);
  return found;
}

/** Every train step of a metrics file appears once, in order, from 1 to `last`. */
function expectEachStepOnce(path: string, first: number, last: number) {
  const steps = trainSteps(path);
  expect(steps).toEqual(Array.from({ length: last - first + 1 }, (_, i) => first + i));
}

/** Process ids whose parent is `pid` (Linux /proc). */
function childrenOf(pid: number): number[] {
  return readdirSync("/proc")
    .filter((n) => /^\d+$/.test(n))
    .filter((n) => {
      try {
        // The parent pid is the 2nd field after the parenthesised command name.
        const stat = readFileSync(`/proc/${n}/stat`, "utf8");
        return Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]) === pid;
      } catch {
        return false;
      }
    })
    .map(Number);
}

async function pause(ms: number) {
  await new Promise((r) => setTimeout(r, ms));
}

describe("midtrain run as a process", () => {
  let reference: unknown;

  it("an uninterrupted run in one process (the reference), then a rerun that starts no worker and exits 0", async () => {
    const out = join(dir, "reference");
    const first = await runCli(["run", config, "--out", out, "--jobs", "1"]);
    expect(first.stderr).not.toMatch(/Error/);
    expect(first.code).toBe(0);
    reference = results(out);
    expect(JSON.stringify(reference)).toMatch(/"rows":\[\{/);
    const before = outcomes(out);
    expect(before.size).toBe(2 + 1 + 4);
    const again = await runCli(["run", config, "--out", out, "--jobs", "2"]);
    expect(again.code).toBe(0);
    expect(again.stdout).toMatch(/report: /);
    expect(again.stderr).not.toMatch(/worker|Error/);
    expect(outcomes(out)).toEqual(before);
  });

  it("SIGKILL during the trunk, a branch, a checkpoint write and an SFT run, rerun each time: identical results.json, nothing finished redone", async () => {
    const out = join(dir, "killed");
    const trunk = join(out, "p1/trunk/metrics.jsonl");
    const branch = join(out, "p1/branches/mid/metrics.jsonl");
    const finishedBefore: Array<Map<string, string>> = [];
    const kill = async (what: string, cond: () => boolean) => {
      const run = startCli(["run", config, "--out", out, "--jobs", "2"]);
      await waitFor(run, what, cond);
      killGroup(run.child, "SIGKILL");
      expect((await run.exit).signal).toBe("SIGKILL");
      await pause(200);
      finishedBefore.push(outcomes(out));
    };

    // 1. while a checkpoint is being written: the moment the trunk's first temporary checkpoint folder appears.
    const ckpts = join(out, "p1/trunk/checkpoints");
    mkdirSync(ckpts, { recursive: true });
    const run1 = startCli(["run", config, "--out", out, "--jobs", "2"]);
    let hit = false;
    const watcher = watch(ckpts, (_e, name) => {
      if (!hit && name?.startsWith(".tmp-")) {
        hit = true;
        killGroup(run1.child, "SIGKILL");
      }
    });
    await run1.exit;
    watcher.close();
    expect(hit).toBe(true);
    await pause(200);
    finishedBefore.push(outcomes(out));
    expect(finishedBefore[0].size).toBe(0);
    // 2. during the trunk's first segment, between checkpoints (every 4 steps).
    await kill("trunk step 6", () => Math.max(0, ...trainSteps(trunk)) >= 6);
    // 3. during the branch (it starts at step 12 from the trunk's checkpoint).
    await kill("branch step 15", () => Math.max(0, ...trainSteps(branch)) >= 15);
    // A torn write as a kill leaves it (a hidden temporary folder with a partial file), from a
    // process id that cannot be alive.
    const torn = join(ckpts, ".tmp-ckpt-99-99999999-dead");
    mkdirSync(torn, { recursive: true });
    writeFileSync(join(torn, "model.safetensors"), Buffer.alloc(100, 7));
    // 4. during an SFT run.
    const sftRoot = join(out, "p1/sft");
    const sftTraining = () =>
      existsSync(sftRoot) &&
      readdirSync(sftRoot, { recursive: true, withFileTypes: true }).some(
        (e) => e.name === "metrics.jsonl" && trainSteps(join(e.parentPath, e.name)).length >= 2,
      );
    await kill("an SFT run's second step", sftTraining);

    const last = await runCli(["run", config, "--out", out, "--jobs", "2"]);
    expect(last.stderr).not.toMatch(/Error/);
    expect(last.code).toBe(0);
    expect(results(out)).toEqual(reference);
    // Every job that had finished before a kill kept its outcome (it was not run again).
    const final = outcomes(out);
    for (const before of finishedBefore) for (const [p, t] of before) expect(final.get(p)).toBe(t);
    expect(final.size).toBe(7);
    // Each step's record is written once although steps after a checkpoint were redone.
    expectEachStepOnce(trunk, 1, 30);
    expectEachStepOnce(branch, 13, 30);
    // Temporary folders of killed writes are gone.
    expect(readdirSync(ckpts).filter((n) => n.startsWith("."))).toEqual([]);
  });

  it("SIGTERM checkpoints, exits with 143 and releases the folder; the rerun finishes with the same results", async () => {
    const out = join(dir, "term");
    // Two workers: the parent passes the signal on to them.
    const run = startCli(["run", config, "--out", out, "--jobs", "2"]);
    const trunk = join(out, "p1/trunk/metrics.jsonl");
    await waitFor(run, "trunk step 6", () => Math.max(0, ...trainSteps(trunk)) >= 6);
    run.child.kill("SIGTERM");
    const e = await run.exit;
    expect(e.code).toBe(143);
    expect(e.stderr).toMatch(/stopped by SIGTERM; checkpoints are saved/);
    const stopped = trainSteps(trunk).at(-1)!;
    expect(readdirSync(join(out, "p1/trunk/checkpoints"))).toContain(`ckpt-${stopped}`);
    expect(existsSync(join(out, ".run.lock"))).toBe(false);
    const rerun = await runCli(["run", config, "--out", out, "--jobs", "1"]);
    expect(rerun.code).toBe(0);
    expect(results(out)).toEqual(reference);
  });

  it("a second run on the same folder is refused while the first lives, and takes over after the first is killed", async () => {
    const out = join(dir, "locked");
    const first = startCli(["run", config, "--out", out, "--jobs", "1"]);
    await waitFor(first, "the first run to train", () => trainSteps(join(out, "p1/trunk/metrics.jsonl")).length >= 2);
    const second = await runCli(["run", config, "--out", out, "--jobs", "1"]);
    expect(second.code).toBe(1);
    expect(second.stderr).toMatch(new RegExp(`is in use by another midtrain run \\(pid ${first.child.pid} `));
    killGroup(first.child, "SIGKILL");
    await first.exit;
    // The stale lock of a dead process on this host is taken over at once.
    const third = await runCli(["run", config, "--out", out, "--jobs", "1"]);
    expect(third.code).toBe(0);
    expect(results(out)).toEqual(reference);
  });

  it("a worker killed on its own is reported with its job and signal; the rerun finishes with the same results", async () => {
    const out = join(dir, "worker-crash");
    const run = startCli(["run", config, "--out", out, "--jobs", "2"]);
    await waitFor(run, "the trunk to train", () => trainSteps(join(out, "p1/trunk/metrics.jsonl")).length >= 3);
    const workers = childrenOf(run.child.pid!);
    expect(workers.length).toBeGreaterThan(0);
    for (const pid of workers) process.kill(pid, "SIGKILL");
    const e = await run.exit;
    expect(e.code).toBe(1);
    expect(e.stderr).toMatch(/the worker running \S+ was killed by SIGKILL/);
    expect(e.stderr).not.toMatch(/IPC channel|ERR_IPC/);
    const rerun = await runCli(["run", config, "--out", out, "--jobs", "2"]);
    expect(rerun.code).toBe(0);
    expect(results(out)).toEqual(reference);
  });

  it("bad flags and paths fail before anything is written", async () => {
    for (const bad of ["0", "-3", "abc", "1.5"]) {
      const r = await runCli(["run", config, "--out", join(dir, "never"), "--jobs", bad]);
      expect(r.code).not.toBe(0);
      expect(r.stderr).toMatch(/--jobs|jobs/);
    }
    expect(existsSync(join(dir, "never"))).toBe(false);
    const proc = await runCli(["run", config, "--out", "/proc/self/midtrain-out"], { timeoutMs: 30_000 });
    expect(proc.code).toBe(1);
    expect(proc.stderr).toMatch(/kernel pseudo file system/);
  });
});
