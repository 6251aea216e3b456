/**
 * The Redis side of a distributed sweep: the connection (checked before anything is written),
 * the queue's name and the keys midtrain keeps beside BullMQ's.
 */
import { Redis, type RedisOptions } from "ioredis";
import { ExperimentError } from "../errors.js";

/** The BullMQ queue every sweep of one Redis shares; jobs carry their sweep's name. */
export const QUEUE_NAME = "midtrain";
/** Hash of one sweep: its config, the project version that enqueued it, the storage marker. */
export const sweepKey = (name: string) => `midtrain-sweep:${name}`;
/** The set of sweep names in this Redis. */
export const SWEEPS_KEY = "midtrain-sweeps";
/** The marker token of the storage folder this Redis's sweeps write to. */
export const STORAGE_KEY = "midtrain-storage";

/** Something about the queue is wrong (its URL, a sweep's name or config, a version). */
export class QueueError extends ExperimentError {}

/** Redis cannot be reached at the given URL. */
export class QueueUnreachableError extends QueueError {
  constructor(
    readonly url: string,
    cause: string,
  ) {
    super(`cannot reach Redis at ${url} (${cause}); start redis-server there (appendonly yes, maxmemory-policy noeviction) or fix --queue`);
  }
}

/** Checks the form of a `--queue` URL: redis://HOST:PORT (or rediss:// for TLS), optionally with a database number. */
export function checkQueueUrl(url: string): string {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw new QueueError(`--queue ${url} is not a URL; expected redis://HOST:PORT`);
  }
  if (u.protocol !== "redis:" && u.protocol !== "rediss:") throw new QueueError(`--queue ${url} is not a redis:// URL; expected redis://HOST:PORT`);
  if (!u.hostname) throw new QueueError(`--queue ${url} names no host; expected redis://HOST:PORT`);
  return url;
}

/**
 * Connects to Redis and checks that it answers, within `timeoutMs`. `persistent` connections
 * (the workers') then reconnect forever when Redis goes away and wait for it on every command,
 * as BullMQ's workers require; the others fail fast.
 */
export async function connectRedis(url: string, opts: { persistent?: boolean; timeoutMs?: number } = {}): Promise<Redis> {
  checkQueueUrl(url);
  const timeoutMs = opts.timeoutMs ?? 5000;
  const probe = new Redis(url, {
    lazyConnect: true,
    connectTimeout: timeoutMs,
    maxRetriesPerRequest: 0,
    enableOfflineQueue: false,
    retryStrategy: () => null,
  });
  // The socket's own error (ECONNREFUSED, ENOTFOUND, a timeout) says more than the rejected connect.
  let cause: Error | undefined;
  probe.on("error", (e: Error) => {
    cause ??= e;
  });
  try {
    await probe.connect();
    await probe.ping();
  } catch (e) {
    probe.disconnect();
    throw new QueueUnreachableError(url, (cause ?? (e as Error)).message || String(e));
  }
  if (!opts.persistent) return probe;
  probe.disconnect();
  const options: RedisOptions = {
    connectTimeout: timeoutMs,
    maxRetriesPerRequest: null,
    // Back off up to 2 s between attempts, forever: a Redis restart is waited out.
    retryStrategy: (n) => Math.min(100 * n, 2000),
  };
  const redis = new Redis(url, options);
  redis.on("error", () => {});
  return redis;
}

/** A warning when Redis may drop keys under memory pressure (BullMQ needs `noeviction`), else undefined. */
export async function evictionWarning(redis: Redis): Promise<string | undefined> {
  try {
    const [, policy] = (await redis.config("GET", "maxmemory-policy")) as [string, string];
    if (policy && policy !== "noeviction") {
      return `Redis's maxmemory-policy is ${policy}: under memory pressure it can drop queue keys; set maxmemory-policy noeviction`;
    }
  } catch {
    // CONFIG can be disabled on managed Redis; nothing to check then.
  }
  return undefined;
}
