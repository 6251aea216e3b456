/** Selects a tfjs backend for a test file through @midtrain/backend. */
import { type BackendName, initBackend } from "@midtrain/backend";
import type * as tfc from "@tensorflow/tfjs-core";

export type { BackendName };

export async function useBackend(name: BackendName): Promise<typeof tfc> {
  const r = await initBackend({ prefer: name, onNotice: () => {} });
  if (r.backend !== name) throw new Error(`asked for backend ${name}, got ${r.backend}`);
  return r.tf;
}
