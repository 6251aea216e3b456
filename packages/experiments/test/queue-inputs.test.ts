/**
 * Bad input to the queue commands: each is refused with an error that names what is wrong,
 * before anything is enqueued or written (nothing here trains).
 */
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Redis } from "ioredis";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadExperimentConfig, nodeExperimentRegistry } from "../src/node.js";
import { STORAGE_MARKER } from "../src/queue/storage.js";
import { enqueueSweep } from "../src/queue/sweep.js";
import { ensureCliBuilt, runCli, startCli, trainSteps, waitFor } from "./helpers/cli-process.js";
import { startRedis, type TestRedis } from "./helpers/redis.js";

const CONFIG = (steps: number) => `
name: qinputs
seed: 1
backend: cpu
model: { preset: tiny-1m, overrides: { dModel: 16, nLayer: 1, nHead: 2, seqLen: 64 } }
data:
  seqLen: 16
  general: general
  sources:
    general: { corpus: general, maxDocuments: 20 }
    code: { corpus: code, maxDocuments: 20 }
pretrain: { steps: ${steps}, batchSize: 2, lr: { type: constant, value: 0.001 } }
branches:
  - { name: baseline, kind: baseline }
  - { name: mid, kind: midtrain, source: code, weight: 0.5, start: 0.5 }
`;

let dir: string;
let config: string;
let redis: TestRedis;
let client: Redis;
const version = JSON.parse(readFileSync(join(import.meta.dirname, "../package.json"), "utf8")).version as string;

beforeAll(async () => {
  ensureCliBuilt();
  dir = mkdtempSync(join(tmpdir(), "midtrain-queue-inputs-"));
  config = join(dir, "qinputs.yaml");
  writeFileSync(config, CONFIG(20));
  redis = await startRedis();
  client = new Redis(redis.url);
}, 300_000);
afterAll(async () => {
  client?.disconnect();
  await redis?.stop();
  rmSync(dir, { recursive: true, force: true });
});

/** Job ids in the queue, whatever their state. */
async function queued(): Promise<string[]> {
  return (await client.keys("bull:midtrain:qinputs|*")).filter((k) => !/:(logs|lock)$/.test(k)).sort();
}

