import { initBackend } from "@midtrain/backend";
import * as tf from "@tensorflow/tfjs-core";
// The page's WebGL fallback: @midtrain/backend registers cpu, wasm and webgpu only.
import "@tensorflow/tfjs-backend-webgl";
import wasmPlain from "@tensorflow/tfjs-backend-wasm/dist/tfjs-backend-wasm.wasm?url";
import wasmSimd from "@tensorflow/tfjs-backend-wasm/dist/tfjs-backend-wasm-simd.wasm?url";
import wasmThreadedSimd from "@tensorflow/tfjs-backend-wasm/dist/tfjs-backend-wasm-threaded-simd.wasm?url";

export type PageBackend = "webgpu" | "webgl" | "wasm" | "cpu";
export const PAGE_BACKENDS: readonly PageBackend[] = ["webgpu", "webgl", "wasm", "cpu"];

export interface PickedBackend {
  backend: PageBackend;
  description: string;
  /** Why earlier choices were skipped (empty when the first choice started). */
  fallbacks: string[];
}

/**
 * Starts WebGPU when the browser has it (a software adapter such as SwiftShader included: on a
 * page there is nothing faster to fall back to), else tfjs's WebGL backend, else WebAssembly,
 * else plain JavaScript. `only` forces one backend (the page's `?backend=` parameter).
 */
export async function pickBackend(only?: PageBackend): Promise<PickedBackend> {
  const order = only ? [only] : PAGE_BACKENDS;
  const fallbacks: string[] = [];
  for (const name of order) {
    try {
      if (name === "webgpu") {
        const r = await initBackend({ prefer: "webgpu", onNotice: () => {} });
        return { backend: "webgpu", description: `WebGPU on ${r.device.description}${r.device.isSoftware ? " (software adapter)" : ""}`, fallbacks };
      }
      if (name === "webgl") {
        if (!(await tf.setBackend("webgl"))) throw new Error("tfjs could not start WebGL");
        await tf.ready();
        const gl = tf.env().getNumber("WEBGL_VERSION");
        return { backend: "webgl", description: `WebGL ${gl} (tfjs-backend-webgl)`, fallbacks };
      }
      if (name === "wasm") {
        const r = await initBackend({
          prefer: "wasm",
          onNotice: () => {},
          wasmPaths: {
            "tfjs-backend-wasm.wasm": wasmPlain,
            "tfjs-backend-wasm-simd.wasm": wasmSimd,
            "tfjs-backend-wasm-threaded-simd.wasm": wasmThreadedSimd,
          },
        });
        return { backend: "wasm", description: r.device.description, fallbacks };
      }
      const r = await initBackend({ prefer: "cpu", onNotice: () => {} });
      return { backend: "cpu", description: r.device.description, fallbacks };
    } catch (e) {
      fallbacks.push(`${name}: ${(e as Error).message.split("\n")[0]}`);
    }
  }
  throw new Error(`no backend could start (${fallbacks.join("; ")})`);
}
