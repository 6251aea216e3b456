import {
  type ExperimentJob,
  type ExperimentResults,
  type JobProgress,
  PALETTE,
  formatResultsTable,
  lineChart,
  planExperiment,
  planJobs,
  renderReportHtml,
  runExperiment,
} from "@midtrain/experiments";
import type { TrainRecord } from "@midtrain/trainer";
import { getBackend } from "@tensorflow/tfjs-core";
import { PAGE_BACKENDS, type PageBackend, pickBackend } from "./backend.js";
import { configHash, loadConfig, shrinkFromUrl } from "./config.js";
import { loadBrowserData } from "./data.js";
import { browserEnv } from "./env.js";
import { allCheckpoints, deleteRunDb, openRunDb } from "./idb.js";
// The study config's text (vite.config.ts: MIDTRAIN_STUDY, else examples/micro-study/micro-study.yaml).
import studyYaml, { fileName as studyFile } from "virtual:midtrain-study";

/** What the page exposes on `window.__midtrain` (the browser test reads it). */
export interface PageState {
  status: "loading" | "running" | "stopped" | "done" | "error";
  backend?: PageBackend;
  backendDescription?: string;
  /** tfjs's active backend while training (read at every step). */
  tfBackend?: string;
  fallbacks: string[];
  config?: string;
  /** Every training step this page load ran, in order. */
  steps: Array<{ job: string; phase: string; step: number; loss: number; ms: number }>;
  /** Job starts and ends of this page load (ms since the page started). */
  jobEvents: Array<{ event: "start" | "done"; job: string; ms: number }>;
  /** Jobs whose outcome already existed when this page load started. */
  skipped: string[];
  error?: string;
  results?: { rows: number; table: string };
  /** Complete checkpoints in IndexedDB, newest write first. */
  checkpoints(): Promise<Array<{ storage: string; id: string; step?: number }>>;
}

const $ = <T extends HTMLElement = HTMLElement>(id: string) => document.getElementById(id) as T;
const params = new URLSearchParams(location.search);
// Relative to the page in a build (base "./"), so the folder can be served from any path.
const corporaBase = `${import.meta.env.BASE_URL}corpora/`;

const state: PageState = { status: "loading", fallbacks: [], steps: [], jobEvents: [], skipped: [], checkpoints: async () => [] };
(window as unknown as { __midtrain: PageState }).__midtrain = state;

function setStatus(text: string, kind: PageState["status"] = state.status): void {
  state.status = kind;
  const el = $("status");
  el.textContent = text;
  el.className = kind;
}

// ---- live charts: one per phase/branch (trunk segments join into "pretrain"; SFT per domain)
const curves = new Map<string, Map<string, Map<number, number>>>();
function addPoint(job: string, step: number, loss: number): void {
  const { chart, series } = chartKey(job);
  if (!curves.has(chart)) curves.set(chart, new Map());
  const c = curves.get(chart)!;
  if (!c.has(series)) c.set(series, new Map());
  c.get(series)!.set(step, loss);
}
function chartKey(job: string): { chart: string; series: string } {
  if (job.startsWith("trunk@")) return { chart: "pretrain", series: "trunk" };
  if (job.startsWith("branch@")) return { chart: `branch ${job.split("/").slice(1).join("/")}`, series: "branch" };
  // sft@p1/<branch>/<domain>/lr<lr>/s<seed>
  const [, branch, domain, lr, seed] = job.split("/");
  return { chart: `SFT ${domain}`, series: `${branch} ${lr} ${seed}` };
}
let drawPending = false;
function drawCharts(): void {
  if (drawPending) return;
  drawPending = true;
  setTimeout(() => {
    drawPending = false;
    const html: string[] = [];
    for (const [chart, series] of curves) {
      const names = [...series.keys()];
      html.push(
        lineChart({
          title: chart,
          xLabel: "step",
          yLabel: "train loss (nats/token)",
          width: 420,
          height: 240,
          series: names.map((n, i) => ({ points: [...series.get(n)!].sort((a, b) => a[0] - b[0]), color: PALETTE[i % PALETTE.length], title: n })),
          legend: names.length > 1 ? names.map((n, i) => ({ label: n, color: PALETTE[i % PALETTE.length] })) : [],
        }),
      );
    }
    $("charts").innerHTML = html.join("");
  }, 250);
}
function onProgress(p: JobProgress): void {
  state.tfBackend = getBackend();
  state.steps.push({ job: p.job, phase: p.phase, step: p.step, loss: p.loss, ms: Math.round(performance.now()) });
  addPoint(p.job, p.step, p.loss);
  setStatus(`${p.job}: step ${p.step}/${p.endStep}  loss ${p.loss.toFixed(4)}  ${Math.round(p.tokensPerSec)} tok/s`);
  drawCharts();
}

function listJobs(jobs: ExperimentJob[], done: Set<string>, running: Set<string>): void {
  $("jobs").innerHTML = jobs.map((j) => `<li class="${done.has(j.id) ? "done" : running.has(j.id) ? "running" : "pending"}">${j.id}</li>`).join("");
}

