/** A unit of work in an experiment: runs once its dependencies are done. */
export interface Job {
  id: string;
  deps: string[];
  /** Relative cost, used to start the longest jobs first when several are ready. */
  cost: number;
}

export type JobRunner = (job: Job, slot: number) => Promise<void>;

/**
 * Runs a DAG of jobs with at most `concurrency` at once, longest-ready-first. Jobs in
 * `done` are skipped (an interrupted experiment resumes). The first failure stops new
 * jobs from starting; running ones finish, then the error is thrown.
 */
export async function runJobs(
  jobs: readonly Job[],
  run: JobRunner,
  opts: { concurrency: number; done?: ReadonlySet<string>; onStart?: (job: Job) => void; onDone?: (job: Job) => void },
): Promise<void> {
  const byId = new Map(jobs.map((j) => [j.id, j]));
  for (const j of jobs) for (const d of j.deps) if (!byId.has(d)) throw new Error(`job ${j.id} depends on unknown job ${d}`);
  const finished = new Set<string>([...(opts.done ?? [])].filter((id) => byId.has(id)));
  const started = new Set<string>(finished);
  const free = Array.from({ length: Math.max(1, opts.concurrency) }, (_, i) => i).reverse();
  let failure: unknown;
  await new Promise<void>((resolveAll, rejectAll) => {
    let running = 0;
    const pump = () => {
      if (failure !== undefined) {
        if (running === 0) rejectAll(failure);
        return;
      }
      const ready = jobs.filter((j) => !started.has(j.id) && j.deps.every((d) => finished.has(d))).sort((a, b) => b.cost - a.cost);
      while (ready.length && free.length) {
        const job = ready.shift()!;
        const slot = free.pop()!;
        started.add(job.id);
        running++;
        opts.onStart?.(job);
        run(job, slot).then(
          () => {
            finished.add(job.id);
            opts.onDone?.(job);
            running--;
            free.push(slot);
            pump();
          },
          (err) => {
            failure ??= err;
            running--;
            free.push(slot);
            pump();
          },
        );
      }
      if (running === 0) {
        if (finished.size === byId.size) resolveAll();
        else if (failure === undefined) rejectAll(new Error("job graph has a cycle or unreachable jobs"));
      }
    };
    pump();
  });
}
