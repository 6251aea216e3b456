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
    } else if (v === "bmm") installBatchedMatMul(ctx.tf);
    else if (v === "fusedce") (await import("./fused.mjs")).installFusedCE(ctx.tf, ctx.M);
    else if (v === "oldmm") await installOldMatMul(ctx.tf);
    else throw new Error(`unknown variant '${v}' (bmm, fusedce, oldmm, ${Object.keys(FUSED).map((k) => `-${k}`).join(", ")})`);
  }
}