async function main(): Promise<void> {
  const shrink = shrinkFromUrl(params);
  const config = loadConfig(studyYaml, shrink, studyFile);
  const plan = planExperiment(config);
  const jobs = planJobs(plan);
  // An epochs-based SFT length is known once the sets are loaded: counted as 0 here.
  const totalSteps =
    plan.trunk.steps + plan.branches.reduce((s, b) => s + b.stepsLeft, 0) + plan.sftRuns.reduce((s, r) => s + (plan.sftSteps(r.domain) ?? 0), 0);
  state.config = config.name;
  $("config-line").textContent =
    `${config.name} (${studyFile}${shrink ? ", shrunk by ?smoke=1" : ""}): ` + `${jobs.length} jobs, ${totalSteps} training steps in total`;

  const forced = params.get("backend") as PageBackend | null;
  if (forced && !PAGE_BACKENDS.includes(forced)) throw new Error(`?backend= must be one of ${PAGE_BACKENDS.join(", ")}`);
  const picked = await pickBackend(forced ?? undefined);
  state.backend = picked.backend;
  state.backendDescription = picked.description;
  state.fallbacks = picked.fallbacks;
  const line = $("backend-line");
  line.textContent = `Backend: ${picked.backend} — ${picked.description}`;
  if (picked.fallbacks.length) {
    line.textContent += `. Fell back because ${picked.fallbacks.join("; ")}`;
    line.classList.add("fallback");
  }

  const dbName = `midtrain-${config.name}-${configHash(config)}`;
  const db = await openRunDb(dbName);
  state.checkpoints = () => allCheckpoints(db);
  const env = browserEnv(db, (c) => loadBrowserData(c, corporaBase, (s) => setStatus(s)));

  const done = new Set<string>();
  const running = new Set<string>();
  for (const j of jobs) if (await env.readJson(j.outcome)) done.add(j.id);
  state.skipped = [...done];
  listJobs(jobs, done, running);
  // After a reload, the charts start from what earlier visits logged (every logEvery steps).
  const dirs = new Map(jobs.map((j) => [j.dir, j.id])); // the trunk's segments share one folder
  for (const [dir, job] of dirs) {
    for (const r of await env.readMetrics(`${dir}/metrics.jsonl`)) {
      if (r.type === "train") addPoint(job, (r as TrainRecord).step, (r as TrainRecord).loss);
    }
  }
  drawCharts();

  let controller: AbortController | undefined;
  const start = async () => {
    if (controller) return;
    controller = new AbortController();
    $<HTMLButtonElement>("start").disabled = true;
    $<HTMLButtonElement>("stop").disabled = false;
    setStatus("loading data…", "running");
    try {
      const results: ExperimentResults = await runExperiment(config, {
        env,
        concurrency: 1,
        signal: controller.signal,
        backend: picked.backend,
        device: picked.description,
        onProgress,
        onJob: (event, job) => {
          state.jobEvents.push({ event, job: job.id, ms: Math.round(performance.now()) });
          if (event === "start") running.add(job.id);
          else {
            running.delete(job.id);
            done.add(job.id);
          }
          listJobs(jobs, done, running);
        },
      });
      const table = formatResultsTable(results);
      $("results-table").textContent = table;
      $<HTMLIFrameElement>("report").srcdoc = renderReportHtml(results);
      $("results").hidden = false;
      state.results = { rows: results.rows.length, table };
      setStatus(`finished: ${results.rows.length} result rows in ${results.wallSeconds?.toFixed(0)} s`, "done");
    } catch (e) {
      if (controller.signal.aborted) setStatus("stopped; the latest checkpoint is in IndexedDB — reload or press Start to resume", "stopped");
      else {
        state.error = (e as Error).stack ?? String(e);
        setStatus(`error: ${(e as Error).message}`, "error");
      }
    } finally {
      controller = undefined;
      running.clear();
      $<HTMLButtonElement>("start").disabled = false;
      $<HTMLButtonElement>("stop").disabled = true;
    }
  };
  $("start").onclick = () => void start();
  $("stop").onclick = () => {
    controller?.abort();
    setStatus("stopping after this step…");
  };
  $("download").onclick = async () => {
    const latest = (await allCheckpoints(db))[0];
    if (!latest) {
      setStatus("no checkpoint yet: train a few steps first");
      return;
    }
    const bytes = await env.storage(latest.storage).read(latest.id, "model.safetensors");
    const a = document.createElement("a");
    a.href = URL.createObjectURL(new Blob([bytes as Uint8Array<ArrayBuffer>], { type: "application/octet-stream" }));
    a.download = `${config.name}-${latest.storage.split("/").slice(0, -1).join("-")}-${latest.id}.safetensors`;
    a.click();
    setTimeout(() => URL.revokeObjectURL(a.href), 10_000);
  };
  $("reset").onclick = async () => {
    controller?.abort();
    db.close();
    await deleteRunDb(dbName);
    location.reload();
  };
  if (params.get("autostart") !== "0") await start();
  else setStatus("ready: press Start", "stopped");
}

main().catch((e) => {
  state.error = (e as Error).stack ?? String(e);
  setStatus(`error: ${(e as Error).message}`, "error");
});
