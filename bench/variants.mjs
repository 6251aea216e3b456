// Experimental changes measured by the bench (--variant a,b,...), applied before the model is built.
// (`xnnpack` and `blasN`, which choose the wasm matmul, are handled by bench/setup.mjs.)
import { installBatchedMatMul, installOldMatMul } from "./kernels-proto.mjs";

export async function applyVariant(spec, ctx) {
  for (const v of spec.split(",")) {
    if (v === "bmm") installBatchedMatMul(ctx.tf);
    else if (v === "fusedce") (await import("./fused.mjs")).installFusedCE(ctx.tf, ctx.M);
    else if (v === "oldmm") await installOldMatMul(ctx.tf);
    else throw new Error(`unknown variant '${v}'`);
  }
}
