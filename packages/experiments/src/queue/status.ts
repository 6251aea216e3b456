/** `midtrain status`: what a queue's sweeps are doing, from BullMQ's job states and progress. */
import { Queue } from "bullmq";
import { connectRedis, QUEUE_NAME } from "./redis.js";
import { listSweeps, REPORT_JOB, type SweepJobData } from "./sweep.js";
import type { SweepJobProgress } from "./worker.js";

export const JOB_STATES = ["active", "waiting", "prioritized", "delayed", "completed", "failed"] as const;
export type JobState = (typeof JOB_STATES)[number];

export interface SweepStatus {
  name: string;
  version: string;
  createdAt: string;
  /** Jobs of the sweep in each state (the report job included). */
  counts: Record<JobState, number>;
  /** Running jobs with their last progress (absent before the first step). */
  running: Array<{ job: string; tries: number; progress?: SweepJobProgress }>;
  /** Jobs that used up their tries, with the error of the last one. */
  failed: Array<{ job: string; tries: number; reason: string }>;
  /** Jobs waiting for a retry (delayed) and the error that sent them there. */
  retrying: Array<{ job: string; tries: number; reason?: string }>;
}

/** The sweeps in the queue at `url` (or only `sweep`) with their jobs' states. */
export async function queueStatus(url: string, sweep?: string): Promise<SweepStatus[]> {
  const redis = await connectRedis(url);
  const queue = new Queue(QUEUE_NAME, { connection: redis });
  try {
    const sweeps = (await listSweeps(redis)).filter((s) => !sweep || s.name === sweep);
    const out = new Map<string, SweepStatus>(
      sweeps.map((s) => [
        s.name,
        {
          name: s.name,
          version: s.version,
          createdAt: s.createdAt,
          counts: Object.fromEntries(JOB_STATES.map((k) => [k, 0])) as Record<JobState, number>,
          running: [],
          failed: [],
          retrying: [],
        },
      ]),
    );
    for (const state of JOB_STATES) {
      for (const j of await queue.getJobs([state])) {
        if (!j) continue;
        const d = j.data as SweepJobData;
        const s = out.get(d.sweep);
        if (!s) continue;
        s.counts[state]++;
        const id = d.job ?? REPORT_JOB;
        if (state === "active") {
          const p = j.progress as SweepJobProgress | number;
          s.running.push({ job: id, tries: j.attemptsMade + 1, progress: typeof p === "object" && p ? p : undefined });
        } else if (state === "failed") s.failed.push({ job: id, tries: j.attemptsMade, reason: j.failedReason });
        else if (state === "delayed") s.retrying.push({ job: id, tries: j.attemptsMade, reason: j.failedReason || undefined });
      }
    }
    return [...out.values()];
  } finally {
    await queue.close();
    redis.disconnect();
  }
}

function fmtSeconds(s: number): string {
  if (!Number.isFinite(s)) return "--";
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const sec = Math.round(s % 60);
  return h ? `${h}h${String(m).padStart(2, "0")}m` : m ? `${m}m${String(sec).padStart(2, "0")}s` : `${sec}s`;
}

/** The status as text: one line of counts per sweep, then its running, retrying and failed jobs. */
export function formatQueueStatus(url: string, sweeps: readonly SweepStatus[]): string {
  if (!sweeps.length) return `no sweeps in the queue at ${url}`;
  const lines: string[] = [];
  for (const s of sweeps) {
    const total = Object.values(s.counts).reduce((a, b) => a + b, 0);
    lines.push(
      `sweep ${s.name} (midtrain ${s.version}, enqueued ${s.createdAt}): ${JOB_STATES.map((k) => `${s.counts[k]} ${k}`).join(", ")} of ${total} enqueued so far`,
    );
    for (const r of s.running) {
      const p = r.progress;
      if (!p) lines.push(`  running  ${r.job}  starting (try ${r.tries})`);
      else if (p.waitingFor) lines.push(`  running  ${r.job}  waiting for ${p.waitingFor} to let go of the job  [${p.worker}]`);
      else {
        lines.push(
          `  running  ${r.job}  ${p.phase} step ${p.step}/${p.endStep}  ${Math.round(p.tokensPerSec)} tok/s  loss ${p.loss.toFixed(3)}  ETA ${fmtSeconds(p.etaSeconds)}  [${p.worker}, try ${r.tries}]`,
        );
      }
    }
    for (const r of s.retrying) {
      // A delayed job without an error was stopped by a signal after a checkpoint (no try used up).
      if (!r.reason) lines.push(`  delayed  ${r.job}  back on the queue after a stop; it resumes from its checkpoint`);
      else lines.push(`  retry    ${r.job}  after ${r.tries} tr${r.tries === 1 ? "y" : "ies"}: ${r.reason.split("\n")[0]}`);
    }
    for (const f of s.failed) lines.push(`  FAILED   ${f.job}  after ${f.tries} tr${f.tries === 1 ? "y" : "ies"}: ${f.reason.split("\n")[0]}`);
  }
  return lines.join("\n");
}
