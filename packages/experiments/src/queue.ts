/**
 * `@midtrain/experiments/queue` (Node): distributed sweeps on BullMQ + Redis, what `midtrain run
 * --queue`, `midtrain worker` and `midtrain status` do. A subpath of its own, so that nothing
 * else loads BullMQ and ioredis.
 */
export { QueueError, QueueUnreachableError } from "./queue/redis.js";
export { StorageError } from "./queue/storage.js";
export { type EnqueueOptions, type EnqueueResult, enqueueSweep, readyJobs, SweepConflictError, type SweepJobData } from "./queue/sweep.js";
export { type QueueWorkerOptions, type QueueWorkerSummary, runQueueWorker, type SweepJobProgress, WorkerVersionError } from "./queue/worker.js";
export { formatQueueStatus, queueStatus, type SweepStatus } from "./queue/status.js";
