import { describe, expect, it } from "vitest";
import { type Job, runJobs } from "../src/pool.js";

const job = (id: string, deps: string[] = [], cost = 1): Job => ({ id, deps, cost });

describe("runJobs", () => {
  it("respects dependencies and the concurrency limit, and skips done jobs", async () => {
    const order: string[] = [];
    let running = 0;
    let peak = 0;
    const jobs = [job("trunk", [], 10), job("a", ["trunk"], 3), job("b", ["trunk"], 5), job("c", ["a", "b"]), job("old")];
    await runJobs(
      jobs,
      async (j) => {
        running++;
        peak = Math.max(peak, running);
        order.push(`start ${j.id}`);
        await new Promise((r) => setTimeout(r, 5));
        order.push(`end ${j.id}`);
        running--;
      },
      { concurrency: 2, done: new Set(["old"]) },
    );
    expect(peak).toBe(2);
    expect(order.indexOf("start a")).toBeGreaterThan(order.indexOf("end trunk"));
    expect(order.indexOf("start c")).toBeGreaterThan(Math.max(order.indexOf("end a"), order.indexOf("end b")));
    expect(order.indexOf("start b")).toBeLessThan(order.indexOf("start a")); // costlier first
    expect(order).not.toContain("start old");
  });
  it("stops starting jobs after a failure and rethrows it", async () => {
    const started: string[] = [];
    const err = await runJobs(
      [job("x"), job("y", ["x"])],
      async (j) => {
        started.push(j.id);
        throw new Error(`boom ${j.id}`);
      },
      { concurrency: 2 },
    ).catch((e) => e);
    expect(err.message).toBe("boom x");
    expect(started).toEqual(["x"]);
  });
  it("rejects unknown dependencies", async () => {
    await expect(runJobs([job("x", ["nope"])], async () => {}, { concurrency: 1 })).rejects.toThrow(/unknown job nope/);
  });
});
