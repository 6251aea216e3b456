// Experimental changes measured by the bench (--variant a,b,...), applied before the model is built.
// (`xnnpack` and `blasN`, which choose the wasm matmul, are handled by bench/setup.mjs.)
import { installBatchedMatMul, installOldMatMul } from "./kernels-proto.mjs";

// `-NAME` removes one fused kernel pair from the active backend, so its share of a step can be
// measured in the same run (the model and trainer fall back to tensor ops).
const FUSED = {
  adamw: ["MidtrainAdamW"],
  xent: ["MidtrainSoftmaxXent", "MidtrainSoftmaxXentGrad"],
  gelu: ["MidtrainGelu", "MidtrainGeluGrad"],
  layernorm: ["MidtrainLayerNorm", "MidtrainLayerNormGrad"],
  rotary: ["MidtrainRotary", "MidtrainRotaryGrad"],
};

export async function applyVariant(spec, ctx) {
  for (const v of spec.split(",")) {
    if (v.startsWith("-") && FUSED[v.slice(1)]) {
      for (const k of FUSED[v.slice(1)]) if (ctx.tf.getKernel(k, ctx.tf.getBackend())) ctx.tf.unregisterKernel(k, ctx.tf.getBackend());
    } else if (v === "copyidentity") {
      // tfjs-backend-wasm 4.22's own Identity (a full copy), for before/after measurements.
      const tf = ctx.tf;
      const orig = tf.getKernel("Identity", "wasm");
      tf.unregisterKernel("Identity", "wasm");
      tf.registerKernel({
        ...orig,
        kernelFunc: ({ inputs: { x }, backend }) => {
          const out = backend.makeOutput(x.shape, x.dtype);
          backend.typedArrayFromHeap(out).set(backend.typedArrayFromHeap(x));
          return out;
        },
      });
    } else if (v === "bmm") installBatchedMatMul(ctx.tf);
    else if (v === "fusedce") (await import("./fused.mjs")).installFusedCE(ctx.tf, ctx.M);
    else if (v === "oldmm") await installOldMatMul(ctx.tf);
    else
      throw new Error(
        `unknown variant '${v}' (bmm, fusedce, oldmm, copyidentity, ${Object.keys(FUSED)
          .map((k) => `-${k}`)
          .join(", ")})`,
      );
  }
}
