import { randomBytes } from "node:crypto";
import { mkdir, rename, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { renderReportHtml } from "./html.js";
import { resultsToCsv } from "./table.js";
import type { ExperimentResults } from "./types.js";

/** Writes `path` atomically: a temporary file in the same folder, then a rename over the target. */
export async function writeFileAtomic(path: string, data: string): Promise<void> {
  const tmp = `${path}.tmp-${process.pid}-${randomBytes(4).toString("hex")}`;
  try {
    await writeFile(tmp, data, "utf8");
    await rename(tmp, path);
  } catch (e) {
    await rm(tmp, { force: true });
    throw e;
  }
}

/**
 * Writes `report.html`, `results.csv` and `results.json` into `dir` (created if missing), each
 * atomically, and returns their paths. Node only; the rendering itself lives in browser-safe modules.
 */
export async function writeReport(dir: string, results: ExperimentResults): Promise<{ html: string; csv: string; json: string }> {
  await mkdir(dir, { recursive: true });
  const paths = { html: join(dir, "report.html"), csv: join(dir, "results.csv"), json: join(dir, "results.json") };
  await writeFileAtomic(paths.json, `${JSON.stringify(results, null, 2)}\n`);
  await writeFileAtomic(paths.csv, resultsToCsv(results));
  await writeFileAtomic(paths.html, renderReportHtml(results));
  return paths;
}
