/**
 * Real processes: a training process killed with SIGKILL between checkpoints and resumed in a
 * new process gives bitwise-equal losses; SIGTERM makes a training process checkpoint and exit
 * cleanly. The child runs a bundle of the current sources (built here with tsup), not dist/.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { buildLrSchedule } from "@midtrain/schedulers";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { bundleSources } from "../../../test-utils/bundle-sources.js";
import { AdamW, listCheckpoints, loadCheckpoint, MemorySink, type TrainRecord, trainPhase } from "../src/index.js";
import { FsStorage, readJsonl } from "../src/node.js";
import { bitDiff, cpu, mixerFor, paramValues, sources, tinyModel } from "./helpers.js";

const pkg = resolve(import.meta.dirname, "..");
const LR = { type: "cosine", peak: 1e-2, min: 1e-3, warmup: 2, total: 12 };
let dir: string;
let bundle: string;

beforeAll(async () => {
  await cpu();
  dir = mkdtempSync(join(tmpdir(), "midtrain-proc-"));
  await bundleSources({ child: join(pkg, "test/fixtures/child-entry.ts") }, dir);
  bundle = join(dir, "child.js");
}, 120_000);

afterAll(() => rmSync(dir, { recursive: true, force: true }));

function startChild(
  name: string,
  cfg: Record<string, unknown>,
): { child: ChildProcess; exit: Promise<{ code: number | null; signal: string | null; stderr: string }> } {
  const cfgPath = join(dir, `${name}.json`);
  writeFileSync(cfgPath, JSON.stringify(cfg));
  const child = spawn(process.execPath, [join(pkg, "test/fixtures/child-train.mjs"), bundle, cfgPath], { stdio: ["ignore", "ignore", "pipe"] });
  let stderr = "";
  child.stderr!.on("data", (d) => {
    stderr += d;
  });
  const watchdog = setTimeout(() => child.kill("SIGKILL"), 90_000);
  const exit = new Promise<{ code: number | null; signal: string | null; stderr: string }>((res) =>
    child.on("exit", (code, signal) => {
      clearTimeout(watchdog);
      res({ code, signal, stderr });
    }),
  );
  return { child, exit };
}

async function waitForStep(path: string, step: number, exit: Promise<unknown>): Promise<void> {
  let done = false;
  void exit.then(() => {
    done = true;
  });
  for (;;) {
    if (
      existsSync(path) &&
      readFileSync(path, "utf8")
        .split("\n")
        .some((l) => l.includes('"type":"train"') && JSON.parse(l).step === step)
    )
      return;
    if (done) throw new Error(`child exited before step ${step}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

const trainLosses = async (path: string) => ((await readJsonl(path)).filter((r) => r.type === "train") as TrainRecord[]).map((r) => [r.step, r.loss]);

describe("training processes", () => {
  it.each([
    ["", false],
    [" (optimizer offloaded to host memory)", true],
  ])("SIGKILL between checkpoints, then resume in a new process%s: losses and weights are bitwise equal to an uninterrupted run", async (_what, offload) => {
    const tag = offload ? "-offload" : "";
    // Uninterrupted reference, in this process.
    const refModel = tinyModel();
    const refSink = new MemorySink();
    await trainPhase({
      model: refModel,
      mixer: mixerFor(sources(), { general: 1 }, { only: ["general"] }),
      optimizer: new AdamW({ offload }),
      lr: buildLrSchedule(LR),
      phase: { name: "pretrain", steps: 12, batchSize: 4, gradAccum: 2 },
      metrics: refSink,
    });
    const ref = refSink.of("train").map((r) => [r.step, r.loss]);

    const ckDir = join(dir, `killed${tag}`);
    const m1 = join(dir, `killed${tag}.jsonl`);
    const a = startChild(`killed${tag}`, { mode: "fresh", dir: ckDir, metrics: m1, steps: 12, every: 4, lr: LR, pauseAt: 6, pause: "hang", offload });
    await waitForStep(m1, 6, a.exit);
    a.child.kill("SIGKILL");
    const ea = await a.exit;
    expect(ea.signal).toBe("SIGKILL");
    const storage = new FsStorage(ckDir);
    expect((await listCheckpoints(storage)).map((c) => c.id)).toEqual(["ckpt-4"]);
    expect(await trainLosses(m1)).toEqual(ref.slice(0, 6));

    const m2 = join(dir, `resumed${tag}.jsonl`);
    const b = startChild(`resumed${tag}`, { mode: "resume", dir: ckDir, metrics: m2, every: 4, out: join(dir, `resumed${tag}-out.json`), offload });
    const eb = await b.exit;
    expect(eb.stderr).not.toMatch(/Error/);
    expect(eb.code).toBe(0);
    const resumed = await trainLosses(m2);
    expect(resumed.map(([s]) => s)).toEqual([5, 6, 7, 8, 9, 10, 11, 12]);
    resumed.forEach(([s, l], i) => {
      expect(s).toBe(ref[4 + i][0]);
      expect(Object.is(l, ref[4 + i][1])).toBe(true);
    });
    const out = JSON.parse(readFileSync(join(dir, `resumed${tag}-out.json`), "utf8"));
    expect(out.pid).not.toBe(process.pid);
    expect(out.summary.lastCheckpoint).toBe("ckpt-12");
    const final = await loadCheckpoint(storage, "ckpt-12");
    const [x, y] = [await paramValues(refModel), await paramValues(final.model)];
    for (const [k, v] of x) expect(bitDiff(v, y.get(k)!)).toBe(0);
    final.model.dispose();
    refModel.dispose();
  });

  it("SIGTERM makes a busy training process checkpoint at its current step and exit with code 0", async () => {
    const ckDir = join(dir, "term");
    const m = join(dir, "term.jsonl");
    const outPath = join(dir, "term-out.json");
    // No pause, and metrics written synchronously: the signal arrives while the child trains,
    // so the loop itself must let the handler run (it would otherwise finish all 300 steps).
    const c = startChild("term", { mode: "fresh", dir: ckDir, metrics: m, steps: 300, every: 1000, lr: LR, syncLog: true, out: outPath });
    await waitForStep(m, 3, c.exit);
    c.child.kill("SIGTERM");
    const e = await c.exit;
    expect(e.signal).toBeNull();
    expect(e.code).toBe(0);
    const out = JSON.parse(readFileSync(outPath, "utf8"));
    expect(out.signal).toBe("SIGTERM");
    expect(out.summary.stopped).toBe("aborted");
    const step = out.summary.time.step;
    expect(step).toBeGreaterThanOrEqual(3);
    expect(step).toBeLessThan(300);
    const storage = new FsStorage(ckDir);
    expect((await listCheckpoints(storage)).map((x) => x.id)).toEqual([`ckpt-${step}`]);
    const recs = await readJsonl(m);
    expect(recs.at(-1)).toMatchObject({ type: "stop", reason: "aborted", step, lastCheckpoint: `ckpt-${step}` });
    expect(recs.filter((r) => r.type === "train").at(-1)).toMatchObject({ step });
  });
});
