/** Which backends to try, from the options and the environment (no tfjs here). */
import { didYouMean, suggest } from "@midtrain/common";
import { UnknownBackendError } from "./errors.js";
import { defaultEnv } from "./runtime.js";
import { BACKENDS, type BackendName, type InitOptions } from "./types.js";

export const BACKEND_ENV_VAR = "MIDTRAIN_BACKEND";

/** Checks a backend name (case-insensitive); `auto` passes through. */
export function parseBackendName(name: string, where = "backend"): BackendName | "auto" {
  const n = name.trim().toLowerCase();
  if (n === "auto" || (BACKENDS as readonly string[]).includes(n)) return n as BackendName | "auto";
  throw new UnknownBackendError(`unknown ${where} '${name}'${didYouMean(suggest(n, BACKENDS, 1))} (choose one of: auto, ${BACKENDS.join(", ")})`);
}

/** The order initBackend tries: the explicit choice alone, or the automatic order (env override honoured). */
export function backendOrder(opts: Pick<InitOptions, "prefer" | "env"> = {}): BackendName[] {
  const env = opts.env ?? defaultEnv();
  let choice = opts.prefer ?? "auto";
  if (choice === "auto" && env[BACKEND_ENV_VAR]) choice = parseBackendName(env[BACKEND_ENV_VAR]!, BACKEND_ENV_VAR);
  else choice = parseBackendName(choice);
  return choice === "auto" ? [...BACKENDS] : [choice];
}

/**
 * Backends a test run must have (comma list in MIDTRAIN_REQUIRE_BACKENDS; under CI=true all
 * of webgpu, wasm and cpu). A test suite skips an unavailable backend only when it is not required.
 */
export function requiredBackends(env: Record<string, string | undefined> = defaultEnv()): BackendName[] {
  const list = env.MIDTRAIN_REQUIRE_BACKENDS;
  if (list)
    return list
      .split(",")
      .filter(Boolean)
      .map((n) => parseBackendName(n, "MIDTRAIN_REQUIRE_BACKENDS"))
      .filter((n): n is BackendName => n !== "auto");
  return env.CI === "true" || env.CI === "1" ? ["webgpu", "wasm", "cpu"] : ["wasm", "cpu"];
}
