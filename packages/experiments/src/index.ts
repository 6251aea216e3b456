/**
 * The public, browser-safe API of `@midtrain/experiments` (Node-only parts are in `./node.ts`,
 * `@midtrain/experiments/node`): parse and plan a config, run it on a `RunEnv`, read the results
 * back and render them. One job is run by `executeJob`, what every scheduler calls (the local
 * runner and the queue workers); the job pool, aggregation and the report's building blocks are internal.
 */
export {
  type BranchConfig,
  type ExperimentConfig,
  type ExperimentConfigInput,
  experimentSchema,
  parseExperimentConfig,
} from "./config.js";
export { ConfigError, ExperimentError } from "./errors.js";
export { type BranchPlan, describePlan, type ExperimentPlan, planExperiment, type ScheduleJson, type SftRunPlan } from "./plan.js";
export type { ExperimentData, RunEnv } from "./env.js";
export { buildExperimentData, type SourceRequest } from "./data.js";
export { type ExperimentJob, executeJob, JobInterruptedError, type JobContext, type JobKind, type JobOutcome, type JobProgress, planJobs } from "./jobs.js";
export { collectResults, finishedJobs, type RunOptions, runExperiment } from "./runner.js";
export { experimentRegistry } from "./plugins.js";
export { proximityTable } from "./proximity.js";
export { computeFindings, type Finding, type FindingKind, type FindingsOptions } from "./findings.js";
export * from "./report/render.js";
