import type { DeviceInfo, TF } from "./types.js";
import { BackendUnavailableError } from "./errors.js";
import { importOptional, isNode } from "./runtime.js";

export const CUDA_PACKAGE = "@tensorflow/tfjs-node-gpu";

export const CUDA_INSTALL_HINT =
  `install it next to midtrain with \`pnpm add ${CUDA_PACKAGE}@4.22.0\` (or npm/yarn) on a machine with ` +
  "CUDA 11.2 and cuDNN 8.1; its install step downloads libtensorflow, so it needs internet access";

/** Starts tfjs-node-gpu (CUDA). Loaded lazily: it is never part of the default install. */
export async function startCuda(tf: TF, load: (name: string) => Promise<unknown> = importOptional): Promise<DeviceInfo> {
  if (!isNode()) {
    throw new BackendUnavailableError("cuda", "backend 'cuda' runs only in Node.js; in a browser use 'webgpu'");
  }
  try {
    await load(CUDA_PACKAGE);
  } catch (err) {
    const why = err instanceof Error ? err.message.split("\n")[0] : String(err);
    throw new BackendUnavailableError(
      "cuda",
      `backend 'cuda' needs the optional package ${CUDA_PACKAGE}, which failed to load (${why}); ${CUDA_INSTALL_HINT}`,
      err,
    );
  }
  const ok = await tf.setBackend("tensorflow");
  if (!ok) {
    throw new BackendUnavailableError(
      "cuda",
      `${CUDA_PACKAGE} loaded but its 'tensorflow' backend did not initialise (is a CUDA GPU visible? check nvidia-smi)`,
    );
  }
  await tf.ready();
  return {
    backend: "cuda",
    tfjsBackend: "tensorflow",
    description: `libtensorflow via ${CUDA_PACKAGE}`,
    isSoftware: false,
    isCpu: false,
  };
}
