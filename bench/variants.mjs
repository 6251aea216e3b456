// Experimental changes measured by the bench (--variant a,b,...), applied before the model is built.
import { installBatchedMatMul, installNativeMatMul, installOldMatMul } from "./kernels-proto.mjs";

export async function applyVariant(spec, ctx) {
  for (const v of spec.split(",")) {
    if (v === "bmm") installBatchedMatMul(ctx.tf);
    else if (v === "blas2" || v === "blas1") await installNativeMatMul(ctx.tf, Number(v.slice(4)));
    else if (v === "fusedce") (await import("./fused.mjs")).installFusedCE(ctx.tf, ctx.M);
    else if (v === "oldmm") await installOldMatMul(ctx.tf);
    else throw new Error(`unknown variant '${v}'`);
  }
}
