import { mkdtemp, readFile, readdir, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { sampleResults } from "../helpers/sample-results.js";
import { resultsToCsv } from "../../src/report/table.js";
import { writeReport } from "../../src/report/write.js";

const dirs: string[] = [];
afterEach(async () => {
  for (const d of dirs.splice(0)) await rm(d, { recursive: true, force: true });
});

describe("writeReport", () => {
  it("writes report.html, results.csv and results.json (creating the folder), no temp files left", async () => {
    const base = await mkdtemp(join(tmpdir(), "midtrain-report-"));
    dirs.push(base);
    const dir = join(base, "nested", "out");
    const res = sampleResults();
    const paths = await writeReport(dir, res);
    expect(paths).toEqual({
      html: join(dir, "report.html"),
      csv: join(dir, "results.csv"),
      json: join(dir, "results.json"),
    });
    expect((await readdir(dir)).sort()).toEqual(["report.html", "results.csv", "results.json"]);
    expect(JSON.parse(await readFile(paths.json, "utf8"))).toEqual(res);
    expect(await readFile(paths.csv, "utf8")).toBe(resultsToCsv(res));
    expect(await readFile(paths.html, "utf8")).toContain("<svg");
    // Overwrites in place.
    await writeReport(dir, { ...res, name: "second" });
    expect(JSON.parse(await readFile(paths.json, "utf8")).name).toBe("second");
    expect((await readdir(dir)).length).toBe(3);
  });
});
