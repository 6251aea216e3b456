import type { EvalResult } from "./evaluate.js";

/** What every applied step measures (in its `train` record and in a callback's `StepInfo`). */
export interface StepStats {
  /** Global step after the update. */
  step: number;
  /** Mean masked loss over the step's micro-batches. */
  loss: number;
  /** The learning rate the update used. */
  lr: number;
  /** Global gradient norm before clipping. */
  gradNorm: number;
  /** Factor the gradients were scaled by (1 = not clipped). */
  clipScale: number;
  /** Tokens per second over the steps of this call so far. */
  tokensPerSec: number;
  /** Wall time of this step (drawing, gradients, update). */
  stepMs: number;
  /** Time since the phase started. */
  elapsedMs: number;
  /** Input tokens of this step by source. */
  stepTokensBySource: Record<string, number>;
}

/** One optimizer step that was applied. */
export interface TrainRecord extends StepStats {
  type: "train";
  phase: string;
  phaseStep: number;
  /** Input tokens seen after the update (global). */
  tokens: number;
  /** Input tokens drawn so far by source (the mixer's counters). */
  tokensBySource: Record<string, number>;
}

/** A step whose loss or gradient was not finite: it was not applied. */
export interface SkipRecord {
  type: "skip";
  phase: string;
  /** The step that was attempted (global step after it, had it been applied). */
  step: number;
  /** null when not finite (JSON has no NaN). */
  loss: number | null;
  gradNorm: number | null;
  reason: string;
  inARow: number;
}

export interface EvalRecord extends Omit<EvalResult, "loss"> {
  type: "eval";
  phase: string;
  step: number;
  tokensSeen: number;
  set: string;
  loss: number | null;
}

export interface CheckpointRecord {
  type: "checkpoint";
  phase: string;
  step: number;
  id: string;
  ms: number;
  deleted: string[];
}

export interface CheckpointErrorRecord {
  type: "checkpoint-error";
  phase: string;
  step: number;
  id: string;
  error: string;
}

export interface StopRecord {
  type: "stop";
  phase: string;
  step: number;
  reason: "completed" | "aborted" | "non-finite";
  lastCheckpoint: string | null;
}

export type MetricsRecord = TrainRecord | SkipRecord | EvalRecord | CheckpointRecord | CheckpointErrorRecord | StopRecord;

/** Receives every metrics record in order; a returned promise is awaited before training goes on. */
export interface MetricsSink {
  write(record: MetricsRecord): void | Promise<void>;
  close?(): void | Promise<void>;
}

/** Keeps the records in an array. */
export class MemorySink implements MetricsSink {
  readonly records: MetricsRecord[] = [];
  write(record: MetricsRecord): void {
    this.records.push(record);
  }
  /** Records of one type. */
  of<T extends MetricsRecord["type"]>(type: T): Extract<MetricsRecord, { type: T }>[] {
    return this.records.filter((r) => r.type === type) as Extract<MetricsRecord, { type: T }>[];
  }
}

/** Several sinks as one. */
export function teeSink(...sinks: MetricsSink[]): MetricsSink {
  return {
    async write(r) {
      for (const s of sinks) await s.write(r);
    },
    async close() {
      for (const s of sinks) await s.close?.();
    },
  };
}

/** A JSON line for a record (non-finite numbers become null). */
export function recordToJson(record: MetricsRecord): string {
  return JSON.stringify(record, (_k, v) => (typeof v === "number" && !Number.isFinite(v) ? null : v));
}
