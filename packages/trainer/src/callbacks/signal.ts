import type { TrainerCallback } from "./types.js";

/** Stops the phase cleanly (checkpoint, `stop` record) before the next step once `signal` is aborted. */
export function signalCallback(signal: AbortSignal): TrainerCallback {
  return {
    name: "signal",
    preStep(ctx) {
      if (!signal.aborted) return;
      const why = signal.reason instanceof Error ? signal.reason.message : signal.reason === undefined ? "" : String(signal.reason);
      ctx.requestStop(why ? `aborted: ${why}` : "aborted");
    },
  };
}
