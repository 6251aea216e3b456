/**
 * tfjs-backend-webgpu 4.22 times every program while `tf.profile` (or `tf.time`) runs. On a
 * device without the `timestamp-query` feature (Dawn's OpenGL backend on Mesa, and browsers
 * without it) each timed program gets a zero time and — the costly part — the backend then
 * never submits its command encoder: every buffer the profiled code touched stays owned by the
 * pending command queue, so nothing is returned to the buffer pool until the next read. A whole
 * training step under `tf.profile` then holds every tensor it ever allocated: pythia-14m at 512
 * tokens took 3.9 GB for 639 MiB of peak tensors, and at 2,048 tokens passed 16 GB.
 *
 * Without timestamp queries the timer has nothing to measure anyway, so {@link untimedWhenNoTimestamps}
 * makes `time(f)` run `f` untimed (kernel time 0, as tfjs reports there) and the backend
 * submits its work as usual. Devices with timestamp queries keep tfjs's timer.
 */

interface WebGpuBackendLike {
  supportTimestampQuery?: boolean;
  uploadWaitMs?: number;
  downloadWaitMs?: number;
  time(f: () => void): Promise<unknown>;
}

/** Replaces `backend.time` when the device has no timestamp queries; returns whether it did. */
export function untimedWhenNoTimestamps(backend: WebGpuBackendLike): boolean {
  if (backend.supportTimestampQuery !== false) return false;
  backend.time = async (f: () => void) => {
    const start = performance.now();
    f();
    const res = {
      uploadWaitMs: backend.uploadWaitMs ?? 0,
      downloadWaitMs: backend.downloadWaitMs ?? 0,
      kernelMs: 0,
      wallMs: performance.now() - start,
      getExtraProfileInfo: () => "",
    };
    backend.uploadWaitMs = 0;
    backend.downloadWaitMs = 0;
    return res;
  };
  return true;
}
