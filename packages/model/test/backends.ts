/** Selects a tfjs backend for a test file through @midtrain/backend. */
import * as tf from "@tensorflow/tfjs-core";
import * as backendPkg from "@midtrain/backend";

export type BackendName = "cpu" | "wasm" | "webgpu";

export async function useBackend(name: BackendName): Promise<typeof tf> {
  const init = (backendPkg as Record<string, unknown>).initBackend as
    | ((o: { prefer: BackendName }) => Promise<{ tf: typeof tf; backend: string }>)
    | undefined;
  if (init) {
    const r = await init({ prefer: name });
    if (r.backend !== name) throw new Error(`asked for backend ${name}, got ${r.backend}`);
    return r.tf;
  }
  if (name !== "cpu") throw new Error(`@midtrain/backend has no initBackend yet; cannot start ${name}`);
  await import("@tensorflow/tfjs-backend-cpu");
  await tf.setBackend("cpu");
  await tf.ready();
  return tf;
}