describe("queue commands refuse bad input", () => {
  it("an unreachable Redis: the error names the URL; nothing is created", async () => {
    const dead = "redis://127.0.0.1:1";
    const storage = join(dir, "never");
    const r = await runCli(["run", config, "--queue", dead, "--storage", storage]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/cannot reach Redis at redis:\/\/127\.0\.0\.1:1 \(connect ECONNREFUSED 127\.0\.0\.1:1\)/);
    expect(existsSync(storage)).toBe(false);
    const w = await runCli(["worker", "--queue", dead, "--storage", storage]);
    expect(w.code).toBe(1);
    expect(w.stderr).toMatch(/cannot reach Redis at redis:\/\/127\.0\.0\.1:1/);
    const s = await runCli(["status", "--queue", dead]);
    expect(s.code).toBe(1);
    expect(s.stderr).toMatch(/cannot reach Redis at redis:\/\/127\.0\.0\.1:1/);
    const bad = await runCli(["status", "--queue", "http://127.0.0.1:6379"]);
    expect(bad.code).not.toBe(0);
    expect(bad.stderr).toMatch(/is not a redis:\/\/ URL/);
  });

  it("a worker before any sweep, --queue without --storage, --out or --jobs with --queue, a storage path that is a file", async () => {
    const w = await runCli(["worker", "--queue", redis.url, "--storage", join(dir, "s0")]);
    expect(w.code).toBe(1);
    expect(w.stderr).toMatch(/has no sweep yet/);
    const alone = await runCli(["run", config, "--queue", redis.url]);
    expect(alone.code).toBe(1);
    expect(alone.stderr).toMatch(/--queue and --storage go together/);
    const out = await runCli(["run", config, "--queue", redis.url, "--storage", join(dir, "s0"), "--out", join(dir, "o")]);
    expect(out.stderr).toMatch(/--out does not apply with --queue/);
    const jobs = await runCli(["run", config, "--queue", redis.url, "--storage", join(dir, "s0"), "--jobs", "2"]);
    expect(jobs.stderr).toMatch(/--jobs does not apply with --queue/);
    const file = join(dir, "a-file");
    writeFileSync(file, "x");
    const f = await runCli(["run", config, "--queue", redis.url, "--storage", join(file, "sub")]);
    expect(f.code).toBe(1);
    expect(f.stderr).toMatch(/cannot create --storage .*a-file\/sub/);
    expect(await queued()).toEqual([]);
  });

  it("a job that keeps failing is retried with backoff, then marked failed with its error (status shows it); enqueueing the config again retries it", async () => {
    const r2 = await startRedis();
    try {
      const storage = join(dir, "storage-fail");
      const path = join(dir, "qfail.yaml");
      writeFileSync(path, CONFIG(20).replace("name: qinputs", "name: qfail"));
      const cfg = await loadExperimentConfig(path);
      const res = await enqueueSweep({
        url: r2.url,
        storage,
        config: cfg,
        registry: await nodeExperimentRegistry(cfg),
        version,
        attempts: 2,
        backoffSeconds: 1,
      });
      expect(res.enqueued).toEqual(["trunk@p1:10"]);
      // The trunk's folder is a file: the job's first write fails, every time.
      const trunk = join(storage, "qfail/p1/trunk");
      mkdirSync(join(storage, "qfail/p1"), { recursive: true });
      writeFileSync(trunk, "not a folder");
      const w = await runCli(["worker", "--queue", r2.url, "--storage", storage]);
      expect(w.code, w.stderr).toBe(0);
      expect(w.stderr).toMatch(/start qfail trunk@p1:10 \(try 1\)[\s\S]*start qfail trunk@p1:10 \(try 2\)/);
      expect(w.stderr).toMatch(/0 job\(s\) done, 0 already done, 2 failed tries/);
      const st = await runCli(["status", "--queue", r2.url]);
      expect(st.stdout).toMatch(/sweep qfail .*: 0 active, 0 waiting, 0 prioritized, 0 delayed, 0 completed, 1 failed of 1 enqueued so far/);
      expect(st.stdout).toMatch(/FAILED {3}trunk@p1:10 {2}after 2 tries: .*(ENOTDIR|not a directory)/);
      rmSync(trunk);
      const again = await runCli(["run", path, "--queue", r2.url, "--storage", storage]);
      expect(again.code, again.stderr).toBe(0);
      expect(again.stdout).toMatch(/sweep qfail resumes: 0\/3 jobs done, nothing new to enqueue; failed jobs retried: trunk@p1:10\./);
      const st2 = JSON.parse((await runCli(["status", "--queue", r2.url, "--json"])).stdout);
      expect(st2[0].counts.failed).toBe(0);
      expect(st2[0].counts.waiting + st2[0].counts.prioritized).toBe(1);
    } finally {
      await r2.stop();
    }
  });

  it("the same sweep twice resumes it; a changed config under the same name is refused; another storage folder is refused; a worker on an unshared folder or of another version is refused naming both versions", async () => {
    const storage = join(dir, "storage");
    const first = await runCli(["run", config, "--queue", redis.url, "--storage", storage]);
    expect(first.code, first.stderr).toBe(0);
    expect(first.stdout).toMatch(/sweep qinputs is on the queue: 0\/3 jobs done, enqueued 1 job\(s\) that can run now \(trunk@p1:10\)/);
    const jobs = await queued();
    expect(jobs).toEqual(["bull:midtrain:qinputs|trunk@p1!10"]);
    const plan = readFileSync(join(storage, "qinputs/plan.json"), "utf8");

    const again = await runCli(["run", config, "--queue", redis.url, "--storage", storage]);
    expect(again.code).toBe(0);
    expect(again.stdout).toMatch(/sweep qinputs resumes: 0\/3 jobs done, nothing new to enqueue\./);
    expect(await queued()).toEqual(jobs);

    const changed = join(dir, "changed.yaml");
    writeFileSync(changed, CONFIG(24));
    const c = await runCli(["run", changed, "--queue", redis.url, "--storage", storage]);
    expect(c.code).toBe(1);
    expect(c.stderr).toMatch(new RegExp(`a sweep named qinputs is in the queue at ${redis.url} already \\(enqueued \\S+\\) with a different config`));
    expect(await queued()).toEqual(jobs);
    expect(readFileSync(join(storage, "qinputs/plan.json"), "utf8")).toBe(plan);

    const other = await runCli(["run", config, "--queue", redis.url, "--storage", join(dir, "other-storage")]);
    expect(other.code).toBe(1);
    expect(other.stderr).toMatch(/belongs to another storage folder/);

    const unshared = join(dir, "unshared");
    mkdirSync(unshared);
    const u = await runCli(["worker", "--queue", redis.url, "--storage", unshared]);
    expect(u.code).toBe(1);
    expect(u.stderr).toMatch(new RegExp(`--storage ${unshared} is not the sweep's shared storage: it has no ${STORAGE_MARKER.replace(".", "\\.")}`));
    writeFileSync(join(unshared, STORAGE_MARKER), JSON.stringify({ token: "someone-elses", createdAt: "" }));
    const u2 = await runCli(["worker", "--queue", redis.url, "--storage", unshared]);
    expect(u2.code).toBe(1);
    expect(u2.stderr).toMatch(/is another storage folder than the one the sweeps of .* use \(marker someone-elses/);

    await client.hset("midtrain-sweep:qinputs", "version", "0.0.0-other");
    const v = await runCli(["worker", "--queue", redis.url, "--storage", storage]);
    expect(v.code).toBe(1);
    expect(v.stderr).toMatch(
      new RegExp(
        `sweep qinputs in the queue at ${redis.url} was enqueued by midtrain 0\\.0\\.0-other; this worker is midtrain ${version.replaceAll(".", "\\.")}`,
      ),
    );
    const rv = await runCli(["run", config, "--queue", redis.url, "--storage", storage]);
    expect(rv.code).toBe(1);
    expect(rv.stderr).toMatch(/was enqueued by midtrain 0\.0\.0-other; this is midtrain/);
    // Nothing was trained by the refused worker.
    expect(existsSync(join(storage, "qinputs/p1"))).toBe(false);

    const st = JSON.parse((await runCli(["status", "--queue", redis.url, "--json"])).stdout);
    expect(st).toMatchObject([{ name: "qinputs", version: "0.0.0-other", counts: { prioritized: 1, active: 0, completed: 0, failed: 0 }, running: [] }]);
  });
});

describe("a worker stopped by SIGTERM", () => {
  it("its job checkpoints and goes back to the queue without using up a try; the next worker resumes it from that checkpoint", async () => {
    const r3 = await startRedis();
    try {
      const storage = join(dir, "storage-term");
      const path = join(dir, "qterm.yaml");
      writeFileSync(path, CONFIG(200).replace("name: qinputs", "name: qterm"));
      expect((await runCli(["run", path, "--queue", r3.url, "--storage", storage])).code).toBe(0);
      const trunk = join(storage, "qterm/p1/trunk/metrics.jsonl");
      const first = startCli(["worker", "--queue", r3.url, "--storage", storage]);
      await waitFor(first, "the trunk's step 5", () => Math.max(0, ...trainSteps(trunk)) >= 5);
      first.child.kill("SIGTERM");
      const e = await first.exit;
      expect(e.code, e.stderr).toBe(0);
      expect(e.stderr).toMatch(/trunk@p1:100 stopped with a checkpoint; it goes back to the queue/);
      const stopped = Math.max(...trainSteps(trunk));
      expect(stopped).toBeLessThan(100);
      expect(readdirSync(join(storage, "qterm/p1/trunk/checkpoints"))).toContain(`ckpt-${stopped}`);
      const st = await runCli(["status", "--queue", r3.url]);
      expect(st.stdout).toMatch(/0 active, 0 waiting, 0 prioritized, 1 delayed, 0 completed, 0 failed of 1/);
      expect(st.stdout).toMatch(/delayed {2}trunk@p1:100 {2}back on the queue after a stop/);

      const second = await runCli(["worker", "--queue", r3.url, "--storage", storage]);
      expect(second.code, second.stderr).toBe(0);
      expect(second.stderr).toMatch(/start qterm trunk@p1:100 \(try 1\)/);
      expect(second.stderr).toMatch(/the queue is drained: 4 job\(s\) done/);
      expect(trainSteps(trunk)).toEqual(Array.from({ length: 200 }, (_, i) => i + 1));
      // The second process began right after the checkpoint, not at step 1.
      const recs = readFileSync(trunk, "utf8")
        .split("\n")
        .filter((l) => l.includes('"type":"train"'))
        .map((l) => JSON.parse(l) as { step: number; elapsedMs: number; stepMs: number });
      const starts = recs.filter((r, i) => i === 0 || r.elapsedMs - r.stepMs < recs[i - 1].elapsedMs).map((r) => r.step);
      expect(starts).toEqual([1, stopped + 1, 101]);
    } finally {
      await r3.stop();
    }
  });
});
